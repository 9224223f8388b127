"""Clip folders on disk (``burstkpn.data.io.clips``)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from burstkpn.data.io.clips import find_clips, is_clip_folder
from burstkpn.errors import InputError


def make_clip_folder(root: Path, frames: int = 7, size: tuple[int, int] = (40, 48)) -> Path:
    """Two clips whose frame k is a flat 8-bit image of value 20 (k + 1) (+ 1 in clip b), so a
    frame's value tells which frame it is."""
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for k in range(frames):
            img = np.full((*size, 3), 20 * (k + 1) + c, dtype=np.uint8)
            iio.imwrite(root / name / f"frame_{k + 1:03d}.png", img)
    return root


def test_find_clips(tmp_path, photo_folder):
    root = make_clip_folder(tmp_path / "clips")
    clips = find_clips(root)
    assert [c.name for c in clips] == ["a", "b"] and len(clips[0].frames) == 7
    assert Path(clips[0].frames[0]).name == "frame_001.png"
    assert [c.name for c in find_clips(root / "a")] == ["a"]  # one frame folder
    assert is_clip_folder(root) and not is_clip_folder(photo_folder)
    assert not is_clip_folder(root / "a") and not is_clip_folder(None)
    with pytest.raises(InputError, match="8 or more frames"):
        find_clips(root, 8)
    with pytest.raises(InputError, match="not a folder"):
        find_clips(tmp_path / "nope")


def test_vid4_clips(shared_data):
    vid4 = shared_data / "video" / "vid4"
    if not vid4.is_dir():
        pytest.skip("vid4 not available")
    clips = find_clips(vid4)
    assert {c.name for c in clips} >= {"city", "walk"}
    assert is_clip_folder(vid4)
