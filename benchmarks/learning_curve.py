"""Learning curve of training runs: validation PSNR per gain against steps, with the levels of
single-frame BM3D and align + BM3D on the same validation bursts as horizontal lines.

The validation bursts are the run's own (``burstkpn.train.make_val_set`` of its config.yaml:
``val_bursts`` bursts from the validation photos cycling through Gain 1-4, seeded apart from
the training data), so the lines and the curve are measured on identical inputs with the same
PSNR.

    python benchmarks/learning_curve.py RUN [RUN ...] --out docs/training/learning_curve.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from burstkpn.bench.methods import align_bm3d, bm3d_reference  # noqa: E402
from burstkpn.data.degrade.noise import NOISE_LEVELS  # noqa: E402
from burstkpn.data.io.files import atomic_write_bytes  # noqa: E402
from burstkpn.metrics import psnr  # noqa: E402
from burstkpn.train import VAL_LEVELS, make_val_set, read_config  # noqa: E402
from burstkpn.viz import figure_png  # noqa: E402


def classical_levels(run: Path) -> dict[str, dict[str, float]]:
    """Mean PSNR per gain of BM3D (reference frame) and align + BM3D on the run's validation
    bursts."""
    cfg = read_config(run)
    scores: dict[str, dict[str, list[float]]] = {"bm3d": {}, "align_bm3d": {}}
    for item in make_val_set(cfg):
        level = NOISE_LEVELS[item["level"]]
        burst = SimpleNamespace(
            noisy=item["noisy"],
            noise_map=item["noise_map"],
            sigma_r=level.sigma_r,
            sigma_s=level.sigma_s,
        )
        for name, method in (("bm3d", bm3d_reference), ("align_bm3d", align_bm3d)):
            out = method(burst)
            value = float(psnr(out, item["clean"]).mean())
            scores[name].setdefault(item["level"], []).append(value)
    return {m: {k: sum(v) / len(v) for k, v in per.items()} for m, per in scores.items()}


def read_curve(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return [r for r in rows if "val_psnr" in r]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (same validation set)")
    ap.add_argument("--out", required=True, type=Path, help="PNG to write")
    ap.add_argument("--json", type=Path, help="also write the curve and levels as JSON")
    ap.add_argument(
        "--levels", type=Path, help="reuse the classical levels of an earlier --json output"
    )
    ap.add_argument(
        "--table", action="store_true", help="also print the validation rows as markdown"
    )
    ap.add_argument(
        "--mark",
        action="append",
        default=[],
        metavar="STEP:LABEL",
        help="a vertical line at STEP (a recipe change), repeatable",
    )
    ap.add_argument(
        "--max-step",
        type=int,
        help="only the validations up to this step (runs compared at equal steps)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.levels:
        levels = json.loads(args.levels.read_text())["classical"]
    else:
        levels = classical_levels(args.runs[0])
    fig, axes = plt.subplots(1, len(VAL_LEVELS), figsize=(4 * len(VAL_LEVELS), 3.6))
    curves = {}
    for run in args.runs:
        rows = read_curve(run)
        if args.max_step is not None:
            rows = [r for r in rows if r["step"] <= args.max_step]
        curves[run.name] = rows
        for ax, level in zip(axes, VAL_LEVELS, strict=True):
            ax.plot(
                [r["step"] for r in rows],
                [r[f"val_psnr_{level}"] for r in rows],
                "-o",
                ms=2.5,
                label=run.name,
            )
    for ax, level in zip(axes, VAL_LEVELS, strict=True):
        lines = [levels["bm3d"][level], levels["align_bm3d"][level]]
        values = [r[f"val_psnr_{level}"] for rows in curves.values() for r in rows] + lines
        ax.set_ylim(min(values) - 0.5, max(values) + 0.5)  # the lines always in view
        ax.axhline(levels["bm3d"][level], color="grey", ls="--", lw=1, label="BM3D (reference)")
        ax.axhline(levels["align_bm3d"][level], color="black", ls=":", lw=1.2, label="align + BM3D")
        for mark in args.mark:
            step, _, label = mark.partition(":")
            ax.axvline(int(step), color="tab:red", ls="-.", lw=1, label=label or None)
        ax.set_title(level.replace("gain", "Gain "))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation PSNR (dB)")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, figure_png(fig, dpi=110))
    if args.json:
        payload = {"classical": levels, "curves": curves}
        atomic_write_bytes(args.json, (json.dumps(payload, indent=1) + "\n").encode())
    print(json.dumps(levels))
    if args.table:
        for name, rows in curves.items():
            print(f"\n{name}:\n" + status_table(rows))


def status_table(rows: list[dict]) -> str:
    """The validation rows as the markdown table of training/README.md ("The long run")."""
    head = " | ".join(level.replace("gain", "Gain ") for level in VAL_LEVELS)
    lines = [f"| step | {head} | mean kernel sum | mean W |", "|---" * (len(VAL_LEVELS) + 3) + "|"]
    for r in rows:
        psnr = " | ".join(f"{r[f'val_psnr_{level}']:.2f}" for level in VAL_LEVELS)
        ksum, w = r.get("val_kernel_sum"), r.get("val_weight")
        extra = " | ".join("" if v is None else f"{v:.3f}" for v in (ksum, w))
        lines.append(f"| {r['step']} | {psnr} | {extra} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
