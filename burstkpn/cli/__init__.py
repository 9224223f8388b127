"""The ``burstkpn`` command line.

Every subcommand prints a one-line error and exits with status 2 on bad input, shows a progress
bar for long work, writes outputs atomically and never writes over an input or, without
``--force``, into a non-empty output folder.

A thin layer: one module per command group (:mod:`.data`: synth, make-testset; :mod:`.train`;
:mod:`.denoise`: denoise, deblur, demo; :mod:`.export`: export-onnx, export-weights;
:mod:`.bench`), each with ``add_parser(subparsers)`` and its ``cmd_*`` functions, which check
arguments, call the library (the file-to-file jobs are in :mod:`burstkpn.jobs`) and print.
Building the parser imports neither torch nor numpy, so ``burstkpn --help`` stays fast: the
``cmd_*`` functions (and :func:`main`, for the thread count) import the library when they run,
the one place in the package where imports belong inside functions.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings

from burstkpn import __version__
from burstkpn.cli import bench, data, denoise, export, train
from burstkpn.errors import BurstkpnWarning, InputError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="burstkpn", description="Denoise photo bursts, videos and images with learned kernels."
    )
    parser.add_argument("--version", action="version", version=f"burstkpn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (data, train, denoise, export, bench):  # in the order of --help
        group.add_parser(sub)
    return parser


class _Terminated(BaseException):
    """SIGTERM, raised where the process is, so that cleanup (temporary files) runs."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM becomes an exception, so that temporary files are removed on the way out (train,
    # whose checkpoints and DDP launchers rely on the default, is left as it is)
    catch_term = args.command != "train" and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if catch_term else None
    if args.command != "train":  # train sets its own (--threads)
        from burstkpn.runtime import fit_threads_to_affinity

        fit_threads_to_affinity()
    try:
        with warnings.catch_warnings():
            _one_line_warnings(args.command)
            return args.func(args)
    except InputError as exc:
        print(f"burstkpn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"burstkpn {args.command}: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"burstkpn {args.command}: terminated", file=sys.stderr)
        return 143
    finally:
        if catch_term:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _one_line_warnings(command: str) -> None:
    """Show burstkpn's own warnings as ``burstkpn CMD: warning: ...`` lines (every time);
    other warnings as Python shows them."""
    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, BurstkpnWarning):
            print(f"burstkpn {command}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.simplefilter("always", BurstkpnWarning)
    warnings.showwarning = showwarning
