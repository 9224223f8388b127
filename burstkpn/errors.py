"""Error types. Anything the user can fix (bad files, bad options) raises :class:`InputError`;
the command line prints its message as one line and exits with status 2."""

from __future__ import annotations


class InputError(ValueError):
    """A problem with the user's input or request, explained in one line."""


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class OutputExistsError(InputError, FileExistsError):
    """An output that may only be created (no ``--force``) exists, or appeared meanwhile."""


class BurstkpnWarning(UserWarning):
    """Something the user should know, where the work still goes on (the command line prints
    it as one line)."""
