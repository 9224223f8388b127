"""The benches' tables: the markdown table of a summary (:func:`burstkpn.evaluation.summarize`),
the standing sentences of learned against classical methods, the CSV / JSON files of the rows
(:func:`write_results`) and the markdown report around them (:func:`markdown_report`), which
``bench quality``, ``bench video`` and ``bench restore`` share."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path

from burstkpn.bench.defaults import CLASSICAL_ANCHORS
from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.evaluation import summarize


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


def write_results(result: dict, out: Path, command: str, **head: object) -> dict:
    """``results.csv`` (the rows of ``result``) and ``results.json`` (``command``, the ``head``
    entries, the summary, the notes and the rows) in ``out``; returns the summary
    (:func:`burstkpn.evaluation.summarize`)."""
    summary = summarize(result)
    atomic_write_bytes(out / "results.csv", csv_bytes(result["rows"]))
    payload = {
        "command": command,
        **head,
        "summary": summary,
        "notes": result["notes"],
        "rows": result["rows"],
    }
    atomic_write_bytes(out / "results.json", json_bytes(payload))
    return summary


def markdown_report(
    title: str,
    command: str,
    intro: str,
    summary: dict,
    notes: Mapping[str, str],
    *,
    classical: tuple[str, ...] = CLASSICAL_ANCHORS,
    against: str = "classical",
    before: str = "",
    after: str = "",
    methods: bool = False,
) -> str:
    """The text of ``report.md``: ``title``, the ``command``, the ``intro`` paragraph, the
    table, ``before`` (markdown), the standing against ``classical`` (named ``against``),
    ``after`` (markdown), the notes of the methods that ran (with ``methods``) and the skipped
    methods with their reasons."""
    lines = standing(summary, classical=classical)
    skipped = "".join(f"\n- {m}: {notes[m]}" for m in summary["skipped"])
    noted = "".join(f"\n- {m}: {n}" for m, n in notes.items() if n and m not in summary["skipped"])
    return (
        f"# {title}\n\n`{command}`\n\n{intro}\n\n"
        + markdown_table(summary)
        + "\n"
        + before
        + (
            f"\nStanding (mean PSNR, learned minus {against}):\n\n" + "\n".join(lines) + "\n"
            if lines
            else ""
        )
        + after
        + (f"\nMethods:{noted}\n" if methods and noted else "")
        + (f"\nSkipped:{skipped}\n" if skipped else "")
    )
