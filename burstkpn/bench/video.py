"""``burstkpn bench video``: methods x the video test set (:mod:`burstkpn.data.testsets.video`)
-> PSNR / SSIM of the centre frame per noise level, in the layout of [DeformKernels] Table 3
(rows methods, columns Low / High); ``results.csv``, ``results.json``, ``report.md``,
``report.html``. With ``--motion-sweep`` the sweep of :mod:`burstkpn.bench.motion` (Fig. 8) is
run too, and for a deform3d the kernel figures of :mod:`burstkpn.bench.kernels` (Fig. 9 / 10)
are drawn; both are shown in the report.

Every method maps a window (``noisy`` ``(1, F, C, H, W)``, centre frame first, ``noise_map``,
``sigma_r``, ``sigma_s``) to the denoised centre frame ``(1, C, H, W)``
(:func:`burstkpn.bench.methods.resolve_video_method`):

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

from collections.abc import Sequence
from pathlib import Path

import torch

from burstkpn.bench.defaults import DEFAULT_MOTION_METHODS, DEFAULT_VIDEO_METHODS
from burstkpn.bench.kernels import is_deform3d, kernel_statistics, write_kernel_figures
from burstkpn.bench.methods import Method, resolve_all, resolve_video_method
from burstkpn.bench.motion import motion_sweep_rows, write_motion_reports
from burstkpn.bench.report import write_html_report
from burstkpn.bench.tables import markdown_report, write_results
from burstkpn.bench.testsets import evaluate_testset
from burstkpn.data.io.files import atomic_write_bytes, prepare_output_dir
from burstkpn.data.testsets.video import VideoTestSet
from burstkpn.errors import InputError

__all__ = [  # the parser's default lists are checked against these
    "DEFAULT_MOTION_METHODS",
    "DEFAULT_VIDEO_METHODS",
    "kernel_model",
    "run_video",
    "write_video_reports",
]

ANCHORS = ("reference", "average")


def write_video_reports(
    result: dict, out: Path, command: str, figures: Sequence[tuple[str, Path]] = ()
) -> dict:
    """results.csv, results.json, report.md (Table 3 layout) and report.html (with
    ``figures``: (heading, PNG) pairs, e.g. the motion sweep)."""
    summary = write_results(result, out, command, windows=result["windows"])
    intro = (
        f"{result['windows']} windows of 5 frames at {len(result['levels'])} noise levels "
        "(the Table 3 layout of the deformable-kernels paper). PSNR (dB) / SSIM of the centre "
        "frame on sRGB-gamma-corrected images, 8-pixel border ignored, averaged per window; "
        "s / MP is wall time per megapixel of output."
    )
    md = markdown_report(
        "Video benchmark",
        command,
        intro,
        summary,
        result["notes"],
        classical=ANCHORS,
        against="reference / average",
        after="".join(f"\n![{title}]({path.name})\n" for title, path in figures),
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
    """``bench video``; with ``motion_sweep`` (keyword arguments of
    :func:`~burstkpn.bench.motion.motion_sweep_rows`) the sweep is run too, written next to the
    tables and shown in ``report.html``. ``kernels`` (:func:`kernel_model`; by default whenever
    a deform3d is among the methods): the Fig. 9 / Fig. 10 figures of that model
    (:func:`~burstkpn.bench.kernels.kernel_statistics`,
    :func:`~burstkpn.bench.kernels.write_kernel_figures`)."""
    out = prepare_output_dir(out_dir, force)
    resolved = resolve_all(methods, resolve_video_method)
    kernel_net, kernel_name = kernel_model(kernels, resolved[0])
    result = evaluate_testset(
        VideoTestSet(testset_dir), lambda _: resolved, limit=limit, progress=progress
    )
    figures = []
    if motion_sweep is not None:
        sweep = motion_sweep_rows(progress=progress, resolved=resolved, **motion_sweep)
        write_motion_reports(sweep, out, command)
        figures.append(("Motion sweep (PSNR vs motion, cf. Fig. 8)", out / "motion.png"))
    if kernel_net is not None:
        stats = kernel_statistics(kernel_net, testset_dir, limit=limit, progress=progress)
        figures += write_kernel_figures(stats, out, kernel_name)
    return write_video_reports(result, out, command, figures)


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
