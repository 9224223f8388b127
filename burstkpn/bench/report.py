"""A self-contained HTML benchmark report: the quality table (laid out like [AME-KPN] Table 1), a
PSNR bar chart, example crops with zooms, and an optional look at what AME-KPN predicts at one
pixel. Everything is in one file: images are embedded as base64 PNG data URIs and the CSS is
inline, so the report opens anywhere without network access.

:func:`render_screenshot` renders such a report with a headless Chromium (when installed).
"""

from __future__ import annotations

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

from burstkpn.bench.figures import (
    bar_chart_uri,
    image_row_uri,
    image_uri,
    to_uint8_rgb,
    zoom_window,
)
from burstkpn.bench.html import CSS, esc, png_uri, table_html
from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.data.io.images import to_display
from burstkpn.metrics import psnr

MAX_CROP = 256  # largest side of an embedded example crop, in pixels
ZOOM_FACTOR = 4
MARK_RGB = (255, 40, 40)


def _psnr_db(x: torch.Tensor, clean: torch.Tensor) -> float | None:
    try:
        return float(psnr(x[None], clean[None])[0])
    except ValueError:  # too small for the metric's 8-pixel border: show no number
        return None


# --------------------------------------------------------------------------- example crops
def _crop_box(h: int, w: int) -> tuple[int, int, int, int]:
    """Centre crop of at most MAX_CROP x MAX_CROP: ``(y0, x0, ch, cw)``."""
    ch, cw = min(h, MAX_CROP), min(w, MAX_CROP)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def _crop_figure(
    x: torch.Tensor,
    box: tuple[int, int, int, int],
    zoom: tuple[int, int, int],
    label: str,
    db: float | None,
) -> str:
    y0, x0, ch, cw = box
    disp = to_uint8_rgb(to_display(x)[y0 : y0 + ch, x0 : x0 + cw])
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
        f'<img src="{image_uri(full)}" width="{cw}" height="{ch}" alt="{esc(label)}">'
        f'<img src="{image_uri(zoomed)}" width="{zoomed.width}" height="{zoomed.height}" '
        f'alt="{esc(label)} (zoom)">'
        f"<figcaption>{esc(label)}{db_html}</figcaption>"
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
        f"<h3>{esc(ex.get('name', 'example'))} "
        f"<small>({esc(ex.get('level', ''))})</small></h3>"
        f'<p class="note">{cw}&times;{ch} crop at ({y0}, {x0}) of a {w}&times;{h} image; '
        f"below each, the {zs}&times;{zs} window at ({y0 + zy}, {x0 + zx}) (red box) enlarged "
        f"{ZOOM_FACTOR}&times;. PSNR against clean on the whole image.</p>"
    )
    return head + '<div class="example">' + "".join(figs) + "</div>"


# --------------------------------------------------------------------------- visualisation
def _frame_titles(n: int) -> list[str]:
    return [f"frame {i}" for i in range(n)]


def _display_row_uri(maps: torch.Tensor, **kwargs: Any) -> str:
    """Linear single-channel maps ``(N, H, W)`` shown in sRGB, one panel each."""
    maps = maps.detach().cpu().float()
    imgs = [to_display(maps[i][None])[:, :, 0] for i in range(maps.shape[0])]
    return image_row_uri(imgs, _frame_titles(len(imgs)), cmap="gray", vmin=0, vmax=1, **kwargs)


def _visualisation_html(vis: Mapping[str, Any]) -> str:
    """What AME-KPN predicts at one pixel (:func:`burstkpn.bench.quality.ame_visualisation`):
    the per-frame kernels, the noisy frames and the weight maps W and residual maps R of
    [AME-KPN], each where present."""
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
    uri = image_row_uri(kers, _frame_titles(n), cmap="RdBu_r", vmin=-lim, vmax=lim, colorbar=True)
    parts.append(f'<img src="{uri}" alt="kernels">')
    if vis.get("frames") is not None:
        uri = _display_row_uri(vis["frames"], marker=(py, px))
        parts += [
            "<h3>Noisy frames (sRGB; the pixel is marked on frame 0)</h3>",
            f'<img src="{uri}" alt="frames">',
        ]
    weights = vis.get("weights")
    if weights is not None:
        weights = weights.detach().cpu().double().numpy()
        titles = _frame_titles(weights.shape[0])
        uri = image_row_uri(list(weights), titles, cmap="gray", vmin=0, vmax=1, colorbar=True)
        parts += [
            "<h3>Weight maps W<sub>i</sub> (sigmoid, 0..1)</h3>",
            f'<img src="{uri}" alt="weight maps">',
        ]
    if vis.get("residuals") is not None:
        uri = _display_row_uri(vis["residuals"])
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
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
    ]
    caption = table.get("caption") or ""
    if caption:
        parts.append(f'<pre class="caption">{esc(caption)}</pre>')
    parts += [
        "<h2>Results</h2>",
        '<p class="note">PSNR (dB) and SSIM on sRGB-encoded, clipped images, ignoring an '
        "8-pixel border; the best value per noise level is in bold. s / MP: seconds per "
        "megapixel.</p>",
        table_html(table),
        "<h2>PSNR per noise level</h2>",
        f'<img class="chart" src="{bar_chart_uri(table)}" alt="PSNR bar chart">',
    ]
    for heading, png in figures:
        uri = png_uri(Path(png).read_bytes())
        parts += [f"<h2>{esc(heading)}</h2>", f'<img class="chart" src="{uri}" alt="figure">']
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
