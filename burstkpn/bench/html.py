"""The pieces of the benches' HTML pages: the inline CSS, escaping, number formatting, the
results table (laid out like [AME-KPN] Table 1: methods x noise levels, PSNR / SSIM, the best
value per level in bold) and PNG data URIs, so that every page is one self-contained file."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

DASH = "\u2013"  # shown for missing numbers

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; background: #fff;
       line-height: 1.4; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
pre.caption { background: #f5f5f5; border: 1px solid #ddd; padding: 0.6em 0.8em;
              white-space: pre-wrap; word-break: break-word; font-size: 0.9em; }
table.results { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
table.results th, table.results td { border: 1px solid #999; padding: 0.25em 0.6em; }
table.results th { background: #eee; text-align: center; }
table.results td { text-align: right; font-variant-numeric: tabular-nums; }
table.results td.method, table.results td.note { text-align: left; }
table.results tbody tr:nth-child(even) { background: #fafafa; }
img.chart { max-width: 100%; border: 1px solid #ddd; }
div.example { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure.crop { margin: 0; text-align: center; }
figure.crop img { display: block; margin: 0 auto 4px; image-rendering: pixelated;
                  border: 1px solid #ccc; }
figure.crop figcaption { font-size: 0.85em; }
figure.crop .db { color: #555; }
div.vis img { max-width: 100%; display: block; margin-bottom: 0.6em; }
p.note { color: #555; font-size: 0.9em; }
"""


def esc(text: Any) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def png_uri(png: bytes) -> str:
    """PNG bytes -> ``data:image/png;base64,...``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def fmt(value: float | None, digits: int) -> str:
    """``value`` with ``digits`` decimals; :data:`DASH` for a missing or non-finite one."""
    if value is None or not math.isfinite(float(value)):
        return DASH
    return f"{float(value):.{digits}f}"


def _best(values: Sequence[float | None]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return max(finite) if finite else None


def table_html(table: Mapping[str, Any]) -> str:
    """The results table of a summary (:func:`burstkpn.evaluation.summarize`): a row per
    method, PSNR / SSIM per level, s / MP, and a note column where a method has one."""
    levels = list(table["levels"])
    rows = list(table["rows"])
    has_notes = any(r.get("note") for r in rows)
    best_psnr = {lv: _best([r.get("psnr", {}).get(lv) for r in rows]) for lv in levels}
    best_ssim = {lv: _best([r.get("ssim", {}).get(lv) for r in rows]) for lv in levels}

    def cell(value: float | None, digits: int, best: float | None) -> str:
        text = fmt(value, digits)
        # compare the shown numbers, so ties at display precision are all bold
        if text != DASH and best is not None and text == fmt(best, digits):
            return f'<td class="best"><b>{text}</b></td>'
        return f"<td>{text}</td>"

    out = ['<table class="results">', "<thead>", "<tr>", '<th rowspan="2">Method</th>']
    out += [f'<th colspan="2">{esc(lv)}</th>' for lv in levels]
    out.append('<th rowspan="2">s / MP</th>')
    if has_notes:
        out.append('<th rowspan="2">Note</th>')
    out += ["</tr>", "<tr>"]
    out += ["<th>PSNR</th><th>SSIM</th>" for _ in levels]
    out += ["</tr>", "</thead>", "<tbody>"]
    for r in rows:
        tds = [f'<td class="method">{esc(r["method"])}</td>']
        for lv in levels:
            tds.append(cell(r.get("psnr", {}).get(lv), 2, best_psnr[lv]))
            tds.append(cell(r.get("ssim", {}).get(lv), 4, best_ssim[lv]))
        sec = r.get("sec_per_mp")
        tds.append(f"<td>{fmt(sec, 3 if sec is not None and sec < 1 else 2)}</td>")
        if has_notes:
            tds.append(f'<td class="note">{esc(r.get("note") or "")}</td>')
        out.append("<tr>" + "".join(tds) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)
