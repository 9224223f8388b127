"""Small file helpers: atomic writes, exclusive publishing, checksums and output checks.

Every output is written to a hidden temporary file beside it (``.NAME.XXXX.ext``, which image
listing skips) and then published: with ``overwrite`` by :func:`os.replace`, otherwise by
:func:`os.link`, which fails when the name exists, so two runs writing the same output cannot
silently overwrite each other. Temporary files are removed on every exit Python sees (errors,
Ctrl-C, and SIGTERM once the command line turned it into an exception); only a SIGKILL can leave
one behind, and a later run ignores it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

from burstkpn.errors import InputError, OutputExistsError


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_file_mode() -> int:
    """0o666 minus the umask: the mode a plainly created file gets (mkstemp uses 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path`` and publish it there (see
    :func:`publish`; ``overwrite=False`` refuses an existing ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        publish(tmp, path, overwrite=overwrite)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def publish(tmp: str | os.PathLike, path: str | os.PathLike, *, overwrite: bool) -> None:
    """Give the finished temporary file ``tmp`` (same folder) its final name ``path`` and the
    mode of a plainly created file. ``overwrite``: replace ``path`` atomically; otherwise create
    it exclusively (a hard link, which fails when ``path`` exists; on file systems without hard
    links an ``O_EXCL`` reservation of the name), so a file written meanwhile by another run is
    never replaced. ``tmp`` is gone afterwards unless an error was raised."""
    os.chmod(tmp, default_file_mode())
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        try:
            os.link(tmp, path)
        except OSError as exc:
            if isinstance(exc, FileExistsError) or not _no_hard_links(exc):
                raise
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, default_file_mode()))
            os.replace(tmp, path)  # the name is ours now
            return
    except FileExistsError:
        raise OutputExistsError(
            f"output '{path}' exists (written meanwhile by another run?); use --force to "
            "overwrite it"
        ) from None
    os.unlink(tmp)


def _no_hard_links(exc: OSError) -> bool:
    return exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK)


def check_writable(path: str | os.PathLike) -> None:
    """Refuse, before any work, an output ``path`` that cannot be written: its nearest existing
    folder must exist as a folder and take a new file (tried with a hidden probe file, which
    also catches read-only mounts, immutable folders and root on them)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"output '{path}' is a folder; give a file name")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot write '{path}': '{parent}' is not a folder")
    probe_folder(parent, path)


def probe_folder(folder: Path, shown: str | os.PathLike) -> None:
    """Create and remove a hidden file in ``folder``; a one-line error naming ``shown`` when
    that fails."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".burstkpn-probe.", dir=folder)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"cannot write '{shown}': {reason} in '{folder}'") from None
    os.close(fd)
    os.unlink(probe)


def prepare_output_dir(out: str | os.PathLike, force: bool) -> Path:
    """Create ``out``; refuse a non-empty folder unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output '{out}' exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise InputError(f"output folder '{out}' is not empty (use --force to write into it)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_folder_writable(folder: str | os.PathLike) -> None:
    """Refuse, before any work, an output folder that cannot take new files (the folder, or
    its nearest existing parent when it does not exist yet)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output '{folder}' exists and is not a folder")
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"cannot write '{folder}': '{existing}' is not a folder")
    probe_folder(existing, folder)
