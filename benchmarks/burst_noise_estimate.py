"""Accuracy of the temporal burst noise estimator (issue 23 item 1) against the truth, on
synthetic 8-frame bursts of embedded photos (quarter-pixel motion, 224 px):

- independent noise (Gains 1-4), the truth being ``sigma_r^2 + sigma_s * y`` on the reference;
- the same with a 90x90 object moving 3-4 px per frame (local motion);
- camera-pipeline noise (burstkpn.data.degrade.camera; no JPEG, JPEG quality 90 and 75) at three raw
  levels, the truth being the random part of the reference's error: its difference from the
  reference developed without noise (what averaging frames can remove).

The level compared is the RMS noise standard deviation over the reference's pixels with clean
values in (0.02, 0.9) (clipping ends left out), estimate over truth minus one. The single-image
estimator (``estimate_or_floor``, what ``--noise auto`` used before) is shown beside it.

    python benchmarks/burst_noise_estimate.py --out docs/noise/burst_estimate
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from burstkpn.data.degrade import camera
from burstkpn.data.degrade.estimate import estimate_burst_noise, estimate_or_floor
from burstkpn.data.degrade.noise import NOISE_LEVELS, add_noise
from burstkpn.data.degrade.synth import synthesize_burst
from burstkpn.data.io.images import image_to_tensor, read_image, srgb_to_linear

FIELDS = ("image", "noise", "level", "truth", "burst", "single", "rejected")
PHOTOS = ("astronaut", "coffee", "chelsea")
CAMERA_LEVELS = ((3e-4, 1e-5), (1e-3, 1e-4), (5e-3, 1e-3))  # developed: about 3x stronger


def clean_burst(name: str, seed: int) -> torch.Tensor:
    img = srgb_to_linear(image_to_tensor(read_image(name)))
    g = torch.Generator().manual_seed(seed)
    return synthesize_burst(img, g, num_frames=8, patch_size=224, noise=(0.0, 0.0)).noisy[0]


def with_motion(clean: torch.Tensor) -> torch.Tensor:
    clean = clean.clone()
    for k in range(1, clean.shape[0]):
        dy, dx = 5 * k // 2, 3 * k
        clean[k, :, 60 + dy : 150 + dy, 40 + dx : 130 + dx] = clean[0, :, 60:150, 60:150]
    return clean


def levels(est_var, single: tuple[float, float], clean_ref, keep) -> tuple[float, float]:
    y = clean_ref.clamp_min(0)
    burst = float(np.sqrt(np.mean([est_var(y[c][keep[c]].numpy(), c).mean() for c in range(3)])))
    sr, ss = single
    one = float(np.sqrt((sr * sr + ss * y[keep]).mean()))
    return burst, one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rows = []
    for i, name in enumerate(PHOTOS):
        base = clean_burst(name, i)
        for moving in (False, True):
            clean = with_motion(base) if moving else base
            keep = (clean[0] > 0.02) & (clean[0] < 0.9)
            for lv in ("gain1", "gain2", "gain3", "gain4"):
                level = NOISE_LEVELS[lv]
                g = torch.Generator().manual_seed(100 + i)
                noisy = add_noise(clean, level.sigma_r, level.sigma_s, g)
                var = level.sigma_r**2 + level.sigma_s * clean[0].clamp_min(0)
                truth = float(var[keep].mean().sqrt())
                est = estimate_burst_noise(noisy)
                burst, one = levels(est.variance, estimate_or_floor(noisy), clean[0], keep)
                kind = "independent + local motion" if moving else "independent"
                rows.append((name, kind, lv, truth, burst, one, est.rejected))
        keep = (base[0] > 0.02) & (base[0] < 0.9)
        for raw in CAMERA_LEVELS:
            for q in (None, 90, 75):
                g = torch.Generator().manual_seed(200 + i)
                params = camera.sample_camera_params(g)
                params = camera.CameraParams(**{**params.__dict__, "jpeg_quality": q})
                noisy = camera.camera_noisy_linear(base, *raw, g, params)
                ref0 = camera.camera_noisy_linear(base[:1], 0.0, 0.0, g, params)[0]
                truth = float((noisy[0] - ref0)[keep].square().mean().sqrt())
                est = estimate_burst_noise(noisy)
                burst, one = levels(est.variance, estimate_or_floor(noisy), base[0], keep)
                kind = "camera, no JPEG" if q is None else f"camera, JPEG {q}"
                rows.append((name, kind, f"raw {raw[0]:g}/{raw[1]:g}", truth, burst, one, 0.0))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = [dict(zip(FIELDS, r, strict=True)) for r in rows]
    cpu = platform.processor() or platform.machine()
    out.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "rows": records}, indent=1))
    lines = [
        "| image | noise | level | truth | burst estimate | error | single-image | error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for image, kind, lv, truth, burst, one, _ in rows:
        lines.append(
            f"| {image} | {kind} | {lv} | {truth:.4f} | {burst:.4f} | {burst / truth - 1:+.1%} "
            f"| {one:.4f} | {one / truth - 1:+.1%} |"
        )
    errs = {}
    for _, kind, _, truth, burst, _, _ in rows:
        errs.setdefault(kind, []).append(abs(burst / truth - 1))
    lines += ["", "| noise | largest burst-estimate error |", "|---|---|"]
    lines += [f"| {k} | {max(v):.1%} |" for k, v in errs.items()]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
