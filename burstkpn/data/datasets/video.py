"""Synthetic training clips for video denoising (``deform3d``): :class:`SyntheticClipDataset`,
noisy windows of ``2 tau + 1`` frames from photos with synthetic motion and / or clean clips on
disk."""

from __future__ import annotations

import math
import os
from typing import Any

import torch

from burstkpn.data.datasets.base import (
    SyntheticDataset,
    check_photo_sizes,
    draw_index,
    linear_region,
    match_stack_channels,
    noisy_item,
    random_crop,
    read_photos,
)
from burstkpn.data.degrade.video import (
    DEFAULT_CLIP_MOTION,
    ClipMotion,
    burst_order,
    crop_clip,
    motion_margin,
    sample_trajectory,
)
from burstkpn.data.io.clips import VideoClip, find_clips
from burstkpn.data.io.images import read_image, srgb_to_linear
from burstkpn.data.sampling import augment
from burstkpn.errors import InputError


class SyntheticClipDataset(SyntheticDataset):
    """Random noisy clips of ``2 tau + 1`` frames, from photos with synthetic motion and / or
    from clean clips on disk.

    Photos: a clean clip with a random motion trajectory
    (:func:`~burstkpn.data.degrade.video.sample_trajectory`, cubic B-spline crops). Clips on
    disk (:func:`~burstkpn.data.io.clips.find_clips`): a random window of ``2 tau + 1``
    consecutive frames (every window of every clip equally likely), cropped at one random place
    in all frames, with the same random rotation / flip for all frames and a random temporal
    reversal. Both get the noise model of :mod:`burstkpn.data.degrade.noise` with parameters
    drawn from the training ranges, independently per frame, and the noise map of the noisy
    reference (eq. 1 of [AME-KPN]; the paper's ``sqrt(sigma_r^2 + sigma_s q_ref)``).

    Each item: ``noisy`` ``(F, C, P, P)`` in burst order (reference first), ``noise_map`` and
    ``clean`` ``(C, P, P)`` (the clean reference), ``sigma_r`` / ``sigma_s``, ``motion``
    ``(F, 2)`` (the synthetic displacements in burst order; NaN for clips from disk) and
    ``from_clip`` (0 / 1). Item ``i`` of epoch ``e`` comes from its own generator seeded with
    ``derive_seed(seed, e, i)``, which first decides the source: a clip with probability
    ``clip_fraction`` (when ``clips`` is given), else a photo. Photos and clip frames are
    decoded once and kept in their stored dtype. ``patch_size``, ``channels``, ``augment``, the
    noise ranges, ``length`` and ``seed`` are passed on to
    :class:`~burstkpn.data.datasets.base.SyntheticDataset`.
    """

    def __init__(
        self,
        photos: str | list[str] | None = None,
        clips: str | os.PathLike | None = None,
        *,
        clip_fraction: float = 0.5,
        tau: int = 2,
        motion: ClipMotion = DEFAULT_CLIP_MOTION,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if not 0.0 <= clip_fraction <= 1.0:
            raise InputError(f"clip_fraction must be in [0, 1], got {clip_fraction}")
        if tau < 1:
            raise InputError(f"a clip needs tau >= 1, got {tau}")
        self.num_frames = 2 * tau + 1
        self.clip_fraction = clip_fraction if clips is not None else 0.0
        self.photo_need = self.patch_size + 2 * motion_margin(motion.reach(tau))
        self.refs: list[str] = []
        self.images = []
        if self.clip_fraction < 1.0:
            self.refs, self.images = read_photos(photos)
            check_photo_sizes(
                self.refs,
                self.images,
                self.photo_need,
                f"too small for clips of {self.patch_size} px with {motion.reach(tau):.1f} px of "
                f"motion (needs {self.photo_need} px per side)",
            )
        self.clips: list[VideoClip] = []
        self.clip_frames: list[list] = []
        self.windows: list[tuple[int, int]] = []  # (clip, first frame)
        if self.clip_fraction > 0.0:
            self.clips = find_clips(clips, self.num_frames)
            for c, clip in enumerate(self.clips):
                frames = [read_image(f) for f in clip.frames]
                shape = frames[0].shape
                if any(f.shape != shape for f in frames):
                    raise InputError(f"clip '{clip.name}': frames differ in size")
                if min(shape[:2]) < self.patch_size:
                    raise InputError(
                        f"clip '{clip.name}': frames of {shape[1]}x{shape[0]} px are smaller "
                        f"than the patch ({self.patch_size} px)"
                    )
                self.clip_frames.append(frames)
                self.windows += [(c, s) for s in range(len(frames) - self.num_frames + 1)]
        self.tau = tau
        self.motion = motion

    def _photo_clip(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        need = self.photo_need
        region = linear_region(self.images, need, g, self.channels, self.augment)
        trajectory = sample_trajectory(self.tau, g, self.motion)
        margin = (need - self.patch_size) // 2
        return crop_clip(region, trajectory, margin, margin, self.patch_size), trajectory

    def _disk_clip(self, g: torch.Generator) -> torch.Tensor:
        c, start = self.windows[draw_index(len(self.windows), g)]
        frames = self.clip_frames[c][start : start + self.num_frames]
        clip = random_crop(frames, self.patch_size, g)
        reverse = bool(draw_index(2, g))
        if self.augment:
            clip = augment(clip, g)  # one rotation / flip for every frame
            if reverse:
                clip = clip.flip(0)
        return match_stack_channels(srgb_to_linear(clip), self.channels, g)  # one plane for all

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        g = self.generator(index)
        from_clip = float(torch.rand(1, generator=g, dtype=torch.float64)) < self.clip_fraction
        if from_clip:
            clip = self._disk_clip(g)
            motion = torch.full((self.num_frames, 2), math.nan)
        else:
            clip, trajectory = self._photo_clip(g)
            motion = trajectory[burst_order(self.num_frames)].float()
        burst = clip[burst_order(clip.shape[0])]
        item = noisy_item(burst, *self.draw_noise(g), g)
        return {**item, "motion": motion, "from_clip": torch.tensor(int(from_clip))}
