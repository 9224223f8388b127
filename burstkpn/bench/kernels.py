"""The figures of [DeformKernels] on a deform3d (3D deformable kernels), made by ``bench video``:
Fig. 9, where the kernels sample on the time dimension over a video test set
(``time_distribution.png``), and Fig. 10, one learned kernel at one pixel (``kernels.png``);
the numbers in ``kernels.json``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from burstkpn.bench.tables import json_bytes
from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.data.io.images import to_display
from burstkpn.data.testsets.video import VideoTestSet
from burstkpn.errors import InputError
from burstkpn.evaluation import select_windows
from burstkpn.models.deformable import DeformableKernelNet, burst_to_clip
from burstkpn.viz import (
    figure_png,
    histogram_percent,
    kernel_taps,
    plot_kernels,
    plot_time_distribution,
    time_bins,
    time_histogram,
)

KERNEL_FIGURES = ("time_distribution.png", "kernels.png")


def is_deform3d(model: torch.nn.Module) -> bool:
    """Whether ``model`` has 3D deformable kernels (``deform3d``), whose ``aux`` the figures
    read."""
    model = getattr(model, "module", model)
    return isinstance(model, DeformableKernelNet) and model.dims == 3


def choose_pixel(image: torch.Tensor, border: int = 8) -> tuple[int, int]:
    """The pixel ``(y, x)`` of ``image`` ``(C, H, W)`` (linear) on the strongest edge (largest
    gradient of the sRGB channel mean), at least ``border`` px inside: Fig. 10 shows a kernel
    at an edge, where the choice of samples matters."""
    g = to_display(image).mean(-1)
    h, w = g.shape
    b = max(0, min(border, (h - 1) // 2, (w - 1) // 2))
    gy, gx = np.gradient(g) if min(h, w) > 1 else (np.zeros_like(g), np.zeros_like(g))
    inner = np.hypot(gx, gy)[b : h - b, b : w - b]
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return int(y) + b, int(x) + b


@torch.no_grad()
def kernel_statistics(
    model: torch.nn.Module,
    testset_dir: str | Path,
    *,
    limit: int | None = None,
    window: str | None = None,
    level: str = "high",
    pixel: tuple[int, int] | None = None,
    bins_per_frame: int = 4,
    progress: bool = True,
) -> dict:
    """Run ``model`` (deform3d) with ``return_aux`` on every selected window of a video test set
    (``limit`` as :func:`~burstkpn.evaluation.select_windows`), one colour channel at a time (the
    channels go through the network independently, so this is exact, in a third of the memory),
    in float32.

    Returns the Fig. 9 sums per noise level (``counts``: taps, ``weighted``: ``|F|``; bins
    :func:`burstkpn.viz.time_bins`, the frame coordinate in temporal order, reference 0) and,
    for one window (``window``, default the first name, at ``level`` where it exists), the
    Fig. 10 taps of the green channel at ``pixel`` (default :func:`choose_pixel` on its clean
    frame) with ``clip``, its noisy frames for display ``(F, H, W, 3)`` in temporal order."""
    net = getattr(model, "module", model)
    if not is_deform3d(net):
        raise InputError("kernel statistics need a deform3d model")
    testset = VideoTestSet(testset_dir)
    entries = select_windows(testset.entries, limit)
    if not entries:
        raise InputError(f"test set '{testset_dir}' has no windows")
    names = sorted({e["image"] for e in entries})
    window = names[0] if window is None else window
    candidates = [e for e in entries if e["image"] == window]
    if not candidates:
        raise InputError(f"window '{window}' is not among the selected windows")
    shown = next((e for e in candidates if e["level"] == level), candidates[0])
    tau = net.tau
    counts: dict[str, np.ndarray] = {}
    weighted: dict[str, np.ndarray] = {}
    example = None
    model.eval()
    for entry in tqdm(entries, desc="kernels", unit="window", disable=not progress):
        item = testset.load(entry)
        noisy, nmap = item.noisy.float(), item.noise_map.float()
        c = noisy.shape[2]
        focus = 1 if c == 3 else 0
        if entry is shown and pixel is None:
            pixel = choose_pixel(item.clean[0])
        for ch in range(c):
            with torch.autocast("cpu", enabled=False):
                aux = model(noisy[:, :, ch : ch + 1], nmap[:, ch : ch + 1], return_aux=True).aux
            for table, weights in ((counts, None), (weighted, aux["weights"])):
                sums, _ = time_histogram(
                    aux["positions"], weights, tau=tau, bins_per_frame=bins_per_frame,
                    normalize=False,
                )  # fmt: skip
                table[entry["level"]] = table.get(entry["level"], 0) + sums
            if entry is shown and ch == focus:
                taps = kernel_taps(aux["positions"], aux["weights"], pixel, tau=tau)
                clip = burst_to_clip(noisy)[0]
                example = {
                    "window": entry["image"],
                    "level": entry["level"],
                    "pixel": list(pixel),
                    "channel": "RGB"[ch] if c == 3 else "gray",
                    "taps": {k: v.tolist() for k, v in taps.items()},
                    "clip": np.stack([to_display(f) for f in clip]),
                }
            del aux
    return {
        "centres": time_bins(tau, bins_per_frame).tolist(),
        "base_times": sorted({float(t) for t in net.time_positions}),
        "counts": {k: v.tolist() for k, v in counts.items()},
        "weighted": {k: v.tolist() for k, v in weighted.items()},
        "windows": len(names),
        "bursts": len(entries),
        "example": example,
    }


def write_kernel_figures(stats: dict, out: Path, model_name: str) -> list[tuple[str, Path]]:
    """``time_distribution.png`` (Fig. 9: % of taps and of ``|F|`` per frame coordinate, one
    bar set per noise level and all together), ``kernels.png`` (Fig. 10) and ``kernels.json``
    (the numbers); returns the ``(heading, PNG)`` pairs for the reports."""
    label = Path(model_name).name
    centres = np.asarray(stats["centres"])
    fig = Figure(figsize=(7.0, 5.6), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    percents = {}
    for ax, key, what, name in (
        (axes[0], "counts", "% of sampled taps", "sampled taps"),
        (axes[1], "weighted", "% of |dynamic weight|", "taps weighted by |F|"),
    ):
        series = {lv: histogram_percent(v) for lv, v in stats[key].items()}
        if len(series) > 1:
            series["all"] = histogram_percent(sum(np.asarray(v) for v in stats[key].values()))
        percents[key] = {k: v.tolist() for k, v in series.items()}
        plot_time_distribution(
            centres, series, base_times=stats["base_times"], ylabel=what, ax=ax,
            title=f"{label}: {name} per frame coordinate, {stats['windows']} windows",
        )  # fmt: skip
    axes[0].set_xlabel("")
    paths = [out / name for name in KERNEL_FIGURES]
    atomic_write_bytes(paths[0], figure_png(fig))
    ex = stats["example"]
    taps = {k: np.asarray(v) for k, v in ex["taps"].items()}
    y, x = ex["pixel"]
    title = (
        f"{label}: window {ex['window']} ({ex['level']}), pixel (y={y}, x={x}), channel "
        f"{ex['channel']}\nred: the 27 taps, each on its nearest frame, area ~ |F| (hollow: "
        "F < 0); blue: rigid 3x3 kernels"
    )
    atomic_write_bytes(paths[1], figure_png(plot_kernels(ex["clip"], taps, (y, x), title=title)))
    payload = {
        "model": model_name,
        "frame_coordinate": "time in temporal order, reference 0 (burst frame i of "
        "[X_0, X_-2, X_-1, X_1, X_2] is time [0, -2, -1, 1, 2][i])",
        **{k: v for k, v in stats.items() if k != "example"},
        "percent": percents,
        "example": {k: v for k, v in ex.items() if k != "clip"},
    }
    atomic_write_bytes(out / "kernels.json", json_bytes(payload))
    return [
        (f"Sampling locations on the time dimension, {label} (cf. Fig. 9)", paths[0]),
        (f"A learned 3x3x3 kernel at one pixel, {label} (cf. Fig. 10)", paths[1]),
    ]
