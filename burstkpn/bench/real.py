"""``burstkpn bench real``: PSNR / SSIM on real photos, which have no clean ground truth.

**Static bursts** (``burstkpn bench real FOLDER``). The frames, sorted by name, are split in two
halves: frames ``0 .. ceil(N/2) - 1`` and ``ceil(N/2) .. N - 1`` (:func:`split_burst`; 7 frames:
0-3 and 4-6). Every method denoises the first half, with its first frame as the reference. The
*pseudo ground truth* is the second half moved onto the reference (global translation,
:func:`burstkpn.ops.align.estimate_shifts` / :func:`~burstkpn.ops.align.apply_shifts`) and
averaged, in linear light (:func:`burstkpn.data.io.images.srgb_to_linear`), then sRGB-encoded.

It is a noisy estimate of the same scene. Were its error independent of every method's, it
would add (in expectation) the same mean squared error to each: ``E|out - gt'|^2 = E|out -
gt|^2 + E|gt' - gt|^2``. Absolute PSNRs are lower bounds of the PSNR against the true
scene. The noise of the pseudo ground truth is independent of the first half, but its
alignment error is not independent of the methods': it is made the way ``align_mean`` /
``align_bm3d`` are (cubic-spline shifts of aliased frames, then a mean), so it shares their
interpolation error, and on synthetic static bursts with known truth
(``benchmarks/real_score_check.py``) the score favours them over the burst models, which keep
the reference's own samples. Compare methods of the same kind on it.
Anything that is not static (leaves in the wind, a moving person) counts against every method.

**Real pairs** (``burstkpn bench real --pairs DIR``): noisy / mean images of a static scene
(PolyU: ``X_real.JPG`` or ``X_Real.JPG`` with ``X_mean.JPG``, names matched case-insensitively
by :func:`burstkpn.data.io.pairs.find_pairs`); the noisy image is the only frame, the mean of many
captures the (near) ground truth.

Noise: every method uses one level, the one ``--noise auto`` measures: on the first half of a
burst (:func:`measure_burst_noise`: temporal differences for 3 frames or more, else spatial
statistics), on the noisy image of a pair (:func:`measure_image_noise`, spatial). Classical
methods take its channel-pooled ``sigma_r`` / ``sigma_s``; burst models get the measurement
itself, per-channel levels included, as ``burstkpn denoise`` hands it to them.

Methods, each returning the denoised reference as an sRGB image:

- ``reference``: the noisy reference as stored; ``align_mean``: the first half aligned to the
  reference (:func:`burstkpn.ops.align.align_frames`) and averaged in linear light;
- ``average``, ``nlm``, ``nlm_multi``, ``bm3d``, ``align_bm3d``: :mod:`burstkpn.bench.methods`
  in linear light with the measured level (generalised Anscombe transform);
- burst models (``kpn``, ``ame_kpn``, shipped weights by name or a ``.safetensors`` file):
  :func:`burstkpn.denoising.denoise_burst` given the measured level, the path of
  ``burstkpn denoise`` (global pre-alignment beyond 2 px, frames repeated cyclically to fill the
  model's slots, 512 px tiles). On the pairs, a burst model gets the one image in every slot
  (``burstkpn denoise`` refuses a single image for a burst model): with the same noise in every
  frame there is nothing to average, so this measures the model as a spatial filter;
- single-image models (``dcn_lka_denoise``, ``deform2d``):
  :func:`burstkpn.restoration.restore_image` on the reference, which measures the noise of that
  one image itself.

Scores: :func:`burstkpn.metrics.psnr` / :func:`~burstkpn.metrics.ssim` on the sRGB images
(``linear=False``), clipped to [0, 1], ignoring a border of :data:`BURST_BORDER` px for bursts
(where alignment pads; wider when a frame moved further) and the metrics' usual 8 px for pairs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from burstkpn.bench.defaults import CLASSICAL_REAL, DEFAULT_PAIR_METHODS
from burstkpn.bench.defaults import DEFAULT_REAL_METHODS as DEFAULT_BURST_METHODS
from burstkpn.bench.figures import crop_grid, grid_boxes, grid_panel
from burstkpn.bench.methods import CLASSICAL, EXTRAS, resolve_all
from burstkpn.bench.real_cases import (
    BURST_BORDER,
    Case,
    Level,
    Split,
    alignment_border,
    center_crop,
    list_burst,
    measure_burst_noise,
    measure_image_noise,
    pseudo_ground_truth,
    split_burst,
)
from burstkpn.bench.real_report import write_real_reports
from burstkpn.data.io.files import prepare_output_dir
from burstkpn.data.io.images import image_to_tensor, linear_to_srgb, read_image, srgb_to_linear
from burstkpn.data.io.pairs import _image_files, detect_layout, find_pairs
from burstkpn.denoising import denoise_burst, load_frames
from burstkpn.errors import InputError
from burstkpn.evaluation import Scorer
from burstkpn.inference import DEFAULT_TILE, runner_for, try_resolve
from burstkpn.inference.resolve import is_model_reference
from burstkpn.metrics import BORDER as PAIR_BORDER
from burstkpn.models import list_models
from burstkpn.ops.align import align_frames, estimate_shifts
from burstkpn.restoration import is_single_image, restore_image

__all__ = [  # what cli/bench.py, the tests and benchmarks/ use from here
    "BURST_BORDER",
    "CLASSICAL_REAL",
    "DEFAULT_BURST_METHODS",
    "DEFAULT_PAIR_METHODS",
    "Case",
    "Level",
    "Split",
    "alignment_border",
    "burst_case",
    "burst_loaders",
    "burst_model_method",
    "center_crop",
    "evaluate_real",
    "grid_boxes",
    "grid_panel",
    "list_burst",
    "measure_burst_noise",
    "pair_loaders",
    "pseudo_ground_truth",
    "resolve_real_method",
    "run_real",
    "run_real_burst",
    "run_real_pairs",
    "split_burst",
]


# --------------------------------------------------------------------------- cases
def burst_case(
    frames: torch.Tensor, name: str, *, refs: Sequence[str] = (), crop: int | None = None
) -> Case:
    """A static burst ``(N, C, H, W)`` (sRGB as stored) -> the :class:`Case` of its centred
    ``crop``: first half to denoise, pseudo ground truth from the second half."""
    frames = center_crop(frames, crop)
    split = split_burst(frames.shape[0])
    linear = srgb_to_linear(frames.float())
    shifts = estimate_shifts(linear)  # each frame against frame 0
    truth = pseudo_ground_truth(linear[list(split.truth)], shifts[list(split.truth)])
    first = frames[list(split.denoise)]
    noise = measure_burst_noise(linear[list(split.denoise)])
    del linear
    names = [Path(r).name for r in refs] or [f"frame {i}" for i in range(frames.shape[0])]
    info = {
        "frames": names,
        "denoised": [names[i] for i in split.denoise],
        "pseudo_ground_truth": [names[i] for i in split.truth],
        "shifts": np.round(shifts, 3).tolist(),
        "size": list(frames.shape[-2:]),
        "noise": noise.record(),
    }
    return Case(name, name, first, truth, noise, alignment_border(shifts), info)


def burst_loaders(
    folder: str | Path, *, crop: int | None = None, limit: int | None = None
) -> tuple[list[Callable[[], Case]], str]:
    """The loader of the :class:`Case` of the static burst in ``folder`` (its first ``limit``
    frames by name, a centred ``crop``) and the burst's name; one-line errors for a missing
    folder and too few frames (:func:`~burstkpn.bench.real_cases.list_burst`)."""
    refs = list_burst(folder, limit)
    name = Path(folder).resolve().name
    return [lambda: burst_case(load_frames(refs)[0], name, refs=refs, crop=crop)], name


def pair_loaders(
    root: str | Path, *, crop: int | None = None, limit: int | None = None
) -> tuple[list[Callable[[], Case]], str]:
    """Loaders of the :class:`Case` of each noisy / clean pair under ``root`` (the first
    ``limit`` by name), and the layout found."""
    root = Path(root)
    found = find_pairs(root)[:limit]
    layout = detect_layout(_image_files(root)) or "pairs"

    def load(noisy: Path, clean: Path) -> Case:
        x = center_crop(image_to_tensor(read_image(noisy)), crop)
        truth = center_crop(image_to_tensor(read_image(clean)), crop)
        if x.shape[0] != truth.shape[0]:
            raise InputError(f"'{noisy.name}' and '{clean.name}' differ in their channels")
        noise = measure_image_noise(srgb_to_linear(x.float()))
        name = re.sub(r"_real$", "", noisy.stem, flags=re.IGNORECASE)
        info = {
            "noisy": str(noisy.relative_to(root)),
            "clean": str(clean.relative_to(root)),
            "size": list(x.shape[-2:]),
            "noise": noise.record(),
        }
        return Case(name, layout, x[None], truth, noise, PAIR_BORDER, info)

    return [lambda a=a, b=b: load(a, b) for a, b in found], layout


# --------------------------------------------------------------------------- methods
RealMethod = Callable[[Case], torch.Tensor]  # -> the denoised reference, sRGB (C, H, W)


def _encode(x: torch.Tensor) -> torch.Tensor:
    return linear_to_srgb(x.float()).clamp(0, 1)


def reference(case: Case) -> torch.Tensor:
    return case.frames[0].float()


def align_mean(case: Case) -> torch.Tensor:
    return _encode(align_frames(case.linear).mean(0))


def _classical(name: str) -> RealMethod:
    fn = CLASSICAL[name][0]

    def run(case: Case) -> torch.Tensor:
        return _encode(fn(case.item())[0])

    return run


def burst_model_method(model: torch.nn.Module, tile: int = DEFAULT_TILE) -> RealMethod:
    """A model through the path of ``burstkpn denoise`` with the case's noise level."""
    runner = runner_for(model)
    if runner.traits.kind == "single":
        return lambda case: restore_image(case.frames[0].float(), runner, tile=tile)

    def run(case: Case) -> torch.Tensor:
        frames = case.frames.float()
        if frames.shape[0] == 1:
            # one image (the pairs): the frame in every slot. Its noise is repeated, so the
            # model has nothing to average and works as a spatial filter; ``burstkpn
            # denoise`` refuses this, the bench shows what the burst models do on one image
            frames = frames.expand(2, -1, -1, -1)
        result = denoise_burst(frames, runner, noise=case.noise.for_models(), tile=tile)
        return result.image

    return run


