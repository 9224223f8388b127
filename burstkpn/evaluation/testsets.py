"""The test items of the benches and the trainer's export: the selection of a burst, video or
restoration test set (:func:`select_entries`, :func:`select_windows`, :func:`restore_items`)
and the evaluation of methods on them (:func:`evaluate_bursts`, :func:`evaluate_windows`,
:func:`evaluate_pairs`), as the result dict the benches' reports read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from burstkpn.data.io.images import load_linear
from burstkpn.data.io.pairs import _image_files, detect_layout, find_pairs
from burstkpn.data.sampling import match_channels
from burstkpn.data.testsets.burst import TestSet
from burstkpn.data.testsets.deblur import DeblurTestSet, RestorePair
from burstkpn.data.testsets.video import VideoTestSet
from burstkpn.errors import InputError
from burstkpn.evaluation.methods import Method
from burstkpn.evaluation.scorer import Evaluation, evaluate
from burstkpn.inference.resolve import TASKS as RESTORE_TASKS


def select_entries(testset, limit: int | None) -> list[dict]:
    """All bursts of a :class:`~burstkpn.data.testsets.burst.TestSet`, or those of the first
    ``limit`` images (sorted by name), every level."""
    return select_windows(testset.manifest["bursts"], limit)


def select_windows(entries: list[dict], limit: int | None) -> list[dict]:
    """All entries (windows, bursts, pairs), or those of the first ``limit`` image names
    (sorted), every level."""
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
        loaders = [lambda e=e: ts.load(e) for e in select_windows(ts.entries, limit)]
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


# --------------------------------------------------------------------------- evaluations
def _evaluate_entries(
    testset: TestSet | VideoTestSet,
    entries: list[dict],
    methods: Mapping[str, Method],
    notes: Mapping[str, str] | None,
    examples: int,
    example_level: str,
    desc: str,
    unit: str,
    progress: bool,
) -> Evaluation:
    """``methods`` on the ``entries`` of ``testset`` (each loaded when its turn comes), keeping
    the outputs of the first ``examples`` images (by name) at ``example_level``."""
    shown_names = sorted({e["image"] for e in entries})[:examples]
    return evaluate(
        (testset.load(entry) for entry in entries),
        methods,
        notes=notes,
        keep=lambda item: item.level == example_level and item.image in shown_names,
        total=len(entries),
        desc=desc,
        unit=unit,
        progress=progress,
    )


def _shown(result: Evaluation, *, with_item: bool = False) -> list[dict]:
    """The example records of the reports: clean, noisy reference and every output (and the
    test item itself, ``with_item``)."""
    return [
        {
            "name": item.image,
            "level": item.level,
            "clean": item.clean[0],
            "noisy": item.noisy[0, 0],
            "outputs": {name: out[0] for name, out in outputs.items()},
            **({"item": item} if with_item else {}),
        }
        for item, outputs in result.kept
    ]


def _report(
    result: Evaluation, levels: list[str], count: int, examples: list | None = None, **extra: Any
) -> dict:
    """The result dict the benches read: ``rows``, ``notes``, ``examples`` (when given),
    ``levels``, ``methods``, ``bursts`` (the items evaluated: bursts, windows x levels or
    pairs) and ``extra``."""
    report: dict = {"rows": result.rows, "notes": result.notes}
    if examples is not None:
        report["examples"] = examples
    return {**report, "levels": levels, "methods": result.methods, "bursts": count, **extra}


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
    result = _evaluate_entries(
        testset, entries, methods, notes, examples, example_level, desc, "burst", progress
    )
    return _report(result, testset.levels, len(entries), examples=_shown(result, with_item=True))


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
    result = _evaluate_entries(
        testset, entries, methods, notes, examples, example_level, desc, "window", progress
    )
    windows = len({e["image"] for e in entries})
    return _report(result, testset.levels, len(entries), examples=_shown(result), windows=windows)


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
    return _report(result, levels, len(loaders), source=source)
