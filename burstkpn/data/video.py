"""Training clips for the video models (``deform3d``): ``2 tau + 1`` frames around a reference,
made from photos with synthetic camera motion or cut from clean video clips on disk.

Frame order. Clips are built in temporal order ``[X_-tau, ..., X_0, ..., X_tau]`` and handed out
in the package's burst order, reference first: ``[X_0, X_-tau, ..., X_-1, X_1, ..., X_tau]``
(:func:`burst_order`; the order ``deform3d`` takes, see
:func:`burstkpn.models.deformable.burst_to_clip`).

Motion from photos (:func:`sample_trajectory`): a smooth random global translation, in output
pixels, ``d(t) = v t + a t^2 / 2 + j_t`` for ``t = -tau..tau``: ``|v|`` uniform in
``[0, max_speed]`` px/frame at a uniform random angle, each component of ``a`` uniform in
``[-max_accel, max_accel]`` px/frame^2, and a per-frame jitter ``j_t`` uniform in
``[-jitter, jitter]`` px per component (``j_0 = 0``, so ``d(0) = 0``); with probability
``static_prob`` the camera does not drift (``v = a = 0``, jitter only). Frame t at output pixel
p shows the reference scene at ``p + d(t)``; frames are cut from the photo at its own resolution
with cubic B-splines (the interpolator of the subpixel burst synthesis,
:func:`burstkpn.data.synth._spline_crop`), so every frame is as sharp as the reference.

Clips on disk (:func:`find_clips`): a folder of frame folders (``vid4/<clip>/*.png``) or one
frame folder; frames are sorted by name. An item is a random window of ``2 tau + 1``
consecutive frames (every window of every clip equally likely), cropped at one random place in
all frames, with the same random rotation / flip for all frames and a random temporal reversal.

Both get the noise model of :mod:`burstkpn.data.noise` with parameters drawn from the training
ranges, independently per frame, and the noise map of the noisy reference (eq. 1 of
ame_kpn.md; the paper's ``sqrt(sigma_r^2 + sigma_s q_ref)``).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from burstkpn.data.datasets import augment, derive_seed, match_channels
from burstkpn.data.images import (
    READ_EXTENSIONS,
    image_to_tensor,
    list_images,
    read_image,
    srgb_to_linear,
)
from burstkpn.data.noise import (
    TRAIN_SIGMA_R,
    TRAIN_SIGMA_S,
    add_noise,
    estimate_noise_map,
    sample_noise_params,
)
from burstkpn.data.synth import SPLINE_MARGIN, _spline_crop
from burstkpn.errors import InputError


# --------------------------------------------------------------------------- frame order
def burst_order(num_frames: int) -> list[int]:
    """Indices into a temporally ordered clip that give the burst order (centre frame first,
    then the others in temporal order), as :func:`~burstkpn.models.deformable.clip_to_burst`."""
    if num_frames < 1 or num_frames % 2 == 0:
        raise InputError(f"a clip needs an odd number of frames (2 tau + 1), got {num_frames}")
    tau = num_frames // 2
    return [tau, *range(tau), *range(tau + 1, num_frames)]


# --------------------------------------------------------------------------- motion
@dataclass(frozen=True)
class ClipMotion:
    """The random global translation of a synthetic clip (module docstring), in output pixels."""

    max_speed: float = 4.0  # px / frame: at tau = 2 up to 8 px, the deform3d offset limit
    max_accel: float = 0.5  # px / frame^2 per component
    jitter: float = 0.5  # px per component, per frame
    static_prob: float = 0.1  # probability of no drift (v = a = 0, jitter only)

    def reach(self, tau: int) -> float:
        """Largest displacement of any component over ``t = -tau..tau``."""
        return self.max_speed * tau + self.max_accel * tau * tau / 2 + self.jitter


DEFAULT_CLIP_MOTION = ClipMotion()


def sample_trajectory(
    tau: int, generator: torch.Generator, motion: ClipMotion = DEFAULT_CLIP_MOTION
) -> torch.Tensor:
    """Displacements ``(2 tau + 1, 2)`` float64, ``(dy, dx)`` per frame in temporal order, zero
    at the reference (row ``tau``). The random stream is always consumed the same way."""
    if tau < 0:
        raise InputError(f"tau must be >= 0, got {tau}")
    u = torch.rand(3, generator=generator, dtype=torch.float64)  # speed, angle, static
    accel = (torch.rand(2, generator=generator, dtype=torch.float64) * 2 - 1) * motion.max_accel
    jitter = torch.rand(2 * tau + 1, 2, generator=generator, dtype=torch.float64) * 2 - 1
    static = float(u[2]) < motion.static_prob
    speed = 0.0 if static else float(u[0]) * motion.max_speed
    accel = accel * (0.0 if static else 1.0)
    angle = float(u[1]) * 2 * math.pi
    v = torch.tensor([math.sin(angle), math.cos(angle)], dtype=torch.float64) * speed
    t = torch.arange(-tau, tau + 1, dtype=torch.float64)[:, None]
    jitter = jitter * motion.jitter
    jitter[tau] = 0.0
    return v * t + accel * t * t / 2 + jitter


def linear_trajectory(tau: int, speed: float, angle: float = 0.0) -> torch.Tensor:
    """Constant velocity ``speed`` px/frame at ``angle`` radians (0: along +x), no jitter."""
    v = torch.tensor([math.sin(angle), math.cos(angle)], dtype=torch.float64) * float(speed)
    return v * torch.arange(-tau, tau + 1, dtype=torch.float64)[:, None]


def motion_margin(reach: float) -> int:
    """Pixels of context a clip with displacements up to ``reach`` needs around its window."""
    return math.ceil(reach) + SPLINE_MARGIN


def crop_clip(
    image: torch.Tensor, trajectory: torch.Tensor, top: int, left: int, patch_size: int
) -> torch.Tensor:
    """Frames ``(F, C, P, P)`` (temporal order) of a linear image ``(C, H, W)``: frame t is the
    ``P x P`` window at ``(top, left) + trajectory[t]`` (cubic B-splines)."""
    return torch.stack(
        [
            _spline_crop(image, top + float(dy), left + float(dx), patch_size, patch_size)
            for dy, dx in trajectory.tolist()
        ]
    )


def synthesize_clip(
    image: torch.Tensor,
    generator: torch.Generator,
    tau: int = 2,
    patch_size: int = 128,
    motion: ClipMotion = DEFAULT_CLIP_MOTION,
    trajectory: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A clean clip ``(2 tau + 1, C, P, P)`` (temporal order) from a linear image ``(C, H, W)``:
    a trajectory drawn from ``motion`` (unless given), then a uniformly random window position
    that keeps every frame inside the image. Returns the clip and the trajectory."""
    if trajectory is None:
        trajectory = sample_trajectory(tau, generator, motion)
    margin = motion_margin(float(trajectory.abs().max()))
    h, w = image.shape[-2:]
    if min(h, w) < patch_size + 2 * margin:
        raise InputError(
            f"image of {w}x{h} px is too small for a clip of {patch_size} px with "
            f"{float(trajectory.abs().max()):.1f} px of motion (needs {patch_size + 2 * margin})"
        )
    top = int(torch.randint(margin, h - patch_size - margin + 1, (1,), generator=generator))
    left = int(torch.randint(margin, w - patch_size - margin + 1, (1,), generator=generator))
    return crop_clip(image, trajectory, top, left, patch_size), trajectory


