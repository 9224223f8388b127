"""Does the split-halves score of ``burstkpn bench real`` rank methods as the truth would?

``burstkpn bench real`` scores a real static burst without ground truth: methods denoise the
first half, the pseudo ground truth is the second half aligned (cubic splines) and averaged
(:mod:`burstkpn.bench.real`). This script checks that score where the truth is known: static
handheld-like bursts synthesised from clean photos, every frame a 4x box-downsampled crop at its
own whole-pixel offset (up to ``--max-shift`` output px, so sub-pixel motion without any
interpolation), developed through the camera pipeline (``--pipeline camera``, as ``make-testset
--pipeline camera``: raw noise scaled by ``RAW_NOISE_SCALE``, JPEG) or with independent noise in
linear light. Each case goes through :func:`burstkpn.bench.real.burst_case` exactly as a real
burst does, and every method's output is scored twice: against the pseudo ground truth (what
the real score sees) and against the clean reference developed without noise (the truth).

If the pseudo ground truth only added an independent error, the MSE differences between
methods would be the same under both (``E|out - gt'|^2 = E|out - gt|^2 + E|gt' - gt|^2``); the
table prints both, per noise level, as PSNR and as the MSE difference to ``align_mean``.

Usage::

    python benchmarks/real_score_check.py ../shared/data/eval/cset14 \
        --methods reference,align_mean,ame_kpn [--pipeline independent] [--variant box4]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from burstkpn.bench.real import burst_case, resolve_real_method
from burstkpn.data.degrade.camera import RAW_NOISE_SCALE, camera_noisy_burst, sample_camera_params
from burstkpn.data.degrade.noise import add_noise, parse_noise
from burstkpn.data.io.images import linear_to_srgb, list_images, load_linear, srgb_to_linear
from burstkpn.data.sampling import match_channels
from burstkpn.losses import block_means
from burstkpn.ops.align import shift_whole_pixels

DOWN = 4  # box factor: one output px is 4 source px, so whole source px are quarter output px


def static_burst(
    image: torch.Tensor, patch: int, frames: int, max_shift: int, g: torch.Generator
) -> torch.Tensor | None:
    """``(frames, 3, patch, patch)`` linear: 4x box-downsampled crops of ``image`` at whole
    source-pixel offsets within ``max_shift`` output px of the reference (frame 0 at offset 0);
    ``None`` when the image is too small."""
    reach = max_shift * DOWN
    size = patch * DOWN
    h, w = image.shape[-2:]
    if h < size + 2 * reach or w < size + 2 * reach:
        return None
    y0 = (h - size) // 2
    x0 = (w - size) // 2
    offsets = torch.randint(-reach, reach + 1, (frames, 2), generator=g)
    offsets[0] = 0
    crops = [image[:, y0 + dy : y0 + dy + size, x0 + dx : x0 + dx + size] for dy, dx in offsets]
    return F.avg_pool2d(torch.stack(crops), DOWN)


def mse(a: torch.Tensor, b: torch.Tensor, border: int, scale: int = 1) -> float:
    """Mean squared error inside ``border``; ``scale`` > 1: of the ``scale`` x box averages."""
    s = (slice(None), slice(border, -border), slice(border, -border))
    d = (a.clamp(0, 1) - b.clamp(0, 1))[s]
    if scale > 1:
        d = block_means(d, scale)
    return float((d**2).mean())


def whole_pixel_truth(frames: torch.Tensor, shifts) -> torch.Tensor:
    """The pseudo ground truth with every frame moved by whole pixels only (no interpolation)."""
    moved = shift_whole_pixels(frames.float(), np.rint(shifts))
    return linear_to_srgb(moved.mean(0)).clamp(0, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("source", help="folder of clean photos")
    p.add_argument("--methods", default="reference,align_mean,ame_kpn,ame_kpn_real")
    p.add_argument("--levels", default="gain1,gain2", help="noise levels (make-testset names)")
    p.add_argument("--pipeline", choices=("camera", "independent"), default="camera")
    p.add_argument("--patch", type=int, default=112)
    p.add_argument("--frames", type=int, default=7, help="burst length (split in halves)")
    p.add_argument("--max-shift", type=int, default=2, help="largest offset, output px")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results here")
    p.add_argument(
        "--variant",
        choices=("spline", "whole", "box2", "box4"),
        default="spline",
        help="the pseudo ground truth as bench real makes it (spline), moved by whole pixels "
        "only (whole), or scored on 2x / 4x box averages of the errors (box2, box4)",
    )
    args = p.parse_args()

    methods = {}
    for name in args.methods.split(","):
        fn, note = resolve_real_method(name)
        if fn is None:
            print(f"{name}: {note}")
            continue
        methods[name] = fn
    scale = {"box2": 2, "box4": 4}.get(args.variant, 1)
    results: dict = {}
    used = []
    for ref in list_images(args.source):
        image = match_channels(load_linear(ref), 3)
        g = torch.Generator().manual_seed(args.seed)
        clean = static_burst(image, args.patch, args.frames, args.max_shift, g)
        if clean is None:
            continue
        used.append(Path(ref).name)
        for level in [parse_noise(v) for v in args.levels.split(",")]:
            if args.pipeline == "camera":
                camera = sample_camera_params(g)
                r, s = level.sigma_r * RAW_NOISE_SCALE, level.sigma_s * RAW_NOISE_SCALE**2
                noisy = camera_noisy_burst(clean, r, s, g, camera)
                truth = camera_noisy_burst(clean[:1], 0.0, 0.0, g, camera)[0]
            else:
                noisy = linear_to_srgb(add_noise(clean, level.sigma_r, level.sigma_s, g))
                noisy = (noisy.clamp(0, 1) * 255).round() / 255
                truth = linear_to_srgb(clean[0])
            case = burst_case(noisy, Path(ref).stem)
            if args.variant == "whole":  # the same shifts, measured once by burst_case
                half = list(range(len(case.frames), noisy.shape[0]))
                shifts = np.asarray(case.info["shifts"])[half]
                case.truth = whole_pixel_truth(srgb_to_linear(noisy[half].float()), shifts)
            for name, fn in methods.items():
                out = fn(case)
                rows = results.setdefault(level.name, {})
                row = rows.setdefault(name, {"pseudo": [], "truth": []})
                row["pseudo"].append(mse(out, case.truth, case.border, scale))
                row["truth"].append(mse(out, truth, case.border, scale))
            print(f"{Path(ref).name} {level.name} done", flush=True)
    print(f"{len(used)} images: {', '.join(used)}; {args.pipeline} noise, {args.frames} frames")
    print(
        "| level | method | PSNR vs pseudo truth | PSNR vs truth "
        "| MSE - align_mean's, pseudo (1e-5) | truth (1e-5) |"
    )
    print("|---|---|--:|--:|--:|--:|")
    summary: dict = {}
    for level, rows in results.items():
        means = {m: {k: sum(v) / len(v) for k, v in r.items()} for m, r in rows.items()}
        base = means.get("align_mean")
        for m, v in means.items():
            d = (
                [(v[k] - base[k]) * 1e5 for k in ("pseudo", "truth")]
                if base is not None
                else [math.nan, math.nan]
            )
            ps = {k: 10 * math.log10(1 / v[k]) for k in ("pseudo", "truth")}
            summary.setdefault(level, {})[m] = {"psnr": ps, "mse": v, "mse_minus_align_mean": d}
            cells = f"{ps['pseudo']:.2f} | {ps['truth']:.2f} | {d[0]:+.2f} | {d[1]:+.2f}"
            print(f"| {level} | {m} | {cells} |")
    if args.json:
        record = {"images": used, "args": vars(args), "results": summary}
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
