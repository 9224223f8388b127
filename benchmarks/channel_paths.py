"""Where a burst model's brightness error in dark values comes from, channel by channel.

    python benchmarks/channel_paths.py TESTSET --models ame_kpn,FILE --images coffee --levels gain2

Every selected burst of a test set (``burstkpn make-testset``) is aligned by whole pixels (as
the runner aligns bursts for ``prealign`` models) and goes through each model untiled, in
float32, with ``return_aux``. Over the dark values of each colour channel (clean sRGB below
0.15, the threshold of ``bench quality``'s brightness table), it prints per channel, in linear
light:

- ``n``: the number of dark values;
- ``out``: the mean signed error of the output (x 1000; positive: brighter than the truth);
- ``ksum``: the mean kernel sum sum_t K_i over frames (eq. 2) and ``W`` the mean weight W_i
  (eq. 3) of the kernel path;
- ``kpath`` / ``rpath``: the mean signed errors (x 1000) of the kernel path X_i (*) K_i and of
  the residual R_i, over frames: the output is the frames' mean of W_i kpath + (1 - W_i) rpath
  (eq. 4), so a brightness error comes from a biased path that W does not weigh down.

Used in training/README.md ("The recoloured fine-tune") to find why the colour variant
brightens dark channels beside bright ones (the coffee of scikit-image).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from burstkpn.data.io.images import linear_to_srgb
from burstkpn.data.testsets.burst import TestSet
from burstkpn.inference.resolve import resolve_model
from burstkpn.ops.align import align_whole_pixels

DARK = 0.15  # sRGB threshold of a dark value (bench quality's brightness table)
KEYS = ("channel", "n", "out", "ksum", "W", "kpath", "rpath")


def channel_paths(model: torch.nn.Module, item) -> list[dict]:
    """One row per colour channel of ``item`` (a test burst) with dark values."""
    burst = item.noisy
    if getattr(model, "prealign", False):
        burst, _ = align_whole_pixels(burst)
    with torch.no_grad():
        out = model(burst, item.noise_map, return_aux=True)
    aux, clean = out.aux, item.clean[0]
    dark = linear_to_srgb(clean) < DARK
    rows = []
    for c in range(clean.shape[0]):
        d = dark[c]
        if not d.any():
            continue

        def err(t: torch.Tensor, c: int = c, d: torch.Tensor = d) -> float:
            return round(1000 * float((t - clean[c])[..., d].mean()), 2)

        row = {"channel": c, "n": int(d.sum()), "out": err(out.image[0, c])}
        row["ksum"] = round(float(aux["kernels"][0, :, c].sum(1)[:, d].mean()), 3)
        row["kpath"] = err(aux["filtered"][0, :, c])
        if "weights" in aux:
            row["W"] = round(float(aux["weights"][0, :, c][:, d].mean()), 3)
            row["rpath"] = err(aux["residuals"][0, :, c])
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("testset", help="a folder written by burstkpn make-testset")
    p.add_argument("--models", required=True, help="comma-separated names or weight files")
    p.add_argument("--images", default=None, help="comma-separated image names (default: all)")
    p.add_argument("--levels", default=None, help="comma-separated levels (default: all)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    a = p.parse_args(argv)
    images = None if a.images is None else set(a.images.split(","))
    levels = None if a.levels is None else set(a.levels.split(","))
    models = {name: resolve_model(name, "denoise").eval().float() for name in a.models.split(",")}
    rows = []
    print("model | image | level | channel | n | out | ksum | W | kpath | rpath")
    for item in TestSet(a.testset):
        if (images and item.image not in images) or (levels and item.level not in levels):
            continue
        for name, model in models.items():
            for row in channel_paths(model, item):
                row = {"model": name, "image": item.image, "level": item.level, **row}
                rows.append(row)
                cells = [str(row.get(k, "")) for k in KEYS]
                print(" | ".join([name, item.image, item.level, *cells]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
