"""The per-level summary of an evaluation's rows (the benches' tables)."""

from __future__ import annotations

from collections.abc import Iterable


def mean(values: Iterable[float]) -> float | None:
    """The mean of ``values`` in their order (``None`` for none)."""
    values = list(values)
    return sum(values) / len(values) if values else None


def pooled_dark_bias(rows: list[dict], key: str = "dark") -> float | None:
    """The shadow bias (``key``: ``dark`` or ``dark_region``) of several rows pooled over their
    dark values (``None`` where the rows have none, or come from a report written before the
    rows had it)."""
    count = sum(r.get(f"{key}_count", 0) for r in rows)
    if not count:
        return None
    total = sum(r[f"{key}_bias"] * r[f"{key}_count"] for r in rows if r.get(f"{key}_count"))
    return total / count


def summarize(result: dict) -> dict:
    """Mean PSNR / SSIM per method and level, and seconds per megapixel per method, of a
    result with ``rows``, ``methods``, ``levels`` and ``notes``."""
    table_rows = []
    for name in result["methods"]:
        mine = [r for r in result["rows"] if r["method"] == name]
        row = {
            "method": name,
            "psnr": {},
            "ssim": {},
            "dark_bias": {},
            "dark_region_bias": {},
            "note": result["notes"].get(name, ""),
        }
        for level in result["levels"]:
            at = [r for r in mine if r["level"] == level]
            row["psnr"][level] = mean(r["psnr"] for r in at)
            row["ssim"][level] = mean(r["ssim"] for r in at)
            row["dark_bias"][level] = pooled_dark_bias(at)
            row["dark_region_bias"][level] = pooled_dark_bias(at, "dark_region")
        total_mp = sum(r["megapixels"] for r in mine)
        row["sec_per_mp"] = sum(r["seconds"] for r in mine) / total_mp if total_mp else None
        table_rows.append(row)
    skipped = [m for m, note in result["notes"].items() if note.startswith("skipped")]
    return {"levels": result["levels"], "rows": table_rows, "skipped": skipped}
