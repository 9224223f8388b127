"""The reports of ``bench real`` (:mod:`burstkpn.bench.real`): ``results.json``, ``report.md``
with the paragraphs that say what was scored against what, the crop grid PNG of every case and
``real.html``, one self-contained page with the grids embedded."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from burstkpn.bench.defaults import CLASSICAL_REAL
from burstkpn.bench.figures import DETAIL, GRID
from burstkpn.bench.html import CSS, esc, png_uri, table_html
from burstkpn.bench.tables import json_bytes, markdown_table, standing
from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.evaluation import summarize


def per_image_summary(result: dict) -> dict:
    """:func:`~burstkpn.evaluation.summarize` with one column per image."""
    images = [c["name"] for c in result["cases"]]
    rows = [r | {"level": r["image"]} for r in result["rows"]]
    return summarize(result | {"rows": rows, "levels": images})


def grid_file(case_name: str, single: bool) -> str:
    return "crops.png" if single else f"crops_{re.sub(r'[^A-Za-z0-9_.-]+', '_', case_name)}.png"


def explanation(kind: str, result: dict) -> list[str]:
    """The report's paragraphs: what was scored against what, and how to read it."""
    if kind == "burst":
        c = result["cases"][0]
        n = c["noise"]
        h, w = c["size"]
        shift = max((abs(v) for s in c["shifts"] for v in s), default=0.0)
        return [
            f"Real static burst, {len(c['frames'])} frames, {w}x{h} px evaluated. Split in two "
            f"halves: the methods denoise {', '.join(c['denoised'])} (the first is the "
            f"reference); the pseudo ground truth is {', '.join(c['pseudo_ground_truth'])} "
            "aligned to the reference (global translation, phase correlation + cubic splines, "
            f"linear light; largest shift {shift:.2f} px) and averaged, then sRGB-encoded.",
            "The pseudo ground truth is itself noisy (and anything that moved between frames "
            "counts against it): **absolute PSNRs are lower bounds**. Its noise is independent "
            "of the first half, but its alignment error is not independent of the methods': it "
            "is made the way `align_mean` and `align_bm3d` are made (cubic-spline shifts, then "
            "a mean), and on synthetic static bursts whose truth is known "
            "(`python benchmarks/real_score_check.py`) this score ranks `align_mean` above the "
            "burst models where the truth ranks it level with them or below. Compare methods "
            "of the same kind on it; between learned and align-based methods the score favours "
            "the latter.",
            f"Every method uses the noise level measured on the first half (as `--noise auto` "
            f"does, `{n['estimator']}`): sigma_r = {n['sigma_r']:.4g}, sigma_s = "
            f"{n['sigma_s']:.4g} (pooled over channels; classical methods use these, burst "
            "models get the measurement itself, per-channel levels included). Burst models run "
            f"through `burstkpn denoise`'s code path (`denoise_burst`) on the "
            f"{len(c['denoised'])} frames, repeated cyclically to fill their 8 slots; "
            "single-image models see the reference only (and measure its noise themselves).",
            f"PSNR (dB) / SSIM on the sRGB images clipped to [0, 1], a {c['border']}-px border "
            "ignored (alignment pads there); s / MP is wall time per megapixel.",
        ]
    levels = ", ".join(
        f"{c['name']} {c['size'][1]}x{c['size'][0]} (sigma_r {c['noise']['sigma_r']:.3g}, "
        f"sigma_s {c['noise']['sigma_s']:.3g})"
        for c in result["cases"]
    )
    return [
        f"Real noisy / mean pairs ({result['bursts']}): the noisy image is the only input, the "
        "mean of many captures the ground truth (near: it keeps a little noise, so PSNRs are "
        "slightly low for every method alike).",
        "Every method uses the noise level of the single-image estimator (`estimate_or_floor`, "
        f"what `--noise auto` measures on one image) in linear light: {levels}. Burst models "
        "get the one image in every frame slot (`burstkpn denoise` refuses a single image for "
        "a burst model): with one noise realisation there is nothing to average, so their rows "
        "measure them as spatial filters. NLM / BM3D here use "
        "the measured Poisson-Gaussian level through the Anscombe transform (`bench quality`'s "
        "settings), unlike `bench restore`, which estimates one sigma on the sRGB image.",
        "PSNR (dB) / SSIM on the sRGB images clipped to [0, 1], 8-pixel border ignored, per "
        "image then averaged; s / MP is wall time per megapixel.",
    ]


