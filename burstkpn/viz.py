"""Pictures for people: contact sheets of bursts, and the deformable-kernel figures of
[DeformKernels] (Fig. 9: where the 3D kernels sample in time; Fig. 10: one learned kernel).
The statistics are pure functions of the model's ``aux`` outputs; the plots return matplotlib
Figures (no pyplot state) and import matplotlib lazily."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw


def label_tile(img: np.ndarray, text: str, bar: int = 16) -> np.ndarray:
    """``(H, W, C)`` float image in [0, 1] -> uint8 RGB with a caption bar above it."""
    arr = np.clip(img, 0, 1)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    tile = Image.new("RGB", (arr.shape[1], arr.shape[0] + bar), (32, 32, 32))
    tile.paste(Image.fromarray(np.round(arr * 255).astype(np.uint8)), (0, bar))
    ImageDraw.Draw(tile).text((3, 2), text, fill=(235, 235, 235))
    return np.asarray(tile)


def contact_sheet(tiles: list[np.ndarray], columns: int = 4, gap: int = 4) -> np.ndarray:
    """Arrange equally sized uint8 RGB tiles on a grid; returns uint8 ``(H, W, 3)``."""
    if not tiles:
        raise ValueError("no tiles")
    th, tw = tiles[0].shape[:2]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = np.full(
        (rows * th + (rows + 1) * gap, columns * tw + (columns + 1) * gap, 3), 16, np.uint8
    )
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y : y + th, x : x + tw] = t
    return sheet


def burst_sheet(
    clean: np.ndarray,
    noise_map: np.ndarray,
    noise_max: float,
    frames: list[np.ndarray],
    offsets_px,
    columns: int = 5,
) -> np.ndarray:
    """The contact sheet of a synthetic burst: the clean reference, its noise map (scaled by
    its maximum ``noise_max``) and each noisy frame with its offset from the reference (frame
    0 is the reference). Images are ``(H, W, C)`` floats in [0, 1] for display, ``offsets_px``
    ``(N, 2)`` (dy, dx) pixels; returns uint8 ``(H, W, 3)``."""
    tiles = [label_tile(clean, "clean reference")]
    tiles.append(label_tile(noise_map, f"noise map (max {noise_max:.3f})"))
    for i, frame in enumerate(frames):
        dy, dx = offsets_px[i].tolist()
        tag = "reference" if i == 0 else f"offset ({dy:+.2f}, {dx:+.2f}) px"
        tiles.append(label_tile(frame, f"frame {i}: {tag}"))
    return contact_sheet(tiles, columns=columns)


# --------------------------------------------------------------------------- deformable kernels
# [DeformKernels] Fig. 9 (where the 3D kernels sample in time) and Fig. 10 (one learned
# kernel). Inputs are the ``aux`` of ``DeformableKernelNet.forward(..., return_aux=True)``:
# ``positions`` ``(B, C, T, 3, H, W)`` (components x, y, t; t is the time relative to the
# reference, i.e. the clip's temporal order -tau..tau, NOT the burst index: burst frame
# ``[0, 1, 2, 3, 4]`` of ``[X_0, X_-2, X_-1, X_1, X_2]`` is time ``[0, -2, -1, 1, 2]``) and
# ``weights`` ``(B, C, T, H, W)`` (the dynamic weights F of eq. 6).


def time_bins(tau: int = 2, bins_per_frame: int = 4) -> np.ndarray:
    """Bin centres of :func:`time_histogram` over ``[-tau, tau]``: integer frames are centres,
    so rigid taps fall in one bin each."""
    if tau < 1 or bins_per_frame < 1:
        raise ValueError(f"need tau >= 1 and bins_per_frame >= 1, got {tau}, {bins_per_frame}")
    return np.arange(-tau * bins_per_frame, tau * bins_per_frame + 1) / bins_per_frame


def time_histogram(
    positions: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    tau: int = 2,
    bins_per_frame: int = 4,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of the sampling locations on the time dimension (Fig. 9).

    ``positions`` ``(..., 3, H, W)`` sampling coordinates with components ``(x, y, t)`` on axis
    -3 (the model's ``aux["positions"]``); ``t`` is the continuous frame coordinate in temporal
    order, reference at 0. Each tap is counted in the bin nearest to ``clamp(t, -tau, tau)``
    (taps beyond the clip read its end frames, the replicate border of eq. 7 in
    :mod:`burstkpn.ops.deform`). ``weights`` (the shape of ``positions`` without axis -3, e.g.
    ``aux["weights"]``) counts each tap by ``|F|`` instead of 1. Returns ``(values, centres)``
    (:func:`time_bins`): percentages summing to 100, or with ``normalize=False`` the float64
    sums (add them over windows, then normalise)."""
    if positions.ndim < 3 or positions.shape[-3] != 3:
        raise ValueError(f"positions need (x, y, t) on axis -3, got {tuple(positions.shape)}")
    t = positions.detach().select(-3, 2).double()
    centres = time_bins(tau, bins_per_frame)
    idx = torch.floor((t.clamp(-tau, tau) + tau) * bins_per_frame + 0.5).long()
    idx = idx.clamp_(0, len(centres) - 1).flatten()
    if weights is None:
        w = torch.ones_like(t).flatten()
    else:
        if weights.shape != t.shape:
            raise ValueError(
                f"weights of shape {tuple(weights.shape)} do not fit positions {tuple(t.shape)}"
            )
        w = weights.detach().double().abs().flatten()
    counts = torch.zeros(len(centres), dtype=torch.float64).index_add_(0, idx.cpu(), w.cpu())
    values = counts.numpy()
    if normalize:
        values = histogram_percent(values)
    return values, centres