def resolve_real_method(name: str) -> tuple[RealMethod | None, str]:
    """``(callable, note)``; ``None`` with the reason when an optional package or the shipped
    weights are missing. Names: :data:`CLASSICAL_REAL`, shipped weights (``kpn``, ``ame_kpn``,
    ``dcn_lka_denoise``, ...; ``dcn_lka`` means its denoising weights) or a checkpoint file."""
    if name in ("reference", "align_mean"):
        return {"reference": reference, "align_mean": align_mean}[name], ""
    if name in CLASSICAL_REAL:
        package = CLASSICAL[name][1]
        if package is not None and find_spec(package) is None:
            return None, f"skipped: needs {EXTRAS[package]}"
        return _classical(name), ""
    known = set(list_models()) | set(DEFAULT_BURST_METHODS) | set(DEFAULT_PAIR_METHODS)
    if not (is_model_reference(name) or name in known):
        raise InputError(
            f"unknown method '{name}' (classical: {', '.join(CLASSICAL_REAL)}; models: "
            f"{', '.join(list_models())}; shipped weights; or a .safetensors checkpoint)"
        )
    model, note = try_resolve(name, "denoise")
    if model is None:
        return None, note
    kind = "single image: sees the reference only" if is_single_image(model) else "burst"
    if note.endswith(")"):  # shipped weights: say what the model sees
        note = f"{note[:-1]}; {kind})"
    return burst_model_method(model), note


