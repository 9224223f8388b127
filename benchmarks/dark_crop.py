"""Burst models on the dark astronaut crop of ``tests/denoising/test_burst.py`` (mean linear level
about 0.095), Gain 1-3, with the true and the auto-estimated noise map, and what AME-KPN's
eq. (4) does there (mean sigmoid weight W of the kernel path, mean of the kernel path alone).

    python benchmarks/dark_crop.py [WEIGHTS_OR_NAME ...]     # default: ame_kpn kpn

Numbers quoted in docs/training-history.md ("On dark content ...").
"""

from __future__ import annotations

import sys

import torch

from burstkpn.data.degrade.noise import NOISE_LEVELS, estimate_noise_map
from burstkpn.data.degrade.synth import synthesize_burst
from burstkpn.data.io.images import load_linear
from burstkpn.denoising import denoise_burst
from burstkpn.inference import resolve_model
from burstkpn.metrics import psnr


def dark_burst(level: str, seed: int = 3):
    clean = load_linear("astronaut")
    g = torch.Generator().manual_seed(seed)
    return synthesize_burst(clean[:, 40:360, 120:440], g, patch_size=96, noise=level)


def main() -> None:
    names = sys.argv[1:] or ["ame_kpn", "kpn"]
    for name in names:
        model = resolve_model(name).eval()
        for level in ("gain1", "gain2", "gain3"):
            burst, lv = dark_burst(level), NOISE_LEVELS[level]
            frames = burst.noisy[0]
            kw = dict(linear=True, align="off", precision="fp32")
            auto = denoise_burst(frames, model, noise="auto", **kw)
            true = denoise_burst(frames, model, noise=(lv.sigma_r, lv.sigma_s), **kw)
            p = [float(psnr(x[None], burst.clean)[0]) for x in (auto.image, true.image, frames[0])]
            print(
                f"{name} {level}: auto {p[0]:.2f} dB, true noise {p[1]:.2f} dB, "
                f"noisy reference {p[2]:.2f} dB (clean mean {float(burst.clean.mean()):.3f})"
            )
        if getattr(model, "residual", False):
            burst, lv = dark_burst("gain1"), NOISE_LEVELS["gain1"]
            x = burst.noisy
            nmap = estimate_noise_map(x[:, 0], lv.sigma_r, lv.sigma_s)  # eq. (1) input
            with torch.no_grad():
                out = model(x, nmap, return_aux=True)
            kernel_path = out.aux["filtered"].mean(1)
            print(
                f"{name} gain1 eq. (4): output mean {float(out.image.mean()):.3f}, "
                f"mean sigmoid W {float(out.aux['weights'].mean()):.2f}, "
                f"kernel path alone: mean {float(kernel_path.mean()):.3f}, "
                f"{float(psnr(kernel_path.clamp(0, 1), burst.clean)[0]):.2f} dB"
            )


if __name__ == "__main__":
    main()