def histogram_percent(counts: np.ndarray) -> np.ndarray:
    """Sums per bin -> percentages (all zero if there is nothing)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts * (100.0 / total) if total > 0 else np.zeros_like(counts)


def plot_time_distribution(
    centres: np.ndarray,
    series: dict[str, np.ndarray],
    *,
    base_times=None,
    title: str = "sampling locations on the time dimension",
    ylabel: str = "% of sampled taps",
    ax=None,
):
    """Fig. 9 as a bar chart (one set of bars per series, e.g. per noise level or count vs
    ``|F|``-weighted) over the frame coordinate ``-tau..tau`` in temporal order. ``base_times``:
    the rigid grid's frames, marked with dashed lines. Returns the matplotlib Figure."""
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(6.4, 3.4), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    centres = np.asarray(centres, dtype=np.float64)
    step = float(centres[1] - centres[0]) if len(centres) > 1 else 1.0
    width = 0.85 * step / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        shift = (i - (len(series) - 1) / 2) * width
        ax.bar(centres + shift, values, width=width, label=name, alpha=0.85)
    for bt in sorted(set(base_times or ())):
        ax.axvline(bt, color="0.4", lw=0.8, ls="--")
    tau = int(round(-centres[0]))
    ax.set_xticks(np.arange(-tau, tau + 1))
    ax.set_xticklabels([f"$X_{{{k}}}$" for k in range(-tau, tau + 1)])
    ax.set_xlabel("frame (temporal order, reference $X_0$; dashed: rigid grid)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def kernel_taps(
    positions: torch.Tensor,
    weights: torch.Tensor,
    pixel: tuple[int, int],
    *,
    tau: int = 2,
    batch: int = 0,
    channel: int = 0,
) -> dict[str, np.ndarray]:
    """The 3D deformable kernel of one output pixel ``(y, x)`` (Fig. 10): its taps where they
    are actually read, coordinates clamped to the image and to the clip (replicate borders).

    ``positions`` ``(B, C, T, 3, H, W)``, ``weights`` ``(B, C, T, H, W)`` (model ``aux``), clip
    of ``2 tau + 1`` frames.
    Returns float arrays of length ``T``: ``x``, ``y`` (pixels), ``t`` (continuous frame,
    temporal order, reference 0), ``frame`` (the nearest frame, the one a tap is drawn on),
    ``weight`` (F), and ``dx`` / ``dy`` relative to the pixel."""
    if positions.ndim != 6 or positions.shape[3] != 3:
        raise ValueError(f"positions must be (B, C, T, 3, H, W), got {tuple(positions.shape)}")
    y, x = (int(v) for v in pixel)
    h, w = positions.shape[-2:]
    if not (0 <= y < h and 0 <= x < w):
        raise ValueError(f"pixel {pixel} is outside the {w}x{h} image")
    pos = positions[batch, channel, :, :, y, x].detach().double().cpu().numpy()  # (T, 3)
    xs = np.clip(pos[:, 0], 0, w - 1)
    ys = np.clip(pos[:, 1], 0, h - 1)
    ts = np.clip(pos[:, 2], -tau, tau)
    f = weights[batch, channel, :, y, x].detach().double().cpu().numpy()
    return {"x": xs, "y": ys, "t": ts, "frame": np.floor(ts + 0.5), "weight": f,
            "dx": xs - x, "dy": ys - y}  # fmt: skip


