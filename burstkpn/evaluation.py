"""The one evaluation loop: methods x test items -> one row per item and method (PSNR, SSIM,
seconds, megapixels), and the per-level summary of those rows.

``bench quality``, ``bench video`` (and its motion sweep), ``bench restore``, ``bench real``,
``bench ablation`` and the card evaluation of ``burstkpn export-weights``
(:mod:`burstkpn.train.export`) all score through :class:`Scorer` / :func:`evaluate`; it lives
outside :mod:`burstkpn.bench` so that training never imports the benches.

A *method* is a callable from a test item to the restored reference ``(1, C, H, W)`` (linear
light unless the scoring says otherwise). An *item* has ``image`` and ``level`` (the row's
labels), ``clean`` (the ground truth) and whatever its methods read: a
:class:`~burstkpn.data.testsets.burst.TestBurst` (``noisy``, ``noise_map``, ``sigma_r``,
``sigma_s``, ``offsets``), a :class:`~burstkpn.data.testsets.video.TestWindow`, a
:class:`~burstkpn.data.testsets.deblur.RestorePair` (``degraded``). Scores are
:func:`burstkpn.metrics.psnr` / :func:`~burstkpn.metrics.ssim` per item (gamma-corrected,
clipped, 8-pixel border), averaged per level by :func:`summarize`.

Model methods (:func:`model_method`, :func:`model_restore_method`) run through the one runner
(:class:`~burstkpn.inference.Runner`); :func:`reference` / :func:`degraded` are the input as it
is, the anchor every table shows. The test-item sources shared by the benches and the trainer's
export are here too (:func:`select_entries`, :func:`select_windows`, :func:`restore_items`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from burstkpn.data.io.images import load_linear
from burstkpn.data.io.pairs import _image_files, detect_layout, find_pairs
from burstkpn.data.sampling import match_channels
from burstkpn.data.testsets.burst import TestSet
from burstkpn.data.testsets.deblur import DeblurTestSet, RestorePair
from burstkpn.data.testsets.video import VideoTestSet
from burstkpn.errors import InputError
from burstkpn.inference import DEFAULT_TILE, Runner, runner_for
from burstkpn.inference.resolve import TASKS as RESTORE_TASKS
from burstkpn.metrics import BORDER, DARK_REACH, dark_bias, psnr, ssim
from burstkpn.restoration import restore_image

Method = Callable[[Any], torch.Tensor]


# --------------------------------------------------------------------------- methods
def reference(item) -> torch.Tensor:
    """The noisy reference frame as it is (a burst's first frame, a window's centre)."""
    return item.noisy[:, 0].float()


def degraded(pair: RestorePair) -> torch.Tensor:
    """The degraded image of a restoration pair as it is."""
    return pair.degraded.float()


def model_method(
    model: torch.nn.Module | Runner, precision: str = "auto", tile: int = DEFAULT_TILE
) -> Method:
    """A model as a method, through the one runner (:class:`~burstkpn.inference.Runner`:
    channels_last, bfloat16 autocast where native, tiled above ``tile`` px). The item's frames
    are fitted to what the model reads (:meth:`Runner.frames_for`): single-image models get
    the reference, burst models their burst length (cyclic repeats of a shorter window), clip
    models exactly their window."""
    runner = runner_for(model, precision=precision)

    def run(item) -> torch.Tensor:
        return runner(runner.frames_for(item.noisy), item.noise_map, tile=tile)

    run.model = runner.model  # type: ignore[attr-defined]
    return run


def model_restore_method(model: torch.nn.Module, tile: int = DEFAULT_TILE) -> Method:
    """A single-image model as a restoration method (:func:`~burstkpn.restoration.
    restore_image` on the pair's degraded image, tiled above ``tile`` px)."""
    runner = runner_for(model)
    if runner.traits.kind != "single":
        raise InputError("bench restore takes single-image models; this is a burst model")

    def run(pair: RestorePair) -> torch.Tensor:
        return restore_image(pair.degraded[0], runner, linear=True, tile=tile)[None]

    run.model = runner.model  # type: ignore[attr-defined]
    return run


# --------------------------------------------------------------------------- test items
def select_entries(testset, limit: int | None) -> list[dict]:
    """All bursts of a :class:`~burstkpn.data.testsets.burst.TestSet`, or those of the first
    ``limit`` images (sorted by name), every level."""
    entries = testset.manifest["bursts"]
    if limit is None:
        return entries
    names = sorted({e["image"] for e in entries})[:limit]
    return [e for e in entries if e["image"] in set(names)]


def select_windows(entries: list[dict], limit: int | None) -> list[dict]:
    """All windows, or those of the first ``limit`` window names (sorted), every level."""
    if limit is None:
        return entries
    names = set(sorted({e["image"] for e in entries})[:limit])
    return [e for e in entries if e["image"] in names]


def restore_items(
    task: str,
    *,
    testset: str | Path | None = None,
    pairs: str | Path | None = None,
    limit: int | None = None,
) -> tuple[list[Callable[[], RestorePair]], list[str], str]:
    """Loaders of the selected restoration pairs (a deblur test set, or real pairs in PolyU /
    SIDD / GoPro layout; the first ``limit`` images by name, every level), the levels, and a
    description of the source."""
    if task not in RESTORE_TASKS:
        raise InputError(f"unknown task '{task}' (use one of {', '.join(RESTORE_TASKS)})")
    if (testset is None) == (pairs is None):
        raise InputError("give either --testset DIR or --pairs DIR")
    if testset is not None:
        ts = DeblurTestSet(testset)
        names = sorted({e["image"] for e in ts.entries})[:limit]
        entries = [e for e in ts.entries if e["image"] in set(names)]
        loaders = [lambda e=e: ts.load(e) for e in entries]
        seed = ts.manifest["generator"]["seed"]
        return loaders, ts.levels, f"deblur test set {testset} (seed {seed})"
    root = Path(pairs)
    found = find_pairs(root)
    layout = detect_layout(_image_files(root))
    found = found[:limit] if limit is not None else found

    def load(a: Path, b: Path) -> RestorePair:
        return RestorePair(
            image=str(a.relative_to(root).with_suffix("")),
            level=layout,
            degraded=match_channels(load_linear(a), 3)[None],
            clean=match_channels(load_linear(b), 3)[None],
        )

    return [lambda a=a, b=b: load(a, b) for a, b in found], [layout], f"{layout} pairs in {pairs}"


# --------------------------------------------------------------------------- the loop
def item_label(item) -> tuple[str, str, torch.Tensor]:
    """``(image, level, clean)`` of a test item: the row's labels and its ground truth."""
    return item.image, item.level, item.clean


def _dark(out: torch.Tensor, clean: torch.Tensor, linear: bool, border: int) -> dict:
    """The row's shadow brightness (:func:`~burstkpn.metrics.dark_bias`): mean signed sRGB error
    over the clean values below 0.15 (``None`` without any) and their count (for pooling), and
    the same inside dark regions (``dark_region_*``: dark within 7 px)."""
    row = {}
    for key, reach in (("dark", 0), ("dark_region", DARK_REACH)):
        bias, count = dark_bias(out, clean, reach=reach, linear=linear, border=border)
        n = int(count[0])
        row[f"{key}_bias"] = float(bias[0]) if n else None
        row[f"{key}_count"] = n
    return row


@dataclass
class Scorer:
    """Runs ``methods`` on test items, one at a time (:meth:`run`), and collects a row per item
    and method in :attr:`rows`. ``label``: ``(image, level, ground truth)`` of an item;
    ``linear`` / ``border``: how :func:`~burstkpn.metrics.psnr` and ``ssim`` read the images
    (``border`` may be a function of the item); ``refused``: exception types on which a method
    is dropped for the rest of the evaluation (its rows removed, the reason in its note)
    instead of stopping it."""

    methods: dict[str, Method]
    notes: dict[str, str] = field(default_factory=dict)
    label: Callable[[Any], tuple[str, str, torch.Tensor]] = item_label
    linear: bool = True
    border: int | Callable[[Any], int] = BORDER
    refused: tuple[type[BaseException], ...] = ()
    rows: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.methods = dict(self.methods)
        for name in self.methods:
            self.notes.setdefault(name, "")

    def run(
        self,
        item,
        outputs: dict[str, torch.Tensor] | None = None,
        *,
        before: Callable[[str], None] | None = None,
        after: Callable[[str, torch.Tensor | None, dict | None], None] | None = None,
    ) -> list[dict]:
        """Every method on ``item``, each timed and scored; returns (and adds to :attr:`rows`)
        the item's rows. ``outputs``: a dict that receives the outputs by method name;
        ``before(name)`` / ``after(name, output, row)`` around each method (``after`` gets
        ``None`` twice for a refused method)."""
        image, level, clean = self.label(item)
        border = self.border(item) if callable(self.border) else self.border
        megapixels = clean.shape[-2] * clean.shape[-1] / 1e6
        rows = []
        for name, fn in list(self.methods.items()):
            if before is not None:
                before(name)
            t0 = time.perf_counter()
            try:
                out = fn(item).float()
            except self.refused as exc:
                self.drop(name, f"skipped: {exc}")
                if after is not None:
                    after(name, None, None)
                continue
            seconds = time.perf_counter() - t0
            row = {
                "method": name,
                "image": image,
                "level": level,
                "psnr": float(psnr(out, clean, linear=self.linear, border=border)[0]),
                "ssim": float(ssim(out, clean, linear=self.linear, border=border)[0]),
                **_dark(out, clean, self.linear, border),
                "seconds": seconds,
                "megapixels": megapixels,
            }
            rows.append(row)
            self.rows.append(row)
            if outputs is not None:
                outputs[name] = out
            if after is not None:
                after(name, out, row)
        return rows

    def drop(self, name: str, note: str) -> None:
        """Stop running ``name``: its rows go, ``note`` says why (printed)."""
        self.notes[name] = note
        print(f"bench: {name} {note}")
        del self.methods[name]
        self.rows = [r for r in self.rows if r["method"] != name]


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: the rows, the methods that ran (in order), every
    method's note, and the outputs of the items ``keep`` chose (``(item, {method: output})``)."""

    rows: list[dict]
    methods: list[str]
    notes: dict[str, str]
    kept: list[tuple[Any, dict[str, torch.Tensor]]]


def evaluate(
    items: Iterable,
    methods: Mapping[str, Method],
    *,
    notes: Mapping[str, str] | None = None,
    keep: Callable[[Any], bool] | None = None,
    total: int | None = None,
    desc: str = "evaluate",
    unit: str = "item",
    progress: bool = True,
    leave: bool = True,
) -> Evaluation:
    """Every method on every item (``items`` may be lazy: each is loaded, scored by every
    method and let go), with a progress bar of ``total`` items."""
    scorer = Scorer(dict(methods), dict(notes or {}))
    kept = []
    bar = tqdm(items, total=total, desc=desc, unit=unit, disable=not progress, leave=leave)
    for item in bar:
        outputs = {} if keep is not None and keep(item) else None
        scorer.run(item, outputs)
        if outputs is not None:
            kept.append((item, outputs))
    return Evaluation(scorer.rows, list(scorer.methods), scorer.notes, kept)


# --------------------------------------------------------------------------- test sets
def _shown(kept: list[tuple[Any, dict[str, torch.Tensor]]]) -> list[dict]:
    """The example records of the reports: clean, noisy reference and every output."""
    return [
        {
            "name": item.image,
            "level": item.level,
            "clean": item.clean[0],
            "noisy": item.noisy[0, 0],
            "outputs": {name: out[0] for name, out in outputs.items()},
        }
        for item, outputs in kept
    ]


def evaluate_bursts(
    testset: str | Path | TestSet,
    methods: Mapping[str, Method],
    *,
    notes: Mapping[str, str] | None = None,
    limit: int | None = None,
    examples: int = 3,
    example_level: str = "gain3",
    desc: str = "bench quality",
    progress: bool = True,
) -> dict:
    """``methods`` on the bursts of a ``make-testset`` test set (``limit``:
    :func:`select_entries`). Returns ``{"rows", "notes", "examples", "levels", "methods",
    "bursts"}``; the examples are the first ``examples`` images at ``example_level`` (the
    noisiest level present when that one is not)."""
    testset = testset if isinstance(testset, TestSet) else TestSet(testset)
    entries = select_entries(testset, limit)
    if not entries:
        raise InputError(f"test set '{testset.root}' has no bursts")
    levels_present = list(dict.fromkeys(e["level"] for e in entries))
    if example_level not in levels_present:  # e.g. a Low / High test set: its noisiest level
        example_level = levels_present[-1]
    shown_names = sorted({e["image"] for e in entries})[:examples]
    result = evaluate(
        (testset.load(entry) for entry in entries),
        methods,
        notes=notes,
        keep=lambda item: item.level == example_level and item.image in shown_names,
        total=len(entries),
        desc=desc,
        unit="burst",
        progress=progress,
    )
    return {
        "rows": result.rows,
        "notes": result.notes,
        "examples": [
            {**shown, "item": item}
            for shown, (item, _) in zip(_shown(result.kept), result.kept, strict=True)
        ],
        "levels": testset.levels,
        "methods": result.methods,
        "bursts": len(entries),
    }


def evaluate_windows(
    testset: str | Path | VideoTestSet,
    methods: Mapping[str, Method],
    *,
    notes: Mapping[str, str] | None = None,
    limit: int | None = None,
    examples: int = 2,
    example_level: str = "high",
    desc: str = "bench video",
    progress: bool = True,
) -> dict:
    """``methods`` on the windows of a video test set (``limit``: :func:`select_windows`);
    the result of :func:`evaluate_bursts` plus ``windows`` (``bursts`` counts windows x
    levels)."""
    testset = testset if isinstance(testset, VideoTestSet) else VideoTestSet(testset)
    entries = select_windows(testset.entries, limit)
    if not entries:
        raise InputError(f"test set '{testset.root}' has no windows")
    shown_names = sorted({e["image"] for e in entries})[:examples]
    result = evaluate(
        (testset.load(entry) for entry in entries),
        methods,
        notes=notes,
        keep=lambda item: item.level == example_level and item.image in shown_names,
        total=len(entries),
        desc=desc,
        unit="window",
        progress=progress,
    )
    return {
        "rows": result.rows,
        "notes": result.notes,
        "examples": _shown(result.kept),
        "levels": testset.levels,
        "methods": result.methods,
        "bursts": len(entries),  # windows x levels
        "windows": len({e["image"] for e in entries}),
    }


def evaluate_pairs(
    items: tuple[list[Callable[[], RestorePair]], list[str], str],
    methods: Mapping[str, Method],
    *,
    task: str,
    notes: Mapping[str, str] | None = None,
    progress: bool = True,
) -> dict:
    """``methods`` on restoration pairs (``items``: what :func:`restore_items` returns):
    ``{"rows", "notes", "levels", "methods", "bursts", "source"}`` (``bursts`` counts
    pairs)."""
    loaders, levels, source = items
    if not loaders:
        raise InputError("no pairs to evaluate")
    result = evaluate(
        (load() for load in loaders),
        methods,
        notes=notes,
        total=len(loaders),
        desc=f"bench restore {task}",
        unit="image",
        progress=progress,
    )
    return {
        "rows": result.rows,
        "notes": result.notes,
        "levels": levels,
        "methods": result.methods,
        "bursts": len(loaders),
        "source": source,
    }


# --------------------------------------------------------------------------- summaries
def mean(values: Iterable[float]) -> float | None:
    """The mean of ``values`` in their order (``None`` for none)."""
    values = list(values)
    return sum(values) / len(values) if values else None


def pooled_dark_bias(rows: list[dict], key: str = "dark") -> float | None:
    """The shadow bias (``key``: ``dark`` or ``dark_region``) of several rows pooled over their
    dark values (``None`` where the rows have none, or come from a report written before the
    rows had it)."""
    count = sum(r.get(f"{key}_count", 0) for r in rows)
    if not count:
        return None
    total = sum(r[f"{key}_bias"] * r[f"{key}_count"] for r in rows if r.get(f"{key}_count"))
    return total / count


def summarize(result: dict) -> dict:
    """Mean PSNR / SSIM per method and level, and seconds per megapixel per method, of a
    result with ``rows``, ``methods``, ``levels`` and ``notes``."""
    table_rows = []
    for name in result["methods"]:
        mine = [r for r in result["rows"] if r["method"] == name]
        row = {
            "method": name,
            "psnr": {},
            "ssim": {},
            "dark_bias": {},
            "dark_region_bias": {},
            "note": result["notes"].get(name, ""),
        }
        for level in result["levels"]:
            at = [r for r in mine if r["level"] == level]
            row["psnr"][level] = mean(r["psnr"] for r in at)
            row["ssim"][level] = mean(r["ssim"] for r in at)
            row["dark_bias"][level] = pooled_dark_bias(at)
            row["dark_region_bias"][level] = pooled_dark_bias(at, "dark_region")
        total_mp = sum(r["megapixels"] for r in mine)
        row["sec_per_mp"] = sum(r["seconds"] for r in mine) / total_mp if total_mp else None
        table_rows.append(row)
    skipped = [m for m, note in result["notes"].items() if note.startswith("skipped")]
    return {"levels": result["levels"], "rows": table_rows, "skipped": skipped}
