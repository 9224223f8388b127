"""How much a video model gains from the other frames of its window, against its spatial filter.

    python benchmarks/clip_frames_used.py --models deform3d,FILE.safetensors --speeds 0,2,8

On the seeded constant-velocity windows of ``bench motion`` (:func:`burstkpn.bench.motion.
sweep_windows`: the embedded photos by default, ``--source`` for a folder), every model runs
twice per window: on the window as it is (``full``), and on the window with every frame
replaced by the noisy reference (``ref only``: the same input layout and noise level, but no
information beyond one frame). ``full - ref only`` is what the model draws from the other
frames; ``ref only`` against a single-image model (``--single deform2d``) compares the
spatial filters alone. PSNR on sRGB as ``bench video`` (8-pixel border), mean over windows.

Used in training/README.md ("The long run (deform3d), continued") to tell whether ``deform3d``
falls short of ``deform2d`` because it ignores the other frames or because its spatial
filtering is weaker.
"""

from __future__ import annotations

import argparse
import json
import sys
from statistics import fmean

import torch

from burstkpn.bench.methods import resolve_video_method
from burstkpn.bench.motion import sweep_windows
from burstkpn.metrics import BORDER, psnr


def reference_only(item):
    """The window with every frame replaced by its noisy reference (frame 0)."""
    noisy = item.noisy[:, :1].expand_as(item.noisy).contiguous()
    return type(item)(**{**vars(item), "noisy": noisy})


def score(out: torch.Tensor, clean: torch.Tensor) -> float:
    """PSNR on sRGB, as ``bench video``."""
    return float(psnr(out.float(), clean, linear=True, border=BORDER)[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="deform3d", help="comma-separated clip models")
    p.add_argument("--single", default="deform2d", help="a single-image model ('' for none)")
    p.add_argument("--speeds", default="0,2,8", help="px / frame, comma-separated")
    p.add_argument("--levels", default="low,high")
    p.add_argument("--windows", type=int, default=8)
    p.add_argument("--patch", type=int, default=96)
    p.add_argument("--source", default=None, help="a folder of photos (default: embedded)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the rows to this file")
    a = p.parse_args(argv)
    speeds = [float(s) for s in a.speeds.split(",")]
    names = [m for m in a.models.split(",") if m]
    methods = {m: resolve_video_method(m)[0] for m in names}
    single = resolve_video_method(a.single)[0] if a.single else None
    levels = a.levels.split(",")
    rows = []
    for level in levels:
        windows = sweep_windows(
            a.source, speeds, windows=a.windows, patch_size=a.patch, level=level, seed=a.seed
        )
        for speed, i, item in windows:
            row = {"level": level, "speed": speed, "window": i}
            with torch.no_grad():
                if single is not None:
                    row[f"{a.single} (single)"] = score(single(item), item.clean)
                for name, fn in methods.items():
                    row[f"{name} full"] = score(fn(item), item.clean)
                    row[f"{name} ref only"] = score(fn(reference_only(item)), item.clean)
            rows.append(row)
    keys = [k for k in rows[0] if k not in ("level", "speed", "window")]
    print("| level | speed px/frame | " + " | ".join(keys) + " |")
    print("|---|--:|" + "--:|" * len(keys))
    for level in levels:
        for speed in speeds:
            sel = [r for r in rows if r["level"] == level and r["speed"] == speed]
            cells = " | ".join(f"{fmean(r[k] for r in sel):.2f}" for k in keys)
            print(f"| {level} | {speed:g} | {cells} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"argv": sys.argv[1:], "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
