"""The benches' tables: the markdown table of a summary (:func:`burstkpn.evaluation.summarize`),
the standing sentences of learned against classical methods, and the CSV / JSON files of the
rows."""

from __future__ import annotations

import csv
import io
import json

from burstkpn.bench.defaults import CLASSICAL_ANCHORS


def csv_bytes(rows: list[dict]) -> bytes:
    """``rows`` as CSV (the columns of the first row), UTF-8."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def json_bytes(payload: dict) -> bytes:
    """``payload`` as indented JSON with a final newline."""
    return (json.dumps(payload, indent=1) + "\n").encode()


def markdown_table(summary: dict) -> str:
    levels = summary["levels"]
    head = "| Method | " + " | ".join(f"{lv} PSNR | {lv} SSIM" for lv in levels) + " | s / MP |"
    sep = "|---|" + "---|---|" * len(levels) + "---|"
    lines = [head, sep]

    def fmt(v, digits):
        return "–" if v is None else f"{v:.{digits}f}"

    for row in summary["rows"]:
        cells = []
        for lv in levels:
            cells += [fmt(row["psnr"][lv], 2), fmt(row["ssim"][lv], 4)]
        lines.append(
            f"| {row['method']} | " + " | ".join(cells) + f" | {fmt(row['sec_per_mp'], 2)} |"
        )
    return "\n".join(lines)


def bias_table(summary: dict) -> str:
    """Brightness in the shadows: each method's mean signed sRGB error over the clean values
    below 0.15 and, after a slash, over the inside of dark regions (dark within 7 px;
    :func:`burstkpn.metrics.dark_bias`), per level, in 1/255 steps (positive: brighter than the
    truth); empty when the summary has none (reports written before it)."""
    levels = summary["levels"]
    rows = [
        r for r in summary["rows"] if any(v is not None for v in r.get("dark_bias", {}).values())
    ]
    if not rows:
        return ""
    lines = ["| Method | " + " | ".join(levels) + " |", "|---|" + "---|" * len(levels)]

    def cell(values: dict, lv: str) -> str:
        return "–" if values.get(lv) is None else f"{255 * values[lv]:+.1f}"

    for row in rows:
        region = row.get("dark_region_bias", {})
        cells = [
            cell(row["dark_bias"], lv) + (f" / {cell(region, lv)}" if region else "")
            for lv in levels
        ]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def standing(
    summary: dict, *, tie_db: float = 0.05, classical: tuple[str, ...] = CLASSICAL_ANCHORS
) -> list[str]:
    """Plain sentences, computed from ``summary``: where each learned method stands against
    every classical method (and the anchors) at every level, by mean PSNR. ``classical``
    names the non-learned methods (``bench restore`` has its own)."""
    rows = {r["method"]: r for r in summary["rows"]}
    learned = [m for m in rows if m not in classical]
    classical = [m for m in classical if m in rows]
    if not classical:  # nothing to stand against
        return []
    lines = []
    for m in learned:
        for lv in summary["levels"]:
            mine = rows[m]["psnr"][lv]
            if mine is None:
                continue
            above, below, tied = [], [], []
            for c in classical:
                theirs = rows[c]["psnr"][lv]
                if theirs is None:
                    continue
                d = mine - theirs
                entry = f"{c} ({d:+.2f} dB)"
                (tied if abs(d) < tie_db else above if d > 0 else below).append(entry)
            parts = []
            if above:
                parts.append("above " + ", ".join(above))
            if tied:
                parts.append("level with " + ", ".join(tied))
            if below:
                parts.append("below " + ", ".join(below))
            lines.append(f"- {m} at {lv} ({mine:.2f} dB): " + "; ".join(parts) + ".")
    return lines
