"""``burstkpn bench motion``: a motion sweep like [DeformKernels] Fig. 8, the PSNR of each method
as the per-frame motion grows, on seeded windows made from photos with constant-velocity motion;
``motion.csv``, ``motion.json``, ``motion.md`` and the line plot ``motion.png``. ``bench video
--motion-sweep`` runs it too and shows the plot in its report.

Every method maps a window to its denoised centre frame as in ``bench video``
(:func:`burstkpn.bench.methods.resolve_video_method`)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from burstkpn.bench.defaults import DEFAULT_MOTION_METHODS
from burstkpn.bench.methods import Method, resolve_all, resolve_video_method
from burstkpn.bench.tables import csv_bytes, json_bytes
from burstkpn.data.degrade.noise import add_noise, estimate_noise_map, parse_noise
from burstkpn.data.degrade.video import burst_order, crop_clip, linear_trajectory, motion_margin
from burstkpn.data.io.files import atomic_write_bytes, prepare_output_dir
from burstkpn.data.io.images import list_images, load_linear
from burstkpn.data.sampling import derive_seed, match_channels
from burstkpn.data.testsets.video import TestWindow
from burstkpn.errors import InputError
from burstkpn.evaluation import Scorer

DEFAULT_SPEEDS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)


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
    methods already resolved by :func:`~burstkpn.bench.methods.resolve_all`)."""
    resolved, notes = resolved or resolve_all(methods, resolve_video_method)
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
    table = motion_summary(sweep)
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
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
        "constant per-frame motion (Fig. 8 of the deformable-kernels paper varies the frame rate "
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
