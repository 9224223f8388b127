"""Brightness gain of burst models on flat noisy bursts: mean output / true level.

    python benchmarks/flat_gain.py burstkpn/weights/kpn.safetensors ...

A flat linear-light scene at 0.005, 0.02, 0.1 and 0.5 (8 frames, 64x64, one channel) with
shot/read noise sigma_r = 1e-2, sigma_s = 1e-3 and the true noise map; a converged model returns
about 1.0 at every level. Short-trained kernels that do not sum to one show up here first.
"""

from __future__ import annotations

import sys

import torch

import burstkpn


def flat_gain(model: torch.nn.Module, level: float, seed: int = 0) -> float:
    g = torch.Generator().manual_seed(seed)
    sigma_r, sigma_s = 1e-2, 1e-3
    clean = torch.full((1, 8, 1, 64, 64), level)
    noisy = clean + torch.randn(clean.shape, generator=g) * (sigma_r**2 + sigma_s * clean).sqrt()
    nmap = (sigma_r**2 + sigma_s * noisy[:, 0].clamp_min(0)).sqrt()
    with torch.no_grad():
        out = model(noisy, nmap).image
    return float(out.mean() / level)


def main() -> None:
    for path in sys.argv[1:]:
        model = burstkpn.load_model(path).eval()
        gains = "  ".join(f"{lv}: {flat_gain(model, lv):.3f}" for lv in (0.005, 0.02, 0.1, 0.5))
        print(f"{path}  {gains}")


if __name__ == "__main__":
    main()
