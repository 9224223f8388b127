"""The one evaluation of ``bench quality`` and ``bench video``: the selected items of a burst
test set (:class:`~burstkpn.data.testsets.burst.TestSet`) or a video test set
(:class:`~burstkpn.data.testsets.video.VideoTestSet`), scored by every method through
:func:`burstkpn.evaluation.evaluate_bursts` / :func:`~burstkpn.evaluation.evaluate_windows`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from burstkpn.data.testsets.burst import TestSet
from burstkpn.data.testsets.video import VideoTestSet
from burstkpn.errors import InputError
from burstkpn.evaluation import (
    Method,
    evaluate_bursts,
    evaluate_windows,
    select_entries,
    select_windows,
)

# the selected entries -> (available methods, a note for every name)
Resolver = Callable[[list[dict]], tuple[dict[str, Method], dict[str, str]]]


def evaluate_testset(
    testset: TestSet | VideoTestSet,
    resolve: Resolver,
    *,
    limit: int | None = None,
    progress: bool = True,
    **examples: Any,
) -> dict:
    """Every method ``resolve`` gives for the selected entries (the first ``limit`` images or
    windows, every level) on each of them; the result of
    :func:`~burstkpn.evaluation.evaluate_bursts` (``rows``, ``notes``, ``examples``,
    ``levels``, ``methods``, ``bursts``; ``windows`` too for a video test set). ``examples``:
    its ``examples`` / ``example_level`` (the test set kind's defaults otherwise). A test set
    without entries is refused before any method is resolved."""
    video = isinstance(testset, VideoTestSet)
    entries = select_windows(testset.entries, limit) if video else select_entries(testset, limit)
    if not entries:
        what = "windows" if video else "bursts"
        raise InputError(f"test set '{testset.root}' has no {what}")
    methods, notes = resolve(entries)
    evaluate = evaluate_windows if video else evaluate_bursts
    return evaluate(testset, methods, notes=notes, limit=limit, progress=progress, **examples)
