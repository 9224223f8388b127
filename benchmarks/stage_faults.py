"""Minor page faults and system time of every profiled stage of a ``burstkpn`` command.

    python benchmarks/stage_faults.py denoise /tmp/burst12mp --model ame_kpn -o out.png \
        --profile p.json --quiet --force

Runs the command in this process with :meth:`burstkpn.profiling.Profile.stage` wrapped so that
each stage also adds up the process's ``ru_minflt`` and ``ru_stime`` (``getrusage``) while it
runs; prints the process totals and one line per stage (``parent/stage faults system_s``).
Stages are only recorded with ``--profile``. Where the faults go shows which buffers are fresh
memory (docs/speed/profile.md, "One arena for the staged buffers").
"""

from __future__ import annotations

import contextlib
import resource
import sys

import burstkpn.profiling as profiling
from burstkpn.cli import main as cli_main

COUNTS: dict[tuple[str, ...], list] = {}
_stage = profiling.Profile.stage


@contextlib.contextmanager
def _counted(self: profiling.Profile, name: str):
    key = (*self._path, name)
    before = resource.getrusage(resource.RUSAGE_SELF)
    with _stage(self, name):
        yield
    after = resource.getrusage(resource.RUSAGE_SELF)
    faults, system = COUNTS.setdefault(key, [0, 0.0])
    COUNTS[key] = [
        faults + after.ru_minflt - before.ru_minflt,
        system + after.ru_stime - before.ru_stime,
    ]


def main() -> int:
    profiling.Profile.stage = _counted
    rc = cli_main(sys.argv[1:])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"total minor faults {usage.ru_minflt}, system {usage.ru_stime:.1f} s", end="")
    print(f", user {usage.ru_utime:.1f} s")
    for key, (faults, system) in COUNTS.items():
        print(f"{'/'.join(key)} {faults} {system:.2f}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
