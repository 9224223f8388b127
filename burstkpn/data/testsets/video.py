"""The video benchmark test set (``burstkpn make-testset --task video``): seeded noisy windows of
``2 tau + 1`` frames at the paper's Low / High levels ([DeformKernels] Tables 2-3), from
clean clips (a folder of frame folders, e.g. vid4) or from photos with synthetic motion.

Layout::

    manifest.json                 generation parameters, one entry per window (with sha256)
    windows/<name>_<level>.npz

Each ``.npz`` holds ``noisy_u16`` ``(F, C, H, W)`` (the uint16 codes of
:mod:`burstkpn.data.testsets.manifest`) in burst order, the centre frame first (``[X_0, X_-2,
X_-1, X_1, X_2]``, the order ``deform3d`` takes), ``clean`` ``(C, H, W)`` the clean centre frame
(linear light, float32), ``time`` ``(F,)`` each frame's time relative to the centre, ``motion``
``(F, 2)`` the true displacements ``(dy, dx)`` in pixels of a synthetic window (frame t at pixel
p shows the centre frame's scene at ``p + motion[t]``; NaN for real clips), ``sigma_r`` and
``sigma_s``.

Windows. Clips: consecutive, non-overlapping windows from the start of every clip (the paper's
test sequences do not overlap), at most ``windows`` per clip, named ``<clip>_<centre frame>``;
a ``patch_size`` crop (0: whole frames). Photos: one window per photo with a motion trajectory
drawn by :func:`burstkpn.data.degrade.video.sample_trajectory`. Crop and motion are seeded by
the set's seed and the window's name and shared by all levels (the Low / High columns compare the
same scenes); the noise has its own seed per level. Byte-reproducible like the burst test set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from burstkpn.data.degrade.noise import NoiseLevel, add_noise, parse_noise
from burstkpn.data.degrade.video import (
    DEFAULT_CLIP_MOTION,
    ClipMotion,
    burst_order,
    synthesize_clip,
)
from burstkpn.data.io.clips import find_clips, is_clip_folder
from burstkpn.data.io.images import (
    image_to_tensor,
    list_images,
    load_linear,
    read_image,
    srgb_to_linear,
)
from burstkpn.data.sampling import match_channels
from burstkpn.data.testsets.manifest import (
    ManifestTestSet,
    ManifestWriter,
    TestSample,
    level_records,
    sample_npz,
    seeded_generator,
    unique_name,
)
from burstkpn.errors import InputError

FORMAT = "burstkpn-video-testset"
DEFAULT_VIDEO_LEVELS = ("low", "high")
LAYOUTS = ("auto", "clips", "photos")


@dataclass
class _CleanWindow:
    name: str
    source: str
    clip: torch.Tensor  # (F, C, H, W) temporal order, linear light
    frames: list[int] | None  # source frame indices (clips)
    motion: torch.Tensor  # (F, 2) temporal order; NaN for clips
    top: int
    left: int


def _crop_position(h: int, w: int, patch: int, g: torch.Generator) -> tuple[int, int, int]:
    if patch <= 0:
        return 0, 0, 0
    if min(h, w) < patch:
        raise InputError(f"frames of {w}x{h} px are smaller than the patch ({patch} px)")
    top = int(torch.randint(0, h - patch + 1, (1,), generator=g))
    left = int(torch.randint(0, w - patch + 1, (1,), generator=g))
    return top, left, patch


def clip_windows(
    root: str | os.PathLike,
    *,
    num_frames: int,
    patch_size: int,
    seed: int,
    channels: int | None,
    windows: int | None,
) -> Iterator[_CleanWindow]:
    """Non-overlapping windows of every clip under ``root`` (module docstring)."""
    for clip in find_clips(root, num_frames):
        starts = list(range(0, len(clip.frames) - num_frames + 1, num_frames))[:windows]
        for start in starts:
            idx = list(range(start, start + num_frames))
            name = f"{clip.name}_{idx[num_frames // 2]:04d}"
            arrays = [read_image(clip.frames[i]) for i in idx]
            if any(a.shape != arrays[0].shape for a in arrays):
                raise InputError(f"clip '{clip.name}': frames differ in size")
            h, w = arrays[0].shape[:2]
            g = seeded_generator(seed, name)
            top, left, p = _crop_position(h, w, patch_size, g)
            p_h, p_w = (p, p) if p else (h, w)
            frames = [
                match_channels(
                    srgb_to_linear(image_to_tensor(a[top : top + p_h, left : left + p_w])),
                    channels,
                )
                for a in arrays
            ]
            yield _CleanWindow(
                name,
                str(Path(clip.frames[0]).parent),
                torch.stack(frames),
                idx,
                torch.full((num_frames, 2), float("nan"), dtype=torch.float64),
                top,
                left,
            )


def photo_windows(
    source,
    *,
    num_frames: int,
    patch_size: int,
    seed: int,
    channels: int | None,
    motion: ClipMotion,
) -> Iterator[_CleanWindow]:
    """One window with synthetic motion per photo (module docstring)."""
    names: dict[str, int] = {}
    for ref in list_images(source):
        name = unique_name(ref, names)
        image = match_channels(load_linear(ref), channels)
        g = seeded_generator(seed, name)
        try:
            clip, trajectory = synthesize_clip(image, g, num_frames // 2, patch_size, motion)
        except InputError as exc:
            raise InputError(f"{ref}: {exc}") from None
        yield _CleanWindow(name, str(ref), clip, None, trajectory, -1, -1)


def make_video_testset(
    source: str | Sequence[str] | None,
    out_dir: str | os.PathLike,
    *,
    levels: Sequence[str | NoiseLevel] = DEFAULT_VIDEO_LEVELS,
    num_frames: int = 5,
    patch_size: int = 128,
    seed: int = 0,
    layout: str = "auto",
    windows: int | None = None,
    channels: int | None = 3,
    motion: ClipMotion = DEFAULT_CLIP_MOTION,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Write a video test set (module docstring) and return its manifest. ``layout``: ``clips``
    (a folder of frame folders), ``photos`` or ``auto`` (clips if ``source`` looks like one)."""
    order = burst_order(num_frames)  # checks the clip length
    if num_frames < 3:
        raise InputError(f"a test window needs at least 3 frames, got {num_frames}")
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, got '{layout}'")
    if windows is not None and windows < 1:
        raise InputError(f"--windows must be positive, got {windows}")
    noise_levels = [parse_noise(lv) for lv in levels]
    if not noise_levels:
        raise InputError("no noise levels given")
    if layout == "auto":
        layout = "clips" if is_clip_folder(source, num_frames) else "photos"
    if layout == "clips":
        if not isinstance(source, (str, os.PathLike)):
            raise InputError("clips come from one folder of frame folders")
        find_clips(source, num_frames)  # fail before creating the output folder
        items = clip_windows(
            source,
            num_frames=num_frames,
            patch_size=patch_size,
            seed=seed,
            channels=channels,
            windows=windows,
        )
    else:
        if patch_size <= 0:
            raise InputError("windows from photos need a patch size (--patch)")
        list_images(source)
        items = photo_windows(
            source,
            num_frames=num_frames,
            patch_size=patch_size,
            seed=seed,
            channels=channels,
            motion=motion,
        )
    writer = ManifestWriter(out_dir, seed=seed, force=force)
    time = torch.arange(num_frames) - num_frames // 2
    for win in tqdm(items, desc="make-testset video", unit="window", disable=not progress):
        burst = win.clip[order]
        moved = win.motion[order]
        for level in noise_levels:
            gl = writer.generator(win.name, level.name)
            noisy = add_noise(burst, level.sigma_r, level.sigma_s, gl)
            data, clipped = sample_npz(
                noisy,
                burst[0],
                level.sigma_r,
                level.sigma_s,
                time=time[order].numpy().astype(np.int64),
                motion=moved.numpy().astype(np.float64),
            )
            writer.write(
                f"windows/{win.name}_{level.name}.npz",
                data,
                image=win.name,
                source=win.source,
                frames=None if win.frames is None else [win.frames[i] for i in order],
                level=level.name,
                sigma_r=level.sigma_r,
                sigma_s=level.sigma_s,
                clipped=clipped,
                top=win.top,
                left=win.left,
                size=list(burst.shape[-2:]),
                motion=None if torch.isnan(moved).any() else moved.tolist(),
            )
    generator = {
        "seed": seed,
        "layout": layout,
        "source": str(source),
        "num_frames": num_frames,
        "frame_order": "centre first, then temporal order (time)",
        "patch_size": patch_size,
        "windows_per_clip": windows,
        "channels": channels,
        "levels": level_records(noise_levels),
        "motion": asdict(motion) if layout == "photos" else None,
    }
    return writer.finish(FORMAT, "windows", generator)


# --------------------------------------------------------------------------- reading
@dataclass
class TestWindow(TestSample):
    """One benchmark window (:class:`~burstkpn.data.testsets.manifest.TestSample`: ``noisy``
    ``(1, F, C, H, W)``, centre frame first, ``noise_map`` / ``clean`` ``(1, C, H, W)``) with
    ``time`` ``(F,)`` and ``motion`` ``(F, 2)``."""

    __test__ = False

    time: torch.Tensor
    motion: torch.Tensor


class VideoTestSet(ManifestTestSet):
    """A test set written by :func:`make_video_testset`; iterate for :class:`TestWindow`s."""

    __test__ = False

    FORMAT = FORMAT
    ENTRIES = "windows"
    WRONG_FORMAT = "'{root}' is not a video test set (make one with make-testset --task video)"

    def load(self, entry: dict) -> TestWindow:
        z = self.read(entry)
        return TestWindow.from_npz(
            entry, z, time=torch.from_numpy(z["time"]), motion=torch.from_numpy(z["motion"])
        )
