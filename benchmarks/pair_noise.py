"""Noise level of real noisy / clean pairs (a PolyU or SIDD folder, as ``find_pairs``): the
difference noisy - clean in linear light, its variance fitted as sigma_r^2 + sigma_s * y over
ten brightness bins ([AME-KPN] section 3.1 model), and the sRGB PSNR of the noisy image.

    python benchmarks/pair_noise.py ../shared/data/real/polyu

Used to choose the noise ranges of training/configs/dcn_lka_denoise_cpu_r3.yaml.
"""

from __future__ import annotations

import sys

import numpy as np

from burstkpn.data.io.images import linear_to_srgb, load_linear
from burstkpn.data.io.pairs import find_pairs


def main() -> None:
    for noisy_path, clean_path in find_pairs(sys.argv[1]):
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