# --------------------------------------------------------------------------- evaluation
def _progress(bar, case: Case, panels: list, crop, detail, cases_left: int):
    """The ``before`` / ``after`` hooks of :meth:`~burstkpn.evaluation.Scorer.run` for one
    case: the progress bar names the run; every output adds its panel to ``panels``."""

    def before(name: str) -> None:
        bar.set_postfix_str(f"{case.name}: {name}")

    def after(name: str, out: torch.Tensor | None, row: dict | None) -> None:
        if out is None:  # refused: not run on the cases still to come
            bar.total -= cases_left
        else:
            panels.append((f"{name} {row['psnr']:.2f} dB", grid_panel(out, crop, detail)))
        bar.update(1)

    return before, after


def evaluate_real(
    loaders: Sequence[Callable[[], Case]], methods: Sequence[str], *, progress: bool = True
) -> dict:
    """Every available method on every case. Returns the layout
    :func:`burstkpn.evaluation.summarize` reads (``rows``, ``notes``, ``levels``,
    ``methods``, ``bursts``) plus ``cases`` (their records) and ``grids`` (PNG bytes per
    case). A method that refuses a case (:class:`InputError`, e.g. a burst model given one
    image) is skipped everywhere, with the reason in its note."""
    resolved, notes = resolve_all(methods, resolve_real_method)
    scorer = Scorer(
        resolved,
        notes,
        label=lambda case: (case.name, case.group, case.truth),
        linear=False,
        border=lambda case: case.border,
        refused=(InputError,),  # e.g. a burst model given one image
    )
    cases, grids, levels = [], {}, []
    bar = tqdm(
        total=len(loaders) * len(resolved), desc="bench real", unit="run", disable=not progress
    )
    for index, load in enumerate(loaders):
        case = load()
        levels = levels if case.group in levels else [*levels, case.group]
        crop, detail = grid_boxes(case.truth)
        label = "pseudo ground truth" if case.frames.shape[0] > 1 else "mean (ground truth)"
        panels = [(label, grid_panel(case.truth, crop, detail))]
        before, after = _progress(bar, case, panels, crop, detail, len(loaders) - index - 1)
        scorer.run(case, before=before, after=after)
        grids[case.name] = crop_grid(panels)
        cases.append(
            {"name": case.name, "border": case.border, "crop": list(crop), "detail": list(detail)}
            | case.info
        )
    bar.close()
    return {
        "rows": scorer.rows,
        "notes": scorer.notes,
        "levels": levels,
        "methods": list(scorer.methods),
        "bursts": len(cases),
        "cases": cases,
        "grids": grids,
    }


