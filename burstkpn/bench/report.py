"""A self-contained HTML benchmark report: the quality table (laid out like the paper's Table 1),
a PSNR bar chart, example crops with zooms, and an optional look at what AME-KPN predicts at one
pixel. Everything is in one file: images are embedded as base64 PNG data URIs and the CSS is
inline, so the report opens anywhere without network access.

:func:`render_screenshot` renders such a report with a headless Chromium (when installed).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.data.io.images import to_display
from burstkpn.metrics import psnr

MAX_CROP = 256  # largest side of an embedded example crop, in pixels
ZOOM_WINDOW = 48  # side of the zoomed square, in pixels of the crop
ZOOM_FACTOR = 4
DASH = "\u2013"  # shown for missing numbers
MARK_RGB = (255, 40, 40)

_CSS = """
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


# --------------------------------------------------------------------------- small helpers
def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float | None, digits: int) -> str:
    if value is None or not math.isfinite(float(value)):
        return DASH
    return f"{float(value):.{digits}f}"


def _png_uri(img: np.ndarray | Image.Image) -> str:
    """uint8 ``(H, W[, C])`` array or PIL image -> ``data:image/png;base64,...``."""
    pil = img if isinstance(img, Image.Image) else Image.fromarray(img)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fig_uri(fig: Any, dpi: int = 90) -> str:
    """A matplotlib Figure (Agg canvas) -> PNG data URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _to_uint8_rgb(arr: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` float in [0, 1] with C in {1, 3} -> uint8 ``(H, W, 3)``."""
    arr = np.clip(np.asarray(arr, dtype=np.float64), 0.0, 1.0)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.round(arr[:, :, :3] * 255).astype(np.uint8)


def _psnr_db(x: torch.Tensor, clean: torch.Tensor) -> float | None:
    try:
        return float(psnr(x[None], clean[None])[0])
    except ValueError:  # too small for the metric's 8-pixel border: show no number
        return None


