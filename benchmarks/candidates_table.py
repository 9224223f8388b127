"""The recipe candidates' table (issue 22): for each candidate run of
``training/candidates.sh``, its patch size, the images/s it trained at, the steps it reached
in its budget, its last validation and its ``bench quality`` PSNR per gain.

    python benchmarks/candidates_table.py runs/cand_a_round5 runs/cand_b_patch128 ...

images/s is the median of the run's logged rate (the chains ran pinned to one core each, one
thread, so read it as a relative number; the full-machine rates are in training/README.md,
"Throughput").
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import yaml


def row(run: Path) -> str:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    logs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    rate = statistics.median(r["images_per_s"] for r in logs)
    bench = json.loads((run / "bench" / "results.json").read_text())["summary"]
    model = next(r for r in bench["rows"] if r["method"] != "reference")
    ref = next(r for r in bench["rows"] if r["method"] == "reference")
    cells = " | ".join(
        f"{model['psnr'][lv]:.2f} ({model['psnr'][lv] - ref['psnr'][lv]:+.2f})"
        for lv in bench["levels"]
    )
    return (
        f"| {run.name.removeprefix('cand_')} | {cfg['patch_size']} x {cfg['batch_size']} | "
        f"{rate:.1f} | {logs[-1]['step']} | {cells} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    args = ap.parse_args()
    first = json.loads((args.runs[0] / "bench" / "results.json").read_text())
    levels = first["summary"]["levels"]
    print(f"Scored by: `{first['command']}` (per run)\n")
    head = " | ".join(f"{lv} PSNR (vs noisy ref.)" for lv in levels)
    print(f"| candidate | patch x batch | images/s (1 core) | steps | {head} |")
    print("|---|---|---|---|" + "---|" * len(levels))
    ref = next(r for r in first["summary"]["rows"] if r["method"] == "reference")
    print(
        "| noisy reference | | | | " + " | ".join(f"{ref['psnr'][lv]:.2f}" for lv in levels) + " |"
    )
    for run in args.runs:
        print(row(run))


if __name__ == "__main__":
    main()
