"""The benches' pictures: PNG data URIs of arrays and matplotlib figures, the PSNR bar chart, rows
of labelled panels, the window of most detail, and the crop grid of ``bench real`` (a central
crop of every method's output above its detail window enlarged)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from burstkpn.bench.html import png_uri
from burstkpn.viz import contact_sheet, label_tile

ZOOM_WINDOW = 48  # side of the zoomed square, in pixels of the crop
GRID = 256  # side of the central crop shown for every method (bench real)
DETAIL = 64  # side of the detail window, enlarged to GRID
GRID_COLUMNS = 5


# --------------------------------------------------------------------------- data URIs
def image_uri(img: np.ndarray | Image.Image) -> str:
    """uint8 ``(H, W[, C])`` array or PIL image -> ``data:image/png;base64,...``."""
    pil = img if isinstance(img, Image.Image) else Image.fromarray(img)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return png_uri(buf.getvalue())


def figure_uri(fig: Any, dpi: int = 90) -> str:
    """A matplotlib Figure (Agg canvas) -> PNG data URI."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return png_uri(buf.getvalue())


def to_uint8_rgb(arr: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` float in [0, 1] with C in {1, 3} -> uint8 ``(H, W, 3)``."""
    arr = np.clip(np.asarray(arr, dtype=np.float64), 0.0, 1.0)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.round(arr[:, :, :3] * 255).astype(np.uint8)


# --------------------------------------------------------------------------- charts
def bar_chart_uri(table: Mapping[str, Any]) -> str:
    """PSNR per noise level of a summary, one bar per method, as a PNG data URI."""
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
    return figure_uri(fig, dpi=90)


def image_row_uri(
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
    return figure_uri(fig, dpi=90)


# --------------------------------------------------------------------------- detail windows
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


def grid_boxes(truth: torch.Tensor) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The centred crop ``(y, x, side)`` of an image ``(C, H, W)`` and, inside that crop, its
    detail window ``(y, x, side)``: the one of highest luminance variance."""
    h, w = truth.shape[-2:]
    side = min(GRID, h, w)
    y, x = (h - side) // 2, (w - side) // 2
    window = truth[:, y : y + side, x : x + side].permute(1, 2, 0).numpy()
    return (y, x, side), zoom_window(window, min(DETAIL, side))


def grid_panel(
    image: torch.Tensor, crop: tuple[int, int, int], detail: tuple[int, int, int]
) -> np.ndarray:
    """The crop of an sRGB image ``(C, H, W)`` with the detail window outlined, above the
    detail window enlarged to the crop's width: ``(2 side, side, 3)`` uint8."""
    y, x, s = crop
    arr = image[:, y : y + s, x : x + s].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    arr = np.round(np.repeat(arr, 3 // arr.shape[2], axis=2) * 255).astype(np.uint8)
    dy, dx, ds = detail
    zoom = Image.fromarray(np.ascontiguousarray(arr[dy : dy + ds, dx : dx + ds]))
    zoom = np.asarray(zoom.resize((s, s), Image.NEAREST))
    boxed = arr.copy()
    red = np.array([255, 40, 40], np.uint8)
    boxed[dy, dx : dx + ds] = boxed[dy + ds - 1, dx : dx + ds] = red
    boxed[dy : dy + ds, dx] = boxed[dy : dy + ds, dx + ds - 1] = red
    return np.concatenate([boxed, zoom], axis=0)


def crop_grid(panels: Sequence[tuple[str, np.ndarray]], columns: int = GRID_COLUMNS) -> bytes:
    """Labelled panels side by side (:func:`grid_panel`), at most ``columns`` to a row and the
    rows about equally long, as PNG bytes."""
    rows = -(-len(panels) // columns)
    columns = -(-len(panels) // rows)
    tiles = [label_tile(p.astype(np.float64) / 255, label) for label, p in panels]
    buf = io.BytesIO()
    Image.fromarray(contact_sheet(tiles, columns=columns)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()