# --------------------------------------------------------------------------- clips on disk
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


# --------------------------------------------------------------------------- dataset
def _noisy_item(clip: torch.Tensor, g: torch.Generator, sr_range, ss_range, log_uniform) -> dict:
    """Noise on a temporal clip ``(F, C, P, P)``; the item in burst order."""
    burst = clip[burst_order(clip.shape[0])]
    sigma_r, sigma_s = sample_noise_params(1, g, sr_range, ss_range, log_uniform)
    noisy = add_noise(burst[None], sigma_r, sigma_s, g)[0]
    return {
        "noisy": noisy,
        "noise_map": estimate_noise_map(noisy[:1], sigma_r, sigma_s)[0],
        "clean": burst[0],
        "sigma_r": sigma_r[0],
        "sigma_s": sigma_s[0],
    }


class SyntheticClipDataset(Dataset):
    """Random noisy clips of ``2 tau + 1`` frames, from photos with synthetic motion and / or
    from clean clips on disk (module docstring).

    Each item: ``noisy`` ``(F, C, P, P)`` in burst order (reference first), ``noise_map`` and
    ``clean`` ``(C, P, P)`` (the clean reference), ``sigma_r`` / ``sigma_s``, ``motion``
    ``(F, 2)`` (the synthetic displacements in burst order; NaN for clips from disk) and
    ``from_clip`` (0 / 1). Item ``i`` of epoch ``e`` comes from its own generator seeded with
    ``derive_seed(seed, e, i)``, which first decides the source: a clip with probability
    ``clip_fraction`` (when ``clips`` is given), else a photo. Photos and clip frames are
    decoded once and kept in their stored dtype.
    """

    def __init__(
        self,
        photos: str | list[str] | None = None,
        clips: str | os.PathLike | None = None,
        *,
        clip_fraction: float = 0.5,
        patch_size: int = 64,
        tau: int = 2,
        length: int = 1000,
        seed: int = 0,
        channels: int | str | None = 3,
        sigma_r_range: tuple[float, float] = TRAIN_SIGMA_R,
        sigma_s_range: tuple[float, float] = TRAIN_SIGMA_S,
        log_uniform: bool = True,
        augment: bool = True,
        motion: ClipMotion = DEFAULT_CLIP_MOTION,
    ) -> None:
        if length < 1:
            raise InputError(f"dataset length must be positive, got {length}")
        if not 0.0 <= clip_fraction <= 1.0:
            raise InputError(f"clip_fraction must be in [0, 1], got {clip_fraction}")
        if tau < 1:
            raise InputError(f"a clip needs tau >= 1, got {tau}")
        self.num_frames = 2 * tau + 1
        self.clip_fraction = clip_fraction if clips is not None else 0.0
        self.photo_need = patch_size + 2 * motion_margin(motion.reach(tau))
        self.refs: list[str] = []
        self.images = []
        if self.clip_fraction < 1.0:
            self.refs = list_images(photos)
            self.images = [read_image(r) for r in self.refs]
            for ref, img in zip(self.refs, self.images, strict=True):
                if min(img.shape[:2]) < self.photo_need:
                    raise InputError(
                        f"{ref}: image of {img.shape[1]}x{img.shape[0]} px is too small for "
                        f"clips of {patch_size} px with {motion.reach(tau):.1f} px of motion "
                        f"(needs {self.photo_need} px per side)"
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
                if min(shape[:2]) < patch_size:
                    raise InputError(
                        f"clip '{clip.name}': frames of {shape[1]}x{shape[0]} px are smaller "
                        f"than the patch ({patch_size} px)"
                    )
                self.clip_frames.append(frames)
                self.windows += [(c, s) for s in range(len(frames) - self.num_frames + 1)]
        self.tau = tau
        self.patch_size = patch_size
        self.length = length
        self.seed = seed
        self.channels = channels
        self.sigma_r_range = sigma_r_range
        self.sigma_s_range = sigma_s_range
        self.log_uniform = log_uniform
        self.augment = augment
        self.motion = motion
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def _photo_clip(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        k = int(torch.randint(0, len(self.images), (1,), generator=g))
        img, need = self.images[k], self.photo_need
        h, w = img.shape[:2]
        y = int(torch.randint(0, h - need + 1, (1,), generator=g))
        x = int(torch.randint(0, w - need + 1, (1,), generator=g))
        region = image_to_tensor(img[y : y + need, x : x + need])
        if self.augment:
            region = augment(region, g)
        region = match_channels(srgb_to_linear(region), self.channels, g)
        trajectory = sample_trajectory(self.tau, g, self.motion)
        margin = (need - self.patch_size) // 2
        return crop_clip(region, trajectory, margin, margin, self.patch_size), trajectory

    def _disk_clip(self, g: torch.Generator) -> torch.Tensor:
        c, start = self.windows[int(torch.randint(0, len(self.windows), (1,), generator=g))]
        frames = self.clip_frames[c][start : start + self.num_frames]
        h, w = frames[0].shape[:2]
        p = self.patch_size
        y = int(torch.randint(0, h - p + 1, (1,), generator=g))
        x = int(torch.randint(0, w - p + 1, (1,), generator=g))
        clip = torch.stack([image_to_tensor(f[y : y + p, x : x + p]) for f in frames])
        reverse = bool(torch.randint(0, 2, (1,), generator=g))
        if self.augment:
            clip = augment(clip, g)  # one rotation / flip for every frame
            if reverse:
                clip = clip.flip(0)
        clip = srgb_to_linear(clip)
        if self.channels == "random" and clip.shape[1] > 1:  # one plane for all frames
            k = int(torch.randint(0, clip.shape[1], (1,), generator=g))
            return clip[:, k : k + 1].contiguous()
        return torch.stack([match_channels(f, self.channels) for f in clip])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, index))
        from_clip = float(torch.rand(1, generator=g, dtype=torch.float64)) < self.clip_fraction
        if from_clip:
            clip = self._disk_clip(g)
            motion = torch.full((self.num_frames, 2), math.nan)
        else:
            clip, trajectory = self._photo_clip(g)
            motion = trajectory[burst_order(self.num_frames)].float()
        item = _noisy_item(clip, g, self.sigma_r_range, self.sigma_s_range, self.log_uniform)
        return {**item, "motion": motion, "from_clip": torch.tensor(int(from_clip))}