# --------------------------------------------------------------------------- the command
def run_real(
    source: str | Path,
    methods: Sequence[str] | None = None,
    out_dir: str | Path = "reports/real",
    *,
    pairs: bool = False,
    crop: int | None = None,
    limit: int | None = None,
    force: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """``burstkpn bench real FOLDER`` (a static burst: its first ``limit`` frames) or, with
    ``pairs``, ``burstkpn bench real --pairs DIR`` (noisy / mean pairs: the first ``limit``),
    centred ``crop``s: the report in ``out_dir``; returns what results.json holds. ``methods``
    and ``command`` default to the burst's or the pairs' own."""
    smallest = 2 * BURST_BORDER + 16
    if crop is not None and crop < smallest:
        raise InputError(f"--crop must be at least {smallest} px, got {crop}")
    if pairs:
        loaders, layout = pair_loaders(source, crop=crop, limit=limit)
        name = f"{layout} pairs in {Path(source).name}"
    else:
        loaders, name = burst_loaders(source, crop=crop, limit=limit)
    out = prepare_output_dir(out_dir, force)
    defaults = DEFAULT_PAIR_METHODS if pairs else DEFAULT_BURST_METHODS
    result = evaluate_real(loaders, defaults if methods is None else methods, progress=progress)
    if command is None:
        command = "burstkpn bench real --pairs" if pairs else "burstkpn bench real"
    return write_real_reports(result, out, "pairs" if pairs else "burst", command, name)


run_real_burst = partial(run_real, pairs=False)  # ``burstkpn bench real FOLDER``
run_real_pairs = partial(run_real, pairs=True)  # ``burstkpn bench real --pairs DIR``