def _best(values: Sequence[float | None]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return max(finite) if finite else None


# --------------------------------------------------------------------------- table and chart
def _table_html(table: Mapping[str, Any]) -> str:
    levels = list(table["levels"])
    rows = list(table["rows"])
    has_notes = any(r.get("note") for r in rows)
    best_psnr = {lv: _best([r.get("psnr", {}).get(lv) for r in rows]) for lv in levels}
    best_ssim = {lv: _best([r.get("ssim", {}).get(lv) for r in rows]) for lv in levels}

    def cell(value: float | None, digits: int, best: float | None) -> str:
        text = _fmt(value, digits)
        # compare the shown numbers, so ties at display precision are all bold
        if text != DASH and best is not None and text == _fmt(best, digits):
            return f'<td class="best"><b>{text}</b></td>'
        return f"<td>{text}</td>"

    out = ['<table class="results">', "<thead>", "<tr>", '<th rowspan="2">Method</th>']
    out += [f'<th colspan="2">{_esc(lv)}</th>' for lv in levels]
    out.append('<th rowspan="2">s / MP</th>')
    if has_notes:
        out.append('<th rowspan="2">Note</th>')
    out += ["</tr>", "<tr>"]
    out += ["<th>PSNR</th><th>SSIM</th>" for _ in levels]
    out += ["</tr>", "</thead>", "<tbody>"]
    for r in rows:
        tds = [f'<td class="method">{_esc(r["method"])}</td>']
        for lv in levels:
            tds.append(cell(r.get("psnr", {}).get(lv), 2, best_psnr[lv]))
            tds.append(cell(r.get("ssim", {}).get(lv), 4, best_ssim[lv]))
        sec = r.get("sec_per_mp")
        tds.append(f"<td>{_fmt(sec, 3 if sec is not None and sec < 1 else 2)}</td>")
        if has_notes:
            tds.append(f'<td class="note">{_esc(r.get("note") or "")}</td>')
        out.append("<tr>" + "".join(tds) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def _bar_chart_uri(table: Mapping[str, Any]) -> str:
    from matplotlib.figure import Figure

    levels = list(table["levels"])
    rows = list(table["rows"])
    n = max(len(rows), 1)
    fig = Figure(figsize=(max(6.0, 1.2 + 0.45 * n * len(levels) + 0.4 * len(levels)), 3.8))
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(levels), dtype=np.float64)
    width = 0.8 / n
    lows = []
    for i, r in enumerate(rows):
        vals = [r.get("psnr", {}).get(lv) for lv in levels]
        heights = np.array([np.nan if v is None else float(v) for v in vals])
        lows.extend(heights[np.isfinite(heights)].tolist())
        ax.bar(x - 0.4 + (i + 0.5) * width, heights, width * 0.95, label=str(r["method"]))
    if lows:  # PSNR differences are small next to the values: start the axis near the lowest
        lo, hi = min(lows), max(lows)
        ax.set_ylim(max(0.0, math.floor(lo - 0.15 * max(hi - lo, 1.0)) - 1), hi + 0.5)
    ax.set_xticks(x)
    ax.set_xticklabels(levels)
    ax.set_xlabel("noise level")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if rows:
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return _fig_uri(fig, dpi=90)


# --------------------------------------------------------------------------- example crops
def _crop_box(h: int, w: int) -> tuple[int, int, int, int]:
    """Centre crop of at most MAX_CROP x MAX_CROP: ``(y0, x0, ch, cw)``."""
    ch, cw = min(h, MAX_CROP), min(w, MAX_CROP)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def zoom_window(img: np.ndarray, size: int = ZOOM_WINDOW) -> tuple[int, int, int]:
    """The ``size`` x ``size`` window (clamped to the image) of highest luminance variance in an
    ``(H, W, C)`` image: ``(y, x, side)``. A flat image gives the centre window."""
    lum = np.asarray(img, dtype=np.float64).mean(axis=2)
    h, w = lum.shape
    s = max(1, min(size, h, w))
    ii = np.pad(lum, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    ii2 = np.pad(lum**2, ((1, 0), (1, 0))).cumsum(0).cumsum(1)

    def box(t: np.ndarray) -> np.ndarray:
        return t[s:, s:] - t[:-s, s:] - t[s:, :-s] + t[:-s, :-s]

    var = box(ii2) / s**2 - (box(ii) / s**2) ** 2
    if not np.isfinite(var).all() or var.max() <= 1e-12:
        return (h - s) // 2, (w - s) // 2, s
    y, x = np.unravel_index(int(np.argmax(var)), var.shape)
    return int(y), int(x), s


def _crop_figure(
    x: torch.Tensor,
    box: tuple[int, int, int, int],
    zoom: tuple[int, int, int],
    label: str,
    db: float | None,
) -> str:
    y0, x0, ch, cw = box
    disp = _to_uint8_rgb(to_display(x)[y0 : y0 + ch, x0 : x0 + cw])
    zy, zx, zs = zoom
    zoomed = Image.fromarray(np.ascontiguousarray(disp[zy : zy + zs, zx : zx + zs])).resize(
        (zs * ZOOM_FACTOR, zs * ZOOM_FACTOR), Image.NEAREST
    )
    full = Image.fromarray(disp)
    line = max(1, round(max(ch, cw) / 128))
    ImageDraw.Draw(full).rectangle([zx, zy, zx + zs - 1, zy + zs - 1], outline=MARK_RGB, width=line)
    db_html = f' <span class="db">{db:.2f} dB</span>' if db is not None else ""
    return (
        '<figure class="crop">'
        f'<img src="{_png_uri(full)}" width="{cw}" height="{ch}" alt="{_esc(label)}">'
        f'<img src="{_png_uri(zoomed)}" width="{zoomed.width}" height="{zoomed.height}" '
        f'alt="{_esc(label)} (zoom)">'
        f"<figcaption>{_esc(label)}{db_html}</figcaption>"
        "</figure>"
    )


def _example_html(ex: Mapping[str, Any]) -> str:
    clean = ex["clean"].detach().cpu().float()
    noisy = ex["noisy"].detach().cpu().float()
    _, h, w = clean.shape
    box = _crop_box(h, w)
    y0, x0, ch, cw = box
    zoom = zoom_window(to_display(clean)[y0 : y0 + ch, x0 : x0 + cw])
    figs = [
        _crop_figure(clean, box, zoom, "clean", None),
        _crop_figure(noisy, box, zoom, "noisy reference", _psnr_db(noisy, clean)),
    ]
    for method, out in ex.get("outputs", {}).items():
        out = out.detach().cpu().float()
        figs.append(_crop_figure(out, box, zoom, str(method), _psnr_db(out, clean)))
    zy, zx, zs = zoom
    head = (
        f"<h3>{_esc(ex.get('name', 'example'))} "
        f"<small>({_esc(ex.get('level', ''))})</small></h3>"
        f'<p class="note">{cw}&times;{ch} crop at ({y0}, {x0}) of a {w}&times;{h} image; '
        f"below each, the {zs}&times;{zs} window at ({y0 + zy}, {x0 + zx}) (red box) enlarged "
        f"{ZOOM_FACTOR}&times;. PSNR against clean on the whole image.</p>"
    )
    return head + '<div class="example">' + "".join(figs) + "</div>"


# --------------------------------------------------------------------------- visualisation
def _image_row_uri(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = False,
    marker: tuple[int, int] | None = None,
) -> str:
    """One row of labelled panels; ``marker`` (y, x) is drawn on the first panel."""
    from matplotlib.figure import Figure

    n = len(images)
    h, w = images[0].shape[:2]
    panel = 1.45
    fig = Figure(
        figsize=(panel * n + (0.9 if colorbar else 0.2), panel * h / w + 0.5), layout="constrained"
    )
    axes = fig.subplots(1, n, squeeze=False)[0]
    mappable = None
    for i, (ax, img, title) in enumerate(zip(axes, images, titles, strict=True)):
        mappable = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if marker is not None and i == 0:
            my, mx = marker
            ax.plot([mx], [my], marker="+", color="red", markersize=11, markeredgewidth=1.6)
            ax.plot([mx], [my], marker="o", color="red", markersize=11, fillstyle="none")
    if colorbar and mappable is not None:
        fig.colorbar(mappable, ax=list(axes), fraction=0.025, pad=0.01, shrink=0.9)
    return _fig_uri(fig, dpi=90)


def _visualisation_html(vis: Mapping[str, Any]) -> str:
    py, px = (int(v) for v in vis["pixel"])
    kernels = vis["kernels"].detach().cpu().double()
    n, kk = kernels.shape
    k = math.isqrt(kk)
    if k * k != kk:
        raise ValueError(f"kernels must be (N, K*K), got {tuple(kernels.shape)}")
    parts = [
        "<h2>What AME-KPN predicts at one pixel</h2>",
        f'<p class="note">Pixel (y, x) = ({py}, {px}); N = {n} frames, {k}&times;{k} kernels.</p>',
        '<div class="vis">',
    ]
    kers = [kernels[i].reshape(k, k).numpy() for i in range(n)]
    lim = float(kernels.abs().max()) or 1e-6
    parts.append(f"<h3>Per-frame {k}&times;{k} kernels at ({py}, {px})</h3>")
    titles = [f"frame {i}" for i in range(n)]
    uri = _image_row_uri(kers, titles, cmap="RdBu_r", vmin=-lim, vmax=lim, colorbar=True)
    parts.append(f'<img src="{uri}" alt="kernels">')
    frames = vis.get("frames")
    if frames is not None:
        frames = frames.detach().cpu().float()
        imgs = [to_display(frames[i][None])[:, :, 0] for i in range(frames.shape[0])]
        titles = [f"frame {i}" for i in range(len(imgs))]
        uri = _image_row_uri(imgs, titles, cmap="gray", vmin=0, vmax=1, marker=(py, px))
        parts += [
            "<h3>Noisy frames (sRGB; the pixel is marked on frame 0)</h3>",
            f'<img src="{uri}" alt="frames">',
        ]
    weights = vis.get("weights")
    if weights is not None:
        weights = weights.detach().cpu().double().numpy()
        titles = [f"frame {i}" for i in range(weights.shape[0])]
        uri = _image_row_uri(list(weights), titles, cmap="gray", vmin=0, vmax=1, colorbar=True)
        parts += [
            "<h3>Weight maps W<sub>i</sub> (sigmoid, 0..1)</h3>",
            f'<img src="{uri}" alt="weight maps">',
        ]
    residuals = vis.get("residuals")
    if residuals is not None:
        residuals = residuals.detach().cpu().float()
        imgs = [to_display(residuals[i][None])[:, :, 0] for i in range(residuals.shape[0])]
        titles = [f"frame {i}" for i in range(len(imgs))]
        uri = _image_row_uri(imgs, titles, cmap="gray", vmin=0, vmax=1)
        parts += [
            "<h3>Residual maps R<sub>i</sub> (sRGB of clipped values)</h3>",
            f'<img src="{uri}" alt="residual maps">',
        ]
    parts.append("</div>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- public API
def write_html_report(
    out_dir: str | os.PathLike,
    table: Mapping[str, Any],
    examples: Sequence[Mapping[str, Any]],
    visualisation: Mapping[str, Any] | None = None,
    title: str = "burstkpn benchmark",
    figures: Sequence[tuple[str, str | os.PathLike]] = (),
) -> Path:
    """Write one self-contained ``out_dir/report.html`` (see the module docstring); returns its
    path. ``figures``: extra ``(heading, PNG file)`` sections, embedded after the chart. The
    file is written atomically."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_esc(title)}</h1>",
    ]
    caption = table.get("caption") or ""
    if caption:
        parts.append(f'<pre class="caption">{_esc(caption)}</pre>')
    parts += [
        "<h2>Results</h2>",
        '<p class="note">PSNR (dB) and SSIM on sRGB-encoded, clipped images, ignoring an '
        "8-pixel border; the best value per noise level is in bold. s / MP: seconds per "
        "megapixel.</p>",
        _table_html(table),
        "<h2>PSNR per noise level</h2>",
        f'<img class="chart" src="{_bar_chart_uri(table)}" alt="PSNR bar chart">',
    ]
    for heading, png in figures:
        uri = "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")
        parts += [f"<h2>{_esc(heading)}</h2>", f'<img class="chart" src="{uri}" alt="figure">']
    if examples:
        parts.append("<h2>Examples</h2>")
        parts += [_example_html(ex) for ex in examples]
    if visualisation is not None:
        parts.append(_visualisation_html(visualisation))
    parts += ["</body>", "</html>", ""]
    path = Path(out_dir) / "report.html"
    atomic_write_bytes(path, "\n".join(parts).encode("utf-8"))
    return path


def render_screenshot(
    html_path: str | os.PathLike,
    png_path: str | os.PathLike,
    width: int = 1280,
    height: int = 2000,
    timeout: float = 120,
) -> bool:
    """Screenshot ``html_path`` with a headless Chromium into ``png_path``. Returns False when
    no Chromium is installed or it fails or times out; True when a non-empty PNG was written."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return False
    html_abs = Path(html_path).resolve()
    png = Path(png_path).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(
        prefix="burstkpn-chromium-", ignore_cleanup_errors=True
    ) as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            f"--window-size={int(width)},{int(height)}",
            f"--screenshot={png}",
            html_abs.as_uri(),
        ]
        try:
            # its own process group, so a hung browser and its helpers can be ended together
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
        except OSError:
            return False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            return False
    return png.is_file() and png.stat().st_size > 0
