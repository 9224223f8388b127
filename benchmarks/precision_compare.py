"""bfloat16 autocast + channels_last vs float32 training on CPU: same model, seed and data.

    python benchmarks/precision_compare.py --steps 200 --out docs/precision_compare

Trains the cpu-size model twice (fp32, bf16) with the trainer of burstkpn.train, then writes a
plot of both loss curves and a JSON summary (mean loss over windows of steps, seconds per step)
into OUT. The bf16 run should stay within the step-to-step noise of the fp32 curve.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from burstkpn.train import TrainConfig, train


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="ame_kpn")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--data", default=None, help="clean photos (default: embedded)")
    p.add_argument("--out", default="docs/precision_compare")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves, summary = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16"):
            cfg = TrainConfig(
                model=args.model,
                data=args.data,
                steps=args.steps,
                batch_size=args.batch_size,
                precision=precision,
                log_every=1,
                val_every=0,
                ckpt_every=args.steps,
                seed=0,
            )
            run = Path(tmp) / precision
            train(cfg, run, progress=False)
            rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
            curves[precision] = [r["basic"] for r in rows]
            summary[precision] = {
                "s_per_step": statistics.median(
                    args.batch_size / r["images_per_s"] for r in rows[1:]
                ),
            }
    w = max(args.steps // 4, 1)
    diffs = [b - a for a, b in zip(curves["fp32"], curves["bf16"], strict=True)]
    noise = statistics.pstdev(
        [curves["fp32"][i] - curves["fp32"][i - 1] for i in range(1, len(curves["fp32"]))]
    )
    for precision, c in curves.items():
        summary[precision]["mean_basic_loss_by_quarter"] = [
            statistics.fmean(c[i : i + w]) for i in range(0, len(c), w)
        ]
    summary["mean_abs_difference"] = statistics.fmean(abs(d) for d in diffs)
    summary["fp32_step_to_step_std"] = noise
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for precision, c in curves.items():
        ax.semilogy(range(1, len(c) + 1), c, lw=0.9, label=precision)
    ax.set_xlabel("step")
    ax.set_ylabel("basic loss (eq. 7)")
    ax.set_title(f"{args.model} cpu: bf16 autocast + channels_last vs fp32")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss_fp32_vs_bf16.png", dpi=90)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
