"""``burstkpn bench quality``: methods x test set -> PSNR / SSIM per noise level, in the layout of
[AME-KPN] Table 1, plus seconds per megapixel; results.csv, results.json, report.md and
report.html in the output folder.

PSNR / SSIM are :func:`burstkpn.metrics.psnr` / :func:`~burstkpn.metrics.ssim` (gamma-corrected,
clipped, 8-pixel border, per image), averaged over the bursts of each level.
"""

from __future__ import annotations

from pathlib import Path

import torch

from burstkpn.bench.ablation import run_ablation
from burstkpn.bench.methods import Method, resolve_all, resolve_method
from burstkpn.bench.report import write_html_report
from burstkpn.bench.tables import (
    CLASSICAL_ANCHORS,
    bias_table,
    markdown_report,
    markdown_table,
    standing,
    write_results,
)
from burstkpn.bench.testsets import evaluate_testset
from burstkpn.data.io.files import atomic_write_bytes, prepare_output_dir
from burstkpn.data.testsets.burst import TestSet
from burstkpn.errors import InputError
from burstkpn.evaluation import select_entries, summarize
from burstkpn.models import load_pretrained
from burstkpn.models.traits import model_traits

__all__ = [  # what cli.py, the tests and benchmarks/ import from here
    "CLASSICAL_ANCHORS",
    "SHADOWS",
    "bias_table",
    "evaluate",
    "markdown_table",
    "run_ablation",
    "run_quality",
    "select_entries",
    "standing",
    "summarize",
    "write_reports",
]


SHADOWS = (
    "Brightness in the shadows: mean signed sRGB error over the clean values below 0.15 / over "
    "the inside of dark regions (clean below 0.15 within 7 px), in 1/255 steps (positive: "
    "brighter than the truth; 8-pixel border ignored, pooled over images). The first figure "
    "includes dark details in bright surroundings, which every denoiser that averages "
    "neighbours brightens (BM3D and NLM too); the second is a brightness shift."
)


def resolve_for(frames: int, name: str) -> tuple[Method | None, str]:
    """:func:`~burstkpn.bench.methods.resolve_method`, skipping burst models that take another
    burst length than the test set's ``frames`` (single-image models take the reference)."""
    fn, note = resolve_method(name)
    model = getattr(fn, "model", None)  # learned methods carry their model
    traits = None if model is None else model_traits(model)
    wanted = None if traits is None else traits.frames
    if wanted not in (None, 1, frames) and traits.kind != "single":
        return None, f"skipped: takes bursts of {wanted} frames, the test set has {frames}"
    return fn, note


def evaluate(
    testset_dir: str | Path,
    methods: list[str],
    *,
    limit: int | None = None,
    examples: int = 3,
    example_level: str = "gain3",
    progress: bool = True,
) -> dict:
    """Run every available method on every selected burst. Returns ``{"rows": per-burst
    results, "notes": {method: note}, "examples": [...], "levels": [...]}``."""

    def resolve(entries: list[dict]) -> tuple[dict[str, Method], dict[str, str]]:
        frames = len(entries[0]["offsets"])
        return resolve_all(methods, lambda name: resolve_for(frames, name))

    return evaluate_testset(
        TestSet(testset_dir),
        resolve,
        limit=limit,
        examples=examples,
        example_level=example_level,
        progress=progress,
    )


def ame_visualisation(examples: list[dict]) -> dict | None:
    """What AME-KPN predicts at one pixel of the first example: per-frame kernels, weight maps W
    and residual maps R (channel 0)."""
    if not examples:
        return None
    try:
        model = load_pretrained("ame_kpn")
    except InputError:
        return None
    item = examples[0]["item"]
    if item.noisy.shape[1] != model.num_frames:  # e.g. a single-image test set
        return None
    with torch.no_grad():
        out = model(item.noisy, item.noise_map, return_aux=True)
    clean = item.clean[0, 0]
    gy = (clean[1:, :-1] - clean[:-1, :-1]).abs() + (clean[:-1, 1:] - clean[:-1, :-1]).abs()
    idx = int(gy[8:-8, 8:-8].argmax()) if gy.shape[0] > 16 and gy.shape[1] > 16 else 0
    width = max(gy.shape[1] - 16, 1)
    y, x = (idx // width + 8, idx % width + 8) if gy.shape[0] > 16 else (0, 0)
    aux = out.aux
    return {
        "pixel": (y, x),
        "kernels": aux["kernels"][0, :, 0, :, y, x],
        "weights": aux["weights"][0, :, 0] if "weights" in aux else None,
        "residuals": aux["residuals"][0, :, 0] if "residuals" in aux else None,
        "frames": item.noisy[0, :, 0],
    }


def write_reports(result: dict, out: Path, command: str) -> dict:
    """results.csv, results.json, report.md and report.html."""
    summary = write_results(result, out, command, bursts=result["bursts"])
    intro = (
        f"{result['bursts']} bursts. PSNR (dB) / SSIM on sRGB-gamma-corrected images, 8-pixel "
        "border ignored, averaged per image; s / MP is wall time per megapixel of output."
    )
    bias = bias_table(summary)
    md = markdown_report(
        "Benchmark",
        command,
        intro,
        summary,
        result["notes"],
        before=f"\n{SHADOWS}\n\n{bias}\n" if bias else "",
    )
    atomic_write_bytes(out / "report.md", md.encode())
    table = {**summary, "caption": command}
    examples = [
        {k: e[k] for k in ("name", "level", "clean", "noisy", "outputs")}
        for e in result["examples"]
    ]
    write_html_report(out, table, examples, ame_visualisation(result["examples"]))
    return summary


def run_quality(
    testset_dir,
    methods,
    out_dir,
    *,
    limit=None,
    force=False,
    progress=True,
    command="burstkpn bench quality",
) -> dict:
    out = prepare_output_dir(out_dir, force)
    result = evaluate(testset_dir, list(methods), limit=limit, progress=progress)
    return write_reports(result, out, command)
