"""Training throughput of ``burstkpn train`` (images/s), one setting added per row.

Each row is a fresh process running the real trainer (synthetic Urban100 bursts, Adam, the
annealed loss, no validation) for a few steps; the median of the logged ``images_per_s`` after
the first two logs (warm-up, compilation) is reported. Rows: the round-5 setting (float32, one
thread), then both threads, then 'auto' precision (bfloat16 autocast where the CPU has native
bfloat16), then a prefetching thread, then ``torch.compile``.

    python benchmarks/train_speed.py --data ../shared/data/train/urban100 [--model ame_kpn]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from write_benchmarks_md import machine  # the same machine line as BENCHMARKS.md

ROWS = (  # label, precision, threads, prefetch, compile
    ("round 5: float32, 1 thread", "fp32", 1, 0, False),
    ("+ threads = cores", "fp32", 0, 0, False),
    ("+ precision auto", "auto", 0, 0, False),
    ("+ prefetch thread (2 batches)", "auto", 0, 2, False),
    ("+ torch.compile (no prefetch)", "auto", 0, 0, True),
)


def worker(args: argparse.Namespace) -> None:
    from burstkpn.runtime import resolve_precision
    from burstkpn.train import TrainConfig, train

    cfg = TrainConfig(
        model=args.model,
        size="cpu",
        data=args.data,
        patch_size=args.patch,
        batch_size=args.batch,
        steps=args.steps,
        precision=args.precision,
        threads=args.threads,
        prefetch=args.prefetch,
        compile=args.compile,
        val_every=0,
        log_every=args.log_every,
        ckpt_every=10**9,
    )
    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, tmp, progress=False)
        logs = [json.loads(line) for line in open(Path(tmp) / "metrics.jsonl")]
    rates = sorted(entry["images_per_s"] for entry in logs[2:])
    print(
        json.dumps(
            {
                "images_per_s": rates[len(rates) // 2],
                "precision": resolve_precision(args.precision),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder of clean training photos")
    ap.add_argument("--model", default="ame_kpn")
    ap.add_argument("--patches", default="64,128", help="patch sizes, comma-separated")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--logs", type=int, default=6, help="logged intervals per row")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--patch", type=int, default=64, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--log-every", type=int, default=5, help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--prefetch", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"Machine: {machine()}; batch {args.batch}, model {args.model} (cpu size)\n")
    print("| setting | patch | precision | images/s | x round 5 |")
    print("|---|---|---|---|---|")
    for patch in (int(p) for p in args.patches.split(",")):
        log_every = 5 if patch <= 64 else 2
        base = None
        for label, precision, threads, prefetch, compile_ in ROWS:
            steps = log_every * (args.logs + 2) + (20 if compile_ else 0)
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                f"--data={args.data}",
                f"--model={args.model}",
                f"--batch={args.batch}",
                f"--patch={patch}",
                f"--steps={steps}",
                f"--log-every={log_every}",
                f"--precision={precision}",
                f"--threads={threads}",
                f"--prefetch={prefetch}",
            ] + (["--compile"] if compile_ else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            rate = result["images_per_s"]
            base = base or rate
            print(
                f"| {label} | {patch} | {result['precision']} | {rate:.1f} | {rate / base:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
