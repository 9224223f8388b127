"""Thin a committed run's ``metrics.jsonl`` to fit the repository's size budget.

    python training/thin_metrics.py training/runs/long_ame_kpn/metrics.jsonl --every 50

Keeps every validation row (any ``val_*`` key: the learning curve and its table read only
those), the first and last rows, and the training rows whose step is a multiple of
``--every``; drops the rest. The file is replaced atomically; the full file stays in the git
history (training/README.md names the commit). Rows are kept unchanged, so the learning-curve
table (``benchmarks/learning_curve.py``) gives the same numbers before and after.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from burstkpn.data.io.files import atomic_write_bytes


def kept_indices(rows: list[dict], every: int) -> list[int]:
    """The indices of the rows kept: validation rows, the first and the last, and steps
    divisible by ``every``."""
    if every < 1:
        raise ValueError(f"--every must be at least 1, got {every}")
    last = len(rows) - 1
    return [
        i
        for i, row in enumerate(rows)
        if i in (0, last)
        or any(k.startswith("val_") for k in row)
        or int(row.get("step", 0)) % every == 0
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", type=Path, help="a run's metrics.jsonl")
    p.add_argument("--every", type=int, default=50, help="keep training rows every N steps")
    args = p.parse_args(argv)
    if not args.path.is_file():
        raise SystemExit(f"error: no such file: {args.path}")
    lines = [ln for ln in args.path.read_text().splitlines() if ln.strip()]
    try:
        rows = [json.loads(ln) for ln in lines]
    except json.JSONDecodeError as err:
        raise SystemExit(f"error: {args.path} is not JSON lines: {err}") from None
    try:
        kept = kept_indices(rows, args.every)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    text = "".join(lines[i] + "\n" for i in kept)  # the kept rows verbatim
    atomic_write_bytes(args.path, text.encode())
    print(f"{args.path}: kept {len(kept)} of {len(rows)} rows")


if __name__ == "__main__":
    main()
