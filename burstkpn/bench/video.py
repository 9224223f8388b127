"""Video benchmarks for the deformable kernels ([DeformKernels]):

- ``burstkpn bench video``: methods x the video test set (:mod:`burstkpn.data.testsets.video`)
  -> PSNR / SSIM of the centre frame per noise level, in the layout of Table 3 (rows methods,
  columns Low / High); ``results.csv``, ``results.json``, ``report.md``, ``report.html``.
- ``burstkpn bench motion``: a motion sweep like Fig. 8: PSNR of each method as the per-frame
  motion grows, on seeded windows made from photos with constant-velocity motion;
  ``motion.csv``, ``motion.json``, ``motion.md`` and the line plot ``motion.png``.
- the deform3d kernel figures of ``bench video`` (:func:`kernel_statistics`): Fig. 9, where
  the 3D kernels sample on the time dimension over the test set (``time_distribution.png``),
  and Fig. 10, one learned kernel (``kernels.png``); numbers in ``kernels.json``.

Every method maps a window (``noisy`` ``(1, F, C, H, W)``, centre frame first, ``noise_map``,
``sigma_r``, ``sigma_s``) to the denoised centre frame ``(1, C, H, W)``:

- ``reference`` (the noisy centre frame) and ``average`` (the plain mean of the F frames, the
  paper's "direct average");
- ``deform2d``: the single-image model on the centre frame alone, which is what running it
  frame by frame on a video gives for that frame (Table 3's "Ours-2D" applies 2D kernels to
  every frame of a jointly trained multi-frame model; ours has no such variant);
- ``kpn`` (or any burst model): the window in burst order, repeated cyclically to the
  model's burst length (8 for the shipped weights), no pre-alignment: the rigid kernels see
  the motion as it is;
- ``deform3d`` (or any clip model): the window as it is;
- ``path/to/checkpoint.safetensors``: by its kind, as above.

Shipped names whose weights are missing are skipped with a message. Metrics:
:func:`burstkpn.metrics.psnr` / :func:`~burstkpn.metrics.ssim` per window, then averaged.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from burstkpn.bench import methods as bench_methods
from burstkpn.bench.defaults import DEFAULT_MOTION_METHODS, DEFAULT_VIDEO_METHODS
from burstkpn.bench.methods import Method, average, model_method, reference
from burstkpn.bench.report import write_html_report
from burstkpn.bench.tables import csv_bytes, json_bytes, markdown_table, standing
from burstkpn.data.degrade.noise import add_noise, estimate_noise_map, parse_noise
from burstkpn.data.degrade.video import burst_order, crop_clip, linear_trajectory, motion_margin
from burstkpn.data.io.files import atomic_write_bytes, prepare_output_dir
from burstkpn.data.io.images import list_images, load_linear, to_display
from burstkpn.data.sampling import derive_seed, match_channels
from burstkpn.data.testsets.video import TestWindow, VideoTestSet
from burstkpn.errors import InputError
from burstkpn.evaluation import Scorer, evaluate_windows, select_windows, summarize
from burstkpn.inference import try_resolve
from burstkpn.models import list_models
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

DEFAULT_SPEEDS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)
ANCHORS = ("reference", "average")
SIMPLE: dict[str, Method] = {"reference": reference, "average": average}


# --------------------------------------------------------------------------- methods
def resolve_video_method(name: str) -> tuple[Method | None, str]:
    """``(callable, note)``; the callable is ``None`` with the reason when shipped weights are
    missing. ``deform2d`` (and other single-image names) pick their denoising weights."""
    if name in SIMPLE:
        return SIMPLE[name], ""
    if name.endswith(".safetensors") or name in list_models():
        model, note = try_resolve(name, "denoise")
        return (None if model is None else model_method(model)), note
    raise InputError(
        f"unknown method '{name}' (use {', '.join(SIMPLE)}, a model name such as "
        f"{', '.join(DEFAULT_VIDEO_METHODS[2:])}, or a .safetensors checkpoint)"
    )


def resolve_all(names: Sequence[str]) -> tuple[dict[str, Method], dict[str, str]]:
    """The available methods and a note for every name (printed for skipped ones)."""
    return bench_methods.resolve_all(names, resolve_video_method)


# --------------------------------------------------------------------------- bench video


def evaluate_video(
    testset_dir: str | Path,
    methods: Sequence[str],
    *,
    limit: int | None = None,
    examples: int = 2,
    example_level: str = "high",
    progress: bool = True,
    resolved: tuple[dict[str, Method], dict[str, str]] | None = None,
) -> dict:
    """Every available method on every selected window; the structure of
    :func:`burstkpn.bench.quality.evaluate` (rows, notes, examples, levels, methods)."""
    testset = VideoTestSet(testset_dir)
    if not select_windows(testset.entries, limit):
        raise InputError(f"test set '{testset_dir}' has no windows")
    resolved, notes = resolved or resolve_all(methods)
    return evaluate_windows(
        testset,
        resolved,
        notes=notes,
        limit=limit,
        examples=examples,
        example_level=example_level,
        progress=progress,
    )


def write_video_reports(
    result: dict, out: Path, command: str, figures: Sequence[tuple[str, Path]] = ()
) -> dict:
    """results.csv, results.json, report.md (Table 3 layout) and report.html (with
    ``figures``: (heading, PNG) pairs, e.g. the motion sweep)."""
    summary = summarize(result)
    atomic_write_bytes(out / "results.csv", csv_bytes(result["rows"]))
    payload = {
        "command": command,
        "windows": result["windows"],
        "summary": summary,
        "notes": result["notes"],
        "rows": result["rows"],
    }
    atomic_write_bytes(out / "results.json", json_bytes(payload))
    skipped = "".join(f"\n- {m}: {result['notes'][m]}" for m in summary["skipped"])
    lines = standing(summary, classical=ANCHORS)
    md = (
        f"# Video benchmark\n\n`{command}`\n\n{result['windows']} windows of 5 frames at "
        f"{len(result['levels'])} noise levels "
        "([DeformKernels] Table 3 layout). PSNR (dB) / SSIM of the centre frame on "
        "sRGB-gamma-corrected images, 8-pixel border ignored, averaged per window; s / MP is "
        "wall time per megapixel of output.\n\n"
        + markdown_table(summary)
        + "\n"
        + (
            "\nStanding (mean PSNR, learned minus reference / average):\n\n"
            + "\n".join(lines)
            + "\n"
            if lines
            else ""
        )
        + "".join(f"\n![{title}]({path.name})\n" for title, path in figures)
        + (f"\nSkipped:{skipped}\n" if skipped else "")
    )
    atomic_write_bytes(out / "report.md", md.encode())
    write_html_report(
        out,
        {**summary, "caption": command},
        result["examples"],
        None,
        title="burstkpn video benchmark",
        figures=figures,
    )
    return summary


def run_video(
    testset_dir,
    methods: Sequence[str],
    out_dir,
    *,
    limit: int | None = None,
    motion_sweep: dict | None = None,
    kernels: str | None = None,
    force: bool = False,
    progress: bool = True,
    command: str = "burstkpn bench video",
) -> dict:
    """``bench video``; with ``motion_sweep`` (keyword arguments of :func:`motion_sweep`) the
    sweep is run too, written next to the tables and shown in ``report.html``. ``kernels``
    (:func:`kernel_model`; by default whenever a deform3d is among the methods): the Fig. 9 /
    Fig. 10 figures of that model (:func:`kernel_statistics`, :func:`write_kernel_figures`)."""
    out = prepare_output_dir(out_dir, force)
    resolved = resolve_all(methods)
    kernel_net, kernel_name = kernel_model(kernels, resolved[0])
    result = evaluate_video(testset_dir, methods, limit=limit, progress=progress, resolved=resolved)
    figures = []
    if motion_sweep is not None:
        sweep = motion_sweep_rows(progress=progress, resolved=resolved, **motion_sweep)
        write_motion_reports(sweep, out, command)
        figures.append(("Motion sweep (PSNR vs motion, cf. Fig. 8)", out / "motion.png"))
    if kernel_net is not None:
        stats = kernel_statistics(kernel_net, testset_dir, limit=limit, progress=progress)
        figures += write_kernel_figures(stats, out, kernel_name)
    return write_video_reports(result, out, command, figures)


# --------------------------------------------------------------------------- kernels (Fig. 9-10)
KERNEL_FIGURES = ("time_distribution.png", "kernels.png")


def is_deform3d(model: torch.nn.Module) -> bool:
    """Whether ``model`` has 3D deformable kernels (``deform3d``), whose ``aux`` the figures
    read."""
    model = getattr(model, "module", model)
    return isinstance(model, DeformableKernelNet) and model.dims == 3


def kernel_model(
    kernels: str | None, resolved: dict[str, Method]
) -> tuple[torch.nn.Module | None, str]:
    """``(model, name)`` of the deform3d the kernel figures show. ``kernels``: ``None`` (the
    first deform3d among the methods, if any), ``"auto"`` (the same, with a message when there
    is none), ``"none"`` (no figures), or a model name / ``.safetensors`` checkpoint (need not
    be among the methods)."""
    if kernels == "none":
        return None, ""
    if kernels in (None, "auto"):
        for name, fn in resolved.items():
            model = getattr(fn, "model", None)
            if model is not None and is_deform3d(model):
                return model, name
        if kernels == "auto":
            print("bench: --kernels: no deform3d among the methods (name one: --kernels CKPT)")
        return None, ""
    fn, note = resolve_video_method(kernels)
    if fn is None:
        raise InputError(f"--kernels {kernels}: {note}")
    model = getattr(fn, "model", None)
    if model is None or not is_deform3d(model):
        raise InputError(f"--kernels needs a deform3d model (3D deformable kernels): '{kernels}'")
    return model, kernels


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
    (``limit`` as :func:`evaluate_video`), one colour channel at a time (the channels go through
    the network independently, so this is exact, in a third of the memory), in float32.

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
    from matplotlib.figure import Figure

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


# --------------------------------------------------------------------------- bench motion
def sweep_windows(
    source,
    speeds: Sequence[float],
    *,
    windows: int = 4,
    patch_size: int = 96,
    num_frames: int = 5,
    level: str = "low",
    seed: int = 0,
):
    """Yields ``(speed, window index, item)``: window ``i`` is photo ``i`` (cycling) at one
    seeded position and direction, moving ``speed`` px/frame with constant velocity (no
    jitter); the position, the direction and the noise are the same at every speed, so only
    the motion changes (the paper's subsets "use the same reference frames")."""
    if not speeds or any(s < 0 or not math.isfinite(s) for s in speeds):
        raise InputError(f"speeds must be non-negative numbers, got {list(speeds)}")
    if windows < 1:
        raise InputError(f"--windows must be positive, got {windows}")
    noise = parse_noise(level)
    refs = list_images(source)
    tau = num_frames // 2
    order = burst_order(num_frames)
    margin = motion_margin(max(speeds) * tau)
    for i in range(windows):
        ref = refs[i % len(refs)]
        image = match_channels(load_linear(ref), 3)
        h, w = image.shape[-2:]
        if min(h, w) < patch_size + 2 * margin:
            raise InputError(
                f"{ref}: image of {w}x{h} px is too small for {patch_size} px windows moving "
                f"{max(speeds):g} px/frame (needs {patch_size + 2 * margin} px per side)"
            )
        g = torch.Generator().manual_seed(derive_seed(seed, i))
        top = int(torch.randint(margin, h - patch_size - margin + 1, (1,), generator=g))
        left = int(torch.randint(margin, w - patch_size - margin + 1, (1,), generator=g))
        angle = float(torch.rand(1, generator=g, dtype=torch.float64)) * 2 * math.pi
        noise_seed = derive_seed(seed, i, 1)
        for speed in speeds:
            trajectory = linear_trajectory(tau, speed, angle)
            burst = crop_clip(image, trajectory, top, left, patch_size)[order]
            gn = torch.Generator().manual_seed(noise_seed)
            noisy = add_noise(burst, noise.sigma_r, noise.sigma_s, gn)[None]
            yield (
                float(speed),
                i,
                TestWindow(
                    image=f"window{i}",
                    level=noise.name,
                    noisy=noisy,
                    noise_map=estimate_noise_map(noisy[:, 0], noise.sigma_r, noise.sigma_s),
                    clean=burst[:1],
                    sigma_r=noise.sigma_r,
                    sigma_s=noise.sigma_s,
                    time=torch.arange(num_frames)[order] - tau,
                    motion=trajectory[order],
                ),
            )


def motion_sweep_rows(
    *,
    methods: Sequence[str] = DEFAULT_MOTION_METHODS,
    speeds: Sequence[float] = DEFAULT_SPEEDS,
    source=None,
    windows: int = 4,
    patch_size: int = 96,
    level: str = "low",
    seed: int = 0,
    progress: bool = True,
    resolved: tuple[dict[str, Method], dict[str, str]] | None = None,
) -> dict:
    """PSNR / SSIM of every available method on every sweep window and speed (``resolved``:
    methods already resolved by :func:`resolve_all`)."""
    resolved, notes = resolved or resolve_all(methods)
    scorer = Scorer(resolved, dict(notes))
    rows = []
    items = sweep_windows(
        source, speeds, windows=windows, patch_size=patch_size, level=level, seed=seed
    )
    total = windows * len(speeds)
    for speed, i, item in tqdm(items, total=total, desc="bench motion", disable=not progress):
        for r in scorer.run(item):
            rows.append(
                {
                    "method": r["method"],
                    "speed": speed,
                    "window": i,
                    "psnr": r["psnr"],
                    "ssim": r["ssim"],
                }
            )
    return {
        "rows": rows,
        "notes": scorer.notes,
        "methods": list(scorer.methods),
        "speeds": [float(s) for s in speeds],
        "windows": windows,
        "level": level,
        "patch_size": patch_size,
        "seed": seed,
    }


def motion_summary(sweep: dict) -> dict[str, list[float]]:
    """Mean PSNR per method and speed (in the order of ``sweep["speeds"]``)."""
    table = {}
    for name in sweep["methods"]:
        table[name] = []
        for speed in sweep["speeds"]:
            vals = [r["psnr"] for r in sweep["rows"] if r["method"] == name and r["speed"] == speed]
            table[name].append(sum(vals) / len(vals))
    return table


def plot_motion(sweep: dict, path: Path) -> Path:
    """Line plot of mean PSNR vs per-frame motion, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = motion_summary(sweep)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in table.items():
        ax.plot(sweep["speeds"], values, marker="o", label=Path(name).stem)
    if any(s > 0 for s in sweep["speeds"]):
        ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xticks(sweep["speeds"])
    ax.set_xticklabels([f"{s:g}" for s in sweep["speeds"]])
    ax.set_xlabel("motion (px per frame)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"motion sweep, {sweep['level']} noise, {sweep['windows']} windows")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def write_motion_reports(sweep: dict, out: Path, command: str) -> dict[str, list[float]]:
    """motion.csv (per window), motion.json, motion.md (mean PSNR table) and motion.png."""
    table = motion_summary(sweep)
    atomic_write_bytes(out / "motion.csv", csv_bytes(sweep["rows"]))
    payload = {"command": command, **{k: v for k, v in sweep.items() if k != "rows"}}
    payload["mean_psnr"] = table
    atomic_write_bytes(out / "motion.json", json_bytes(payload))
    plot_motion(sweep, out / "motion.png")
    head = "| Method | " + " | ".join(f"{s:g} px/frame" for s in sweep["speeds"]) + " |"
    lines = [head, "|---|" + "---|" * len(sweep["speeds"])]
    for name, values in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    skipped = [f"- {m}: {n}" for m, n in sweep["notes"].items() if n.startswith("skipped")]
    md = (
        f"# Motion sweep\n\n`{command}`\n\nMean PSNR (dB) of the centre frame over "
        f"{sweep['windows']} windows ({sweep['patch_size']} px, {sweep['level']} noise) per "
        "constant per-frame motion ([DeformKernels] Fig. 8 varies the frame rate "
        "instead).\n\n" + "\n".join(lines) + "\n\n![motion sweep](motion.png)\n"
    )
    if skipped:
        md += "\nSkipped:\n" + "\n".join(skipped) + "\n"
    atomic_write_bytes(out / "motion.md", md.encode())
    return table


def run_motion(
    out_dir, *, force: bool = False, command: str = "burstkpn bench motion", **kwargs
) -> dict[str, list[float]]:
    """``bench motion``: :func:`motion_sweep_rows` written by :func:`write_motion_reports`."""
    out = prepare_output_dir(out_dir, force)
    sweep = motion_sweep_rows(**kwargs)
    if not sweep["methods"]:
        raise InputError("no method to run (every model named was skipped)")
    return write_motion_reports(sweep, out, command)
