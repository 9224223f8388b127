"""``burstkpn bench real``: PSNR / SSIM on real photos, which have no clean ground truth.

**Static bursts** (``burstkpn bench real FOLDER``). The frames, sorted by name, are split in two
halves: frames ``0 .. ceil(N/2) - 1`` and ``ceil(N/2) .. N - 1`` (:func:`split_burst`; 7 frames:
0-3 and 4-6). Every method denoises the first half, with its first frame as the reference. The
*pseudo ground truth* is the second half moved onto the reference (global translation,
:func:`burstkpn.ops.align.estimate_shifts` / :func:`~burstkpn.ops.align.apply_shifts`) and
averaged, in linear light (:func:`burstkpn.data.io.images.srgb_to_linear`), then sRGB-encoded.

It is an independent noisy estimate of the same scene, so its error adds (in expectation) the
same mean squared error to every method: ``E|out - gt'|^2 = E|out - gt|^2 + E|gt' - gt|^2``.
The order of the methods and their MSE differences are meaningful; absolute PSNRs are lower
bounds of the PSNR against the true scene, and PSNR gaps are compressed by the shared term.
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

import base64
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from burstkpn.bench.defaults import DEFAULT_PAIR_METHODS
from burstkpn.bench.defaults import DEFAULT_REAL_METHODS as DEFAULT_BURST_METHODS
from burstkpn.bench.methods import CLASSICAL, EXTRAS, resolve_all
from burstkpn.bench.report import _CSS, _esc, _table_html, zoom_window
from burstkpn.bench.tables import json_bytes, markdown_table, standing
from burstkpn.data.degrade import estimate
from burstkpn.data.degrade.estimate import estimate_or_floor
from burstkpn.data.degrade.noise import estimate_noise_map
from burstkpn.data.io.files import atomic_write_bytes, prepare_output_dir
from burstkpn.data.io.images import (
    image_to_tensor,
    linear_to_srgb,
    list_images,
    read_image,
    srgb_to_linear,
)
from burstkpn.data.io.pairs import _image_files, detect_layout, find_pairs
from burstkpn.denoising import denoise_burst, load_frames
from burstkpn.errors import InputError
from burstkpn.evaluation import Scorer, summarize
from burstkpn.inference import DEFAULT_TILE, runner_for, try_resolve
from burstkpn.inference.resolve import is_model_reference
from burstkpn.metrics import BORDER as PAIR_BORDER
from burstkpn.models import list_models
from burstkpn.ops.align import align_frames, apply_shifts, estimate_shifts
from burstkpn.restoration import is_single_image, restore_image
from burstkpn.viz import contact_sheet, label_tile

MIN_FRAMES = 3  # two to denoise (a burst), at least one for the pseudo ground truth
BURST_BORDER = 16  # px left out of the scores of a burst: alignment pads the frames' edges
GRID = 256  # side of the central crop shown for every method
DETAIL = 64  # side of the detail window, enlarged to GRID
GRID_COLUMNS = 5


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Split:
    """Frame indices of a burst: ``denoise`` (the reference first) and ``truth``."""

    denoise: tuple[int, ...]
    truth: tuple[int, ...]


def split_burst(n: int) -> Split:
    """Frames ``[0, n // 2 + n % 2)`` to denoise, the rest for the pseudo ground truth."""
    if n < MIN_FRAMES:
        raise InputError(f"a real-burst score needs at least {MIN_FRAMES} frames, got {n}")
    first = n // 2 + n % 2
    return Split(tuple(range(first)), tuple(range(first, n)))


def center_crop(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """The centred ``size`` x ``size`` window of ``(..., H, W)`` (each side at most the
    image's); the whole image for ``None``."""
    if size is None:
        return x
    h, w = x.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]


def pseudo_ground_truth(frames: torch.Tensor, shifts: np.ndarray) -> torch.Tensor:
    """Linear frames ``(M, C, H, W)`` moved by ``shifts`` ``(M, 2)`` onto the reference and
    averaged, sRGB-encoded: ``(C, H, W)`` in [0, 1]."""
    return linear_to_srgb(apply_shifts(frames.float(), shifts).mean(0)).clamp(0, 1)


def alignment_border(shifts: np.ndarray, minimum: int = BURST_BORDER) -> int:
    """Border (px) to leave out of the scores: ``minimum``, or more when a frame moved so far
    that its padded edge (plus the cubic spline's reach) would reach into the scored area."""
    reach = math.ceil(float(np.abs(shifts).max(initial=0.0))) + 4
    return max(minimum, reach)


@dataclass(frozen=True)
class Level:
    """A measured noise level: ``sigma_r`` / ``sigma_s`` (pooled over channels, what the
    classical methods use), the estimator's name, and its own result, handed as it is to
    :func:`~burstkpn.denoising.denoise_burst` (per-channel levels where it has them)."""

    sigma_r: float
    sigma_s: float
    estimator: str
    measured: object = None

    def for_models(self) -> object:
        return (self.sigma_r, self.sigma_s) if self.measured is None else self.measured

    def record(self) -> dict:
        out = {"sigma_r": self.sigma_r, "sigma_s": self.sigma_s, "estimator": self.estimator}
        per_channel = getattr(self.measured, "per_channel", None)
        return out | ({"per_channel": [list(c) for c in per_channel]} if per_channel else {})


def measure_burst_noise(burst: torch.Tensor) -> Level:
    """What ``burstkpn denoise --noise auto`` measures on a linear burst ``(N, C, H, W)``: the
    temporal estimator (``estimate_burst_noise``) for 3 frames or more where it can measure,
    else the spatial one (:func:`measure_image_noise`)."""
    temporal = getattr(estimate, "estimate_burst_noise", None)
    if temporal is not None and burst.shape[0] >= 3:
        try:
            level = temporal(burst)
        except InputError:  # too much motion, too small an overlap
            pass
        else:
            sigma_r, sigma_s = float(level.sigma_r), float(level.sigma_s)
            return Level(sigma_r, sigma_s, "estimate_burst_noise", level)
    return measure_image_noise(burst)


def measure_image_noise(image: torch.Tensor) -> Level:
    """The level of a linear image ``(C, H, W)`` (or burst) by the spatial estimator."""
    sigma_r, sigma_s = estimate_or_floor(image)
    return Level(float(sigma_r), float(sigma_s), "estimate_or_floor")


@dataclass
class Case:
    """One scored image: ``frames`` ``(N, C, H, W)`` sRGB as stored (frame 0 the reference),
    ``truth`` ``(C, H, W)`` sRGB, the noise level every method uses, the scoring border, and
    ``info`` for the records."""

    name: str
    group: str  # the table column: the burst's name, or the pairs' layout
    frames: torch.Tensor
    truth: torch.Tensor
    noise: Level
    border: int
    info: dict = field(default_factory=dict)

    @property
    def sigma_r(self) -> float:
        return self.noise.sigma_r

    @property
    def sigma_s(self) -> float:
        return self.noise.sigma_s

    @cached_property
    def linear(self) -> torch.Tensor:
        return srgb_to_linear(self.frames.float())

    def item(self) -> SimpleNamespace:
        """What :mod:`burstkpn.bench.methods` reads (a test-set burst without offsets)."""
        noisy = self.linear[None]
        nmap = estimate_noise_map(noisy[:, 0], self.sigma_r, self.sigma_s)
        return SimpleNamespace(
            noisy=noisy, noise_map=nmap, sigma_r=self.sigma_r, sigma_s=self.sigma_s, offsets=None
        )


def list_burst(folder: str | Path, limit: int | None = None) -> list[str]:
    """The frame files of a burst folder, sorted by name (the first ``limit``); one-line errors
    for a missing folder and too few frames."""
    refs = list_images(str(folder))[:limit]
    if len(refs) < MIN_FRAMES:
        raise InputError(
            f"a real-burst score needs at least {MIN_FRAMES} frames (two to denoise, one or more "
            f"for the pseudo ground truth), '{folder}' has {len(refs)}"
        )
    return refs


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


CLASSICAL_REAL = ("reference", "align_mean", "average", "nlm", "nlm_multi", "bm3d", "align_bm3d")


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


# --------------------------------------------------------------------------- crop grid
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
    :func:`burstkpn.bench.quality.summarize` reads (``rows``, ``notes``, ``levels``,
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


def per_image_summary(result: dict) -> dict:
    """:func:`~burstkpn.bench.quality.summarize` with one column per image."""
    images = [c["name"] for c in result["cases"]]
    rows = [r | {"level": r["image"]} for r in result["rows"]]
    return summarize(result | {"rows": rows, "levels": images})


# --------------------------------------------------------------------------- reports
def grid_file(case_name: str, single: bool) -> str:
    return "crops.png" if single else f"crops_{re.sub(r'[^A-Za-z0-9_.-]+', '_', case_name)}.png"


def explanation(kind: str, result: dict) -> list[str]:
    """The report's paragraphs: what was scored against what, and how to read it."""
    if kind == "burst":
        c = result["cases"][0]
        n = c["noise"]
        h, w = c["size"]
        shift = max((abs(v) for s in c["shifts"] for v in s), default=0.0)
        return [
            f"Real static burst, {len(c['frames'])} frames, {w}x{h} px evaluated. Split in two "
            f"halves: the methods denoise {', '.join(c['denoised'])} (the first is the "
            f"reference); the pseudo ground truth is {', '.join(c['pseudo_ground_truth'])} "
            "aligned to the reference (global translation, phase correlation + cubic splines, "
            f"linear light; largest shift {shift:.2f} px) and averaged, then sRGB-encoded.",
            "The pseudo ground truth is itself noisy (and anything that moved between frames "
            "counts against it). Its error is independent of the first half, so it adds about "
            "the same mean squared error to every method: the order of the methods is "
            "meaningful, but **absolute PSNRs are lower bounds** and the gaps between methods "
            "are compressed.",
            f"Every method uses the noise level measured on the first half (as `--noise auto` "
            f"does, `{n['estimator']}`): sigma_r = {n['sigma_r']:.4g}, sigma_s = "
            f"{n['sigma_s']:.4g} (pooled over channels; classical methods use these, burst "
            "models get the measurement itself, per-channel levels included). Burst models run "
            f"through `burstkpn denoise`'s code path (`denoise_burst`) on the "
            f"{len(c['denoised'])} frames, repeated cyclically to fill their 8 slots; "
            "single-image models see the reference only (and measure its noise themselves).",
            f"PSNR (dB) / SSIM on the sRGB images clipped to [0, 1], a {c['border']}-px border "
            "ignored (alignment pads there); s / MP is wall time per megapixel.",
        ]
    levels = ", ".join(
        f"{c['name']} {c['size'][1]}x{c['size'][0]} (sigma_r {c['noise']['sigma_r']:.3g}, "
        f"sigma_s {c['noise']['sigma_s']:.3g})"
        for c in result["cases"]
    )
    return [
        f"Real noisy / mean pairs ({result['bursts']}): the noisy image is the only input, the "
        "mean of many captures the ground truth (near: it keeps a little noise, so PSNRs are "
        "slightly low for every method alike).",
        "Every method uses the noise level of the single-image estimator (`estimate_or_floor`, "
        f"what `--noise auto` measures on one image) in linear light: {levels}. Burst models "
        "get the one image in every frame slot (`burstkpn denoise` refuses a single image for "
        "a burst model): with one noise realisation there is nothing to average, so their rows "
        "measure them as spatial filters. NLM / BM3D here use "
        "the measured Poisson-Gaussian level through the Anscombe transform (`bench quality`'s "
        "settings), unlike `bench restore`, which estimates one sigma on the sRGB image.",
        "PSNR (dB) / SSIM on the sRGB images clipped to [0, 1], 8-pixel border ignored, per "
        "image then averaged; s / MP is wall time per megapixel.",
    ]


def write_real_reports(result: dict, out: Path, kind: str, command: str, source: str) -> dict:
    """results.json, report.md, the crop grid PNG(s) and real.html in ``out``; returns what
    results.json holds."""
    summary = summarize(result)
    single = len(result["grids"]) == 1
    files = {name: grid_file(name, single) for name in result["grids"]}
    for name, png in result["grids"].items():
        atomic_write_bytes(out / files[name], png)
    per_image = per_image_summary(result) if result["bursts"] > 1 else None
    payload = {
        "command": command,
        "kind": kind,
        "source": source,
        "summary": summary,
        "per_image": per_image,
        "notes": result["notes"],
        "cases": result["cases"],
        "rows": result["rows"],
    }
    atomic_write_bytes(out / "results.json", json_bytes(payload))
    title = "Real burst without ground truth" if kind == "burst" else "Real noisy / mean pairs"
    paragraphs = explanation(kind, result)
    stand = standing(summary, classical=CLASSICAL_REAL)
    noted = [f"- {m}: {n}" for m, n in result["notes"].items() if n]
    md = [f"# {title}: {source}", "", f"`{command}`", ""]
    for p in paragraphs:
        md += [p, ""]
    md += [markdown_table(summary), ""]
    if per_image is not None:
        md += ["Per image:", "", markdown_table(per_image), ""]
    if stand:
        md += ["Standing (mean PSNR, learned minus classical):", "", *stand, ""]
    if noted:
        md += ["Methods:", "", *noted, ""]
    detail = DETAIL
    for name, file in files.items():
        md += [
            f"Central {GRID}x{GRID} crop of {name} (top) and the {detail}x{detail} window of "
            "most detail (red box) enlarged (bottom), PSNR of the whole scored image:",
            "",
            f"![{name}]({file})",
            "",
        ]
    atomic_write_bytes(out / "report.md", "\n".join(md).encode())
    write_real_html(out / "real.html", title, source, command, paragraphs, payload, result)
    return payload


def write_real_html(
    path: Path,
    title: str,
    source: str,
    command: str,
    paragraphs: Sequence[str],
    payload: dict,
    result: dict,
) -> None:
    """One self-contained page (the report's CSS and table, images embedded)."""

    def para(text: str) -> str:
        text = _esc(text)
        text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
        return "<p>" + re.sub(r"`(.+?)`", r"<code>\1</code>", text) + "</p>"

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title>",
        f"<style>{_CSS}</style></head>",
        "<body>",
        f"<h1>{_esc(title)}: {_esc(source)}</h1>",
        f'<pre class="caption">{_esc(command)}</pre>',
        *[para(p) for p in paragraphs],
        "<h2>Results</h2>",
        _table_html(payload["summary"]),
    ]
    if payload["per_image"] is not None:
        parts += ["<h2>Per image</h2>", _table_html(payload["per_image"])]
    noted = [f"<li>{_esc(m)}: {_esc(n)}</li>" for m, n in result["notes"].items() if n]
    if noted:
        parts += ["<h2>Methods</h2>", "<ul>", *noted, "</ul>"]
    parts.append("<h2>Crops</h2>")
    for name, png in result["grids"].items():
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        parts += [
            f"<h3>{_esc(name)}</h3>",
            f'<p class="note">Central {GRID}&times;{GRID} crop (top) and the '
            f"{DETAIL}&times;{DETAIL} window of most detail (red box) enlarged (bottom).</p>",
            f'<img class="chart" src="{uri}" alt="{_esc(name)} crops">',
        ]
    parts += ["</body>", "</html>", ""]
    atomic_write_bytes(path, "\n".join(parts).encode("utf-8"))


def run_real_burst(
    folder: str | Path,
    methods: Sequence[str] = DEFAULT_BURST_METHODS,
    out_dir: str | Path = "reports/real",
    *,
    crop: int | None = None,
    limit: int | None = None,
    force: bool = False,
    progress: bool = True,
    command: str = "burstkpn bench real",
) -> dict:
    """``burstkpn bench real FOLDER``: the report of a static burst in ``out_dir`` (the
    first ``limit`` frames, a centred ``crop``); returns what results.json holds."""
    _check_crop(crop)
    refs = list_burst(folder, limit)
    out = prepare_output_dir(out_dir, force)
    frames, _ = load_frames(refs)
    name = Path(folder).resolve().name
    cases = [lambda: burst_case(frames, name, refs=refs, crop=crop)]
    result = evaluate_real(cases, methods, progress=progress)
    return write_real_reports(result, out, "burst", command, name)


def run_real_pairs(
    root: str | Path,
    methods: Sequence[str] = DEFAULT_PAIR_METHODS,
    out_dir: str | Path = "reports/real",
    *,
    crop: int | None = None,
    limit: int | None = None,
    force: bool = False,
    progress: bool = True,
    command: str = "burstkpn bench real --pairs",
) -> dict:
    """``burstkpn bench real --pairs DIR``: the report of noisy / mean pairs in ``out_dir``
    (the first ``limit``, centred ``crop``s); returns what results.json holds."""
    _check_crop(crop)
    loaders, layout = pair_loaders(root, crop=crop, limit=limit)
    out = prepare_output_dir(out_dir, force)
    result = evaluate_real(loaders, methods, progress=progress)
    source = f"{layout} pairs in {Path(root).name}"
    return write_real_reports(result, out, "pairs", command, source)


def _check_crop(crop: int | None) -> None:
    smallest = 2 * BURST_BORDER + 16
    if crop is not None and crop < smallest:
        raise InputError(f"--crop must be at least {smallest} px, got {crop}")
