"""Check that a change to the denoising pipeline keeps its output: denoise a fixed synthetic
burst (``big_burst.py``, 8 frames of 384x512 with global shifts up to 6 px and Gain-2 noise)
with the shipped ame_kpn (``--noise auto``, ``--align auto``, tile 128 so the tiled path with
attention statistics runs) and save the image and its PSNR; with ``--compare`` report the PSNR
change against an earlier saved result (the committed code: ``git worktree add /tmp/base HEAD``
and ``PYTHONPATH=/tmp/base``).

    PYTHONPATH=/tmp/base python benchmarks/denoise_regression.py /tmp/before.npz
    python benchmarks/denoise_regression.py /tmp/after.npz --compare /tmp/before.npz
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from big_burst import burst_frames, clean_reference

import burstkpn
from burstkpn.denoising import denoise_burst

HEIGHT, WIDTH, FRAMES = 384, 512, 8


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help=".npz with the denoised image and its PSNR")
    p.add_argument("--compare", help="an earlier .npz: fail beyond --tolerance dB")
    p.add_argument("--tolerance", type=float, default=0.05)
    args = p.parse_args(argv)
    frames = np.stack(burst_frames(HEIGHT, WIDTH, FRAMES))
    burst = torch.from_numpy(np.round(frames * 255) / 255).float().permute(0, 3, 1, 2)
    res = denoise_burst(burst, burstkpn.load_pretrained("ame_kpn"), tile=128)
    image = res.image.permute(1, 2, 0).numpy()
    clean = clean_reference(HEIGHT, WIDTH)
    score = psnr(image, clean)
    np.savez(args.out, image=image, psnr=score, shifts=res.shifts, sigma=[res.sigma_r, res.sigma_s])
    print(f"PSNR {score:.4f} dB (noisy {psnr(frames[0], clean):.2f}); shifts {res.shifts.tolist()}")
    if args.compare:
        before = np.load(args.compare)
        delta = score - float(before["psnr"])
        gap = psnr(image, before["image"])
        print(f"change {delta:+.4f} dB; PSNR between the two outputs {gap:.2f} dB")
        return 0 if abs(delta) <= args.tolerance else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
