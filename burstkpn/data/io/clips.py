"""Clean video clips on disk (:func:`find_clips`): a folder of frame folders
(``vid4/<clip>/*.png``) or one frame folder; frames are sorted by name (numbers numerically).
Read by :class:`~burstkpn.data.datasets.SyntheticClipDataset` and the video test set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from burstkpn.data.io.images import READ_EXTENSIONS
from burstkpn.errors import InputError


@dataclass
class VideoClip:
    """A clean clip on disk: a name and its frame files in temporal order."""

    name: str
    frames: list[str]


def _natural_key(path: Path) -> list:
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", path.name)]


def _frame_files(folder: Path) -> list[str]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in READ_EXTENSIONS]
    return [str(p) for p in sorted(files, key=_natural_key)]


def find_clips(root: str | os.PathLike, min_frames: int = 5) -> list[VideoClip]:
    """The clips under ``root``: every folder (``root`` itself or below it) holding at least
    ``min_frames`` image files directly, frames sorted by name (numbers numerically). One-line
    error when there is none."""
    path = Path(root)
    if not path.is_dir():
        raise InputError(f"'{root}' is not a folder of video clips (frame folders)")
    folders = [path, *sorted(p for p in path.rglob("*") if p.is_dir())]
    clips = []
    for folder in folders:
        frames = _frame_files(folder)
        if len(frames) >= min_frames:
            name = folder.relative_to(path).as_posix() if folder != path else folder.name
            clips.append(VideoClip(name.replace("/", "_"), frames))
    if not clips:
        raise InputError(f"no folder under '{root}' holds {min_frames} or more frames")
    return clips


def is_clip_folder(source: str | os.PathLike | None, min_frames: int = 5) -> bool:
    """Whether ``source`` looks like a folder of frame folders: a folder with no images of its
    own and at least one sub-folder of ``min_frames`` or more frames."""
    if source is None or not Path(source).is_dir():
        return False
    if _frame_files(Path(source)):
        return False
    try:
        return bool(find_clips(source, min_frames))
    except InputError:
        return False
