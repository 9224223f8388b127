"""Stage-by-stage wall time and memory of one run (``burstkpn denoise --profile``).

A :class:`Profile` is made active for a block with :func:`profiling`; code anywhere below it
marks its stages with ``with stage("shift estimation"):``. The active profile lives in a
:class:`contextvars.ContextVar`, so nothing leaks between calls or threads, and without an
active profile :func:`stage` returns a shared no-op context (one variable lookup).

Each stage records its wall time and, when it ends, the process's peak resident memory
(``ru_maxrss``, a high-water mark since the process started) and its current resident memory
(``/proc/self/statm`` on Linux). A stage entered many times (one per tile) is one row with its
count, total and mean. Stages nest: a stage entered inside another is its child, so the
top-level rows add up to the profiled block.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

_ACTIVE: contextvars.ContextVar[Profile | None] = contextvars.ContextVar(
    "burstkpn_profile", default=None
)
_NOOP = contextlib.nullcontext()


def peak_rss_mib() -> float:
    """The process's peak resident memory so far, MiB (``ru_maxrss``: KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def current_rss_mib() -> float | None:
    """The process's resident memory now, MiB (Linux ``/proc/self/statm``; else ``None``)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class StageRecord:
    """One stage: ``name``, the ``parents`` it ran inside, how often it ran, its total
    seconds, and the peak / current resident memory (MiB) when it last ended."""

    name: str
    parents: tuple[str, ...] = ()
    count: int = 0
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    rss_mib: float | None = None

    @property
    def depth(self) -> int:
        return len(self.parents)

    @property
    def mean(self) -> float:
        return self.seconds / max(self.count, 1)


@dataclass
class Profile:
    """The stages of one profiled block, in the order they were first entered."""

    stages: dict[tuple[str, ...], StageRecord] = field(default_factory=dict)
    total: float = 0.0
    _path: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        key = (*self._path, name)
        record = self.stages.get(key)
        if record is None:
            record = self.stages[key] = StageRecord(name, tuple(self._path))
        self._path.append(name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            record.seconds += time.perf_counter() - t0
            record.count += 1
            record.peak_rss_mib = peak_rss_mib()
            record.rss_mib = current_rss_mib()
            self._path.pop()

    def top_level_seconds(self) -> float:
        return sum(r.seconds for r in self.stages.values() if r.depth == 0)

    def to_dict(self) -> dict:
        return {
            "total_s": self.total,
            "stages_s": self.top_level_seconds(),
            "peak_rss_mib": peak_rss_mib(),
            "stages": [
                {
                    "stage": r.name,
                    "parents": list(r.parents),
                    "count": r.count,
                    "seconds": r.seconds,
                    "mean_s": r.mean,
                    "peak_rss_mib": r.peak_rss_mib,
                    "rss_mib": r.rss_mib,
                }
                for r in self.stages.values()
            ],
        }

    def table(self) -> str:
        """A markdown table: nested stages indented under their parent."""
        rows = [
            "| stage | count | total s | mean s | % | peak RSS MiB | RSS MiB |",
            "|---|--:|--:|--:|--:|--:|--:|",
        ]
        total = self.total or self.top_level_seconds() or 1.0
        for r in self.stages.values():
            label = "&nbsp;&nbsp;" * r.depth + r.name
            rss = "" if r.rss_mib is None else f"{r.rss_mib:.0f}"
            rows.append(
                f"| {label} | {r.count} | {r.seconds:.3f} | {r.mean:.4f} | "
                f"{100 * r.seconds / total:.1f} | {r.peak_rss_mib:.0f} | {rss} |"
            )
        rows.append(
            f"| **total** | | {self.total:.3f} | | 100.0 | {peak_rss_mib():.0f} | "
            f"{current_rss_mib() or 0:.0f} |"
        )
        return "\n".join(rows)

    def write_json(self, path: str | os.PathLike, **extra) -> None:
        with open(path, "w") as f:
            json.dump({**extra, **self.to_dict()}, f, indent=1)
            f.write("\n")


@contextlib.contextmanager
def profiling(profile: Profile | None = None) -> Iterator[Profile]:
    """Make ``profile`` (a new one by default) active for the block and time the whole block
    into its ``total``."""
    profile = Profile() if profile is None else profile
    token = _ACTIVE.set(profile)
    t0 = time.perf_counter()
    try:
        yield profile
    finally:
        profile.total += time.perf_counter() - t0
        _ACTIVE.reset(token)


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """No profile is active inside the block (work that is not part of the run, such as a dry
    run that plans memory, stays out of the stage rows)."""
    token = _ACTIVE.set(None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active() -> Profile | None:
    """The profile active in this context, if any."""
    return _ACTIVE.get()


def stage(name: str) -> contextlib.AbstractContextManager:
    """Time a stage into the active profile; a shared no-op when none is active."""
    profile = _ACTIVE.get()
    return _NOOP if profile is None else profile.stage(name)