def _marker_sizes(weights: np.ndarray, smallest: float = 8.0, largest: float = 140.0) -> np.ndarray:
    """Marker areas proportional to ``|F|`` (the largest tap gets ``largest``)."""
    mag = np.abs(np.asarray(weights, dtype=np.float64))
    top = mag.max() if mag.size and mag.max() > 0 else 1.0
    return smallest + (largest - smallest) * mag / top


def plot_kernels(
    clip: np.ndarray,
    taps: dict[str, np.ndarray],
    pixel: tuple[int, int],
    *,
    radius: int | None = None,
    title: str = "",
):
    """Fig. 10 for one output pixel: (a) the patches of the ``2 tau + 1`` frames around
    ``pixel`` ``(y, x)`` in temporal order ``X_-tau..X_tau``, top row with the taps of the
    deformable 3D kernel (red, on the frame nearest to each tap's ``t``, area ~ ``|F|``, hollow
    for negative weights), bottom row with the rigid 3x3 kernel of every frame (blue, the
    reference pixel in X_0 larger); (c) / (d) the 3D sampling positions projected onto the
    (frame, horizontal) and (frame, vertical) planes; (e) the kernel in space-time.

    ``clip`` ``(F, H, W, 3)`` (or ``(F, H, W)``) display images in [0, 1] in temporal order;
    ``taps`` from :func:`kernel_taps`; ``radius`` the half side of the patches (default: the
    farthest tap + 2 px, at least 4). Returns the matplotlib Figure."""
    from matplotlib.figure import Figure

    clip = np.asarray(clip, dtype=np.float64)
    n = clip.shape[0]
    tau = n // 2
    h, w = clip.shape[1:3]
    y, x = (int(v) for v in pixel)
    dx, dy, t = taps["dx"], taps["dy"], taps["t"]
    frame = taps["frame"].astype(int)
    sizes = _marker_sizes(taps["weight"])
    positive = np.asarray(taps["weight"]) >= 0
    if radius is None:
        reach = float(np.max(np.abs(np.concatenate([dx, dy])))) if len(dx) else 0.0
        radius = max(4, int(np.ceil(reach)) + 2)
    y0, y1, x0, x1 = (
        max(0, y - radius),
        min(h, y + radius + 1),
        max(0, x - radius),
        min(w, x + radius + 1),
    )

    fig = Figure(figsize=(2.0 * n, 4.0 + 2.9), layout="constrained")
    if title:
        fig.suptitle(title, fontsize=10)
    top, bottom = fig.subfigures(2, 1, height_ratios=[4.0, 2.9])
    axes = top.subplots(2, n, squeeze=False)
    rigid = np.arange(-1, 2)
    gx, gy = np.meshgrid(x + rigid, y + rigid)
    for k in range(n):
        tk = k - tau
        for row, ax in enumerate(axes[:, k]):
            img = clip[k, y0:y1, x0:x1]
            ax.imshow(
                img,
                cmap="gray" if img.ndim == 2 else None,
                vmin=0,
                vmax=1,
                interpolation="nearest",
                extent=(x0 - 0.5, x1 - 0.5, y1 - 0.5, y0 - 0.5),
            )
            ax.set_xlim(x - radius - 0.5, x + radius + 0.5)
            ax.set_ylim(y + radius + 0.5, y - radius - 0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"$X_{{{tk}}}$", fontsize=10)
                on = frame == tk
                for fill in (True, False):
                    sel = on & (positive == fill)
                    ax.scatter(
                        taps["x"][sel],
                        taps["y"][sel],
                        s=sizes[sel],
                        c="red" if fill else "none",
                        edgecolors="white" if fill else "red",
                        linewidths=0.5 if fill else 0.9,
                    )
                ax.text(
                    0.03, 0.03, f"{int(on.sum())} taps", transform=ax.transAxes, fontsize=7,
                    color="white", bbox={"facecolor": "black", "alpha": 0.5, "pad": 1},
                )  # fmt: skip
            else:
                ax.scatter(gx.ravel(), gy.ravel(), s=14, c="tab:blue", edgecolors="white", lw=0.4)
                if tk == 0:
                    ax.scatter([x], [y], s=60, c="tab:blue", edgecolors="white", lw=0.8)
    axes[0, 0].set_ylabel("deformable 3x3x3", fontsize=8)
    axes[1, 0].set_ylabel("rigid 3x3", fontsize=8)

    ax_c = bottom.add_subplot(1, 3, 1)
    ax_d = bottom.add_subplot(1, 3, 2)
    ax_e = bottom.add_subplot(1, 3, 3, projection="3d")
    rt = np.repeat(np.arange(-tau, tau + 1), 9)
    rx, ry = np.tile(np.tile(rigid, 3), n), np.tile(np.repeat(rigid, 3), n)
    for ax, coord, name in ((ax_c, dx, "horizontal (px)"), (ax_d, dy, "vertical (px, down +)")):
        rigid_c = rx if coord is dx else ry
        ax.scatter(rt, rigid_c, s=12, facecolors="none", edgecolors="tab:blue", lw=0.6)
        ax.scatter(t, coord, s=sizes, c="red", alpha=0.8, edgecolors="darkred", lw=0.4)
        ax.set_xticks(np.arange(-tau, tau + 1))
        ax.set_xlabel("frame")
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
    ax_d.invert_yaxis()  # up in the plot is up in the patches (Fig. 10(d) is the other way)
    ax_c.set_title("(c) frame / horizontal", fontsize=9)
    ax_d.set_title("(d) frame / vertical", fontsize=9)
    ax_e.scatter(t, dx, -dy, s=sizes, c="red", depthshade=True)
    ax_e.set_xlabel("frame", fontsize=8)
    ax_e.set_ylabel("horizontal", fontsize=8)
    ax_e.set_zlabel("vertical (up)", fontsize=8)
    ax_e.set_title("(e) space-time", fontsize=9)
    ax_e.tick_params(labelsize=7)
    ax_e.set_box_aspect(None, zoom=0.85)  # room for the axis labels
    return fig


def palette_png(data: bytes, colors: int = 256) -> bytes:
    """A chart's PNG bytes re-encoded with a palette of at most ``colors`` colours (no
    dithering): 2-3x smaller, and for line plots and scatter plots indistinguishable by eye
    (anti-aliased edges take the nearest palette colour). Not for photographs."""
    import io

    with Image.open(io.BytesIO(data)) as im:
        rgb = im.convert("RGB")
    pal = rgb.quantize(colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    pal.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def figure_png(fig, dpi: int = 90) -> bytes:
    """A matplotlib Figure (no pyplot state) -> palette PNG bytes without a timestamp."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return palette_png(buf.getvalue())