def write_real_reports(result: dict, out: Path, kind: str, command: str, source: str) -> dict:
    """results.json, report.md, the crop grid PNG(s) and real.html in ``out``; returns what
    results.json holds."""
    summary = summarize(result)
    single = len(result["grids"]) == 1
    files = {name: grid_file(name, single) for name in result["grids"]}
    for name, png in result["grids"].items():
        atomic_write_bytes(out / files[name], png)
    per_image = per_image_summary(result) if result["bursts"] > 1 else None
    payload = {
        "command": command,
        "kind": kind,
        "source": source,
        "summary": summary,
        "per_image": per_image,
        "notes": result["notes"],
        "cases": result["cases"],
        "rows": result["rows"],
    }
    atomic_write_bytes(out / "results.json", json_bytes(payload))
    title = "Real burst without ground truth" if kind == "burst" else "Real noisy / mean pairs"
    paragraphs = explanation(kind, result)
    stand = standing(summary, classical=CLASSICAL_REAL)
    noted = [f"- {m}: {n}" for m, n in result["notes"].items() if n]
    md = [f"# {title}: {source}", "", f"`{command}`", ""]
    for p in paragraphs:
        md += [p, ""]
    md += [markdown_table(summary), ""]
    if per_image is not None:
        md += ["Per image:", "", markdown_table(per_image), ""]
    if stand:
        md += ["Standing (mean PSNR, learned minus classical):", "", *stand, ""]
    if noted:
        md += ["Methods:", "", *noted, ""]
    detail = DETAIL
    for name, file in files.items():
        md += [
            f"Central {GRID}x{GRID} crop of {name} (top) and the {detail}x{detail} window of "
            "most detail (red box) enlarged (bottom), PSNR of the whole scored image:",
            "",
            f"![{name}]({file})",
            "",
        ]
    atomic_write_bytes(out / "report.md", "\n".join(md).encode())
    write_real_html(out / "real.html", title, source, command, paragraphs, payload, result)
    return payload


def write_real_html(
    path: Path,
    title: str,
    source: str,
    command: str,
    paragraphs: Sequence[str],
    payload: dict,
    result: dict,
) -> None:
    """One self-contained page (the report's CSS and table, images embedded)."""

    def para(text: str) -> str:
        text = esc(text)
        text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
        return "<p>" + re.sub(r"`(.+?)`", r"<code>\1</code>", text) + "</p>"

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style></head>",
        "<body>",
        f"<h1>{esc(title)}: {esc(source)}</h1>",
        f'<pre class="caption">{esc(command)}</pre>',
        *[para(p) for p in paragraphs],
        "<h2>Results</h2>",
        table_html(payload["summary"]),
    ]
    if payload["per_image"] is not None:
        parts += ["<h2>Per image</h2>", table_html(payload["per_image"])]
    noted = [f"<li>{esc(m)}: {esc(n)}</li>" for m, n in result["notes"].items() if n]
    if noted:
        parts += ["<h2>Methods</h2>", "<ul>", *noted, "</ul>"]
    parts.append("<h2>Crops</h2>")
    for name, png in result["grids"].items():
        uri = png_uri(png)
        parts += [
            f"<h3>{esc(name)}</h3>",
            f'<p class="note">Central {GRID}&times;{GRID} crop (top) and the '
            f"{DETAIL}&times;{DETAIL} window of most detail (red box) enlarged (bottom).</p>",
            f'<img class="chart" src="{uri}" alt="{esc(name)} crops">',
        ]
    parts += ["</body>", "</html>", ""]
    atomic_write_bytes(path, "\n".join(parts).encode("utf-8"))
