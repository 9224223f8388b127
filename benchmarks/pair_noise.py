"""Noise level of real noisy / clean pairs (PolyU layout: ``*_real`` / ``*_mean``): the
difference noisy - clean in linear light, its variance fitted as sigma_r^2 + sigma_s * y over
ten brightness bins (ame_kpn.md section 3.1 model), and the sRGB PSNR of the noisy image.

    python benchmarks/pair_noise.py ../shared/data/real/polyu

Used to choose the noise ranges of training/configs/dcn_lka_denoise_cpu_r3.yaml.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from burstkpn.data.images import linear_to_srgb, load_linear


def main() -> None:
    folder = Path(sys.argv[1])
    for noisy_path in sorted(p for p in folder.iterdir() if "_real" in p.stem.lower()):
        stem = noisy_path.stem
        cut = stem.lower().rindex("_real")
        clean_path = noisy_path.with_name(stem[:cut] + "_mean" + noisy_path.suffix)
        x, y = load_linear(str(noisy_path)), load_linear(str(clean_path))
        d = linear_to_srgb(x).clamp(0, 1) - linear_to_srgb(y).clamp(0, 1)
        psnr = float(-10 * np.log10(float(d.pow(2).mean())))
        level, var = y.numpy().ravel(), (x - y).numpy().ravel() ** 2
        edges = np.quantile(level, np.linspace(0, 1, 11))
        idx = np.digitize(level, edges[1:-1])
        xs = np.array([level[idx == i].mean() for i in range(10)])
        vs = np.array([var[idx == i].mean() for i in range(10)])
        (a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(xs), xs], 1), vs, rcond=None)
        print(
            f"{noisy_path.name}: sigma_r {np.sqrt(max(a, 0.0)):.2e}, sigma_s {b:.2e}, "
            f"noisy PSNR {psnr:.2f} dB"
        )


if __name__ == "__main__":
    main()
