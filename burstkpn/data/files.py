"""Small file helpers: atomic writes, checksums and output-folder checks."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from burstkpn.errors import InputError


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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def prepare_output_dir(out: str | os.PathLike, force: bool) -> Path:
    """Create ``out``; refuse a non-empty folder unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output '{out}' exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise InputError(f"output folder '{out}' is not empty (use --force to write into it)")
    out.mkdir(parents=True, exist_ok=True)
    return out
