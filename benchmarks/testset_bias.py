"""PSNR and mean signed error (bias) of burst models on a test set, per noise level.

    python benchmarks/testset_bias.py TESTSET [--limit 12] WEIGHTS_OR_NAME ...

For every model and level: mean PSNR (as ``bench quality``: sRGB, 8-pixel border) and the mean
of ``sRGB(output) - sRGB(clean)`` over all pixels (negative: darker than the truth), next to
the noisy reference. A bias of b alone caps PSNR at ``-20 log10 |b|`` dB (0.015 -> 36.5 dB), so
at Gain 1 a few thousandths of bias cost whole decibels. The true noise map is given.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch

from burstkpn.bench.quality import select_entries
from burstkpn.data.testset import TestSet
from burstkpn.metrics import prepare, psnr
from burstkpn.restoration import load_restoration_model


def bias(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((prepare(pred) - prepare(target)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("testset")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--limit", type=int, default=12, help="first N images (all levels)")
    args = parser.parse_args()
    testset = TestSet(args.testset)
    entries = select_entries(testset, args.limit)  # the subset `bench quality --limit` uses
    images = {e["image"] for e in entries}
    models = {name: load_restoration_model(name).eval() for name in args.models}
    stats: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for entry in entries:
        burst = testset.load(entry)
        ref = burst.noisy[:, 0]
        stats[("reference", burst.level)].append(
            (float(psnr(ref, burst.clean)[0]), bias(ref, burst.clean))
        )
        for name, model in models.items():
            with torch.no_grad():
                out = model(burst.noisy, burst.noise_map).image
            stats[(name, burst.level)].append(
                (float(psnr(out, burst.clean)[0]), bias(out, burst.clean))
            )
    levels = testset.levels
    print(f"{len(images)} images of {args.testset}; PSNR dB / mean sRGB bias per level")
    print("| model | " + " | ".join(levels) + " |")
    print("|---|" + "---|" * len(levels))
    for name in ["reference", *models]:
        cells = []
        for level in levels:
            rows = stats[(name, level)]
            p = sum(r[0] for r in rows) / len(rows)
            b = sum(r[1] for r in rows) / len(rows)
            cells.append(f"{p:.2f} / {b:+.4f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
