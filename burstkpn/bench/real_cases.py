"""The pieces of a ``bench real`` case, an image scored without synthetic noise: the
:class:`Case` (frames as stored, the truth, the measured noise :class:`Level`, the scoring
border), the split of a static burst into frames to denoise and frames for the pseudo ground
truth (:func:`split_burst`, :func:`pseudo_ground_truth`, :func:`alignment_border`), and the noise
measurements every method of a case shares (:func:`measure_burst_noise`,
:func:`measure_image_noise`). :mod:`burstkpn.bench.real` makes cases of bursts and pairs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from burstkpn.data.degrade import estimate
from burstkpn.data.degrade.estimate import estimate_or_floor
from burstkpn.data.degrade.noise import estimate_noise_map
from burstkpn.data.io.images import linear_to_srgb, list_images, srgb_to_linear
from burstkpn.errors import InputError
from burstkpn.ops.align import apply_shifts

MIN_FRAMES = 3  # two to denoise (a burst), at least one for the pseudo ground truth
BURST_BORDER = 16  # px left out of the scores of a burst: alignment pads the frames' edges


@dataclass(frozen=True)
class Split:
    """Frame indices of a burst: ``denoise`` (the reference first) and ``truth``."""

    denoise: tuple[int, ...]
    truth: tuple[int, ...]


def split_burst(n: int) -> Split:
    """Frames ``[0, n // 2 + n % 2)`` to denoise, the rest for the pseudo ground truth."""
    if n < MIN_FRAMES:
        raise InputError(f"a real-burst score needs at least {MIN_FRAMES} frames, got {n}")
    first = n // 2 + n % 2
    return Split(tuple(range(first)), tuple(range(first, n)))


def center_crop(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """The centred ``size`` x ``size`` window of ``(..., H, W)`` (each side at most the
    image's); the whole image for ``None``."""
    if size is None:
        return x
    h, w = x.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]


def pseudo_ground_truth(frames: torch.Tensor, shifts: np.ndarray) -> torch.Tensor:
    """Linear frames ``(M, C, H, W)`` moved by ``shifts`` ``(M, 2)`` onto the reference and
    averaged, sRGB-encoded: ``(C, H, W)`` in [0, 1]."""
    return linear_to_srgb(apply_shifts(frames.float(), shifts).mean(0)).clamp(0, 1)


def alignment_border(shifts: np.ndarray, minimum: int = BURST_BORDER) -> int:
    """Border (px) to leave out of the scores: ``minimum``, or more when a frame moved so far
    that its padded edge (plus the cubic spline's reach) would reach into the scored area."""
    reach = math.ceil(float(np.abs(shifts).max(initial=0.0))) + 4
    return max(minimum, reach)


@dataclass(frozen=True)
class Level:
    """A measured noise level: ``sigma_r`` / ``sigma_s`` (pooled over channels, what the
    classical methods use), the estimator's name, and its own result, handed as it is to
    :func:`~burstkpn.denoising.denoise_burst` (per-channel levels where it has them)."""

    sigma_r: float
    sigma_s: float
    estimator: str
    measured: object = None

    def for_models(self) -> object:
        return (self.sigma_r, self.sigma_s) if self.measured is None else self.measured

    def record(self) -> dict:
        out = {"sigma_r": self.sigma_r, "sigma_s": self.sigma_s, "estimator": self.estimator}
        per_channel = getattr(self.measured, "per_channel", None)
        return out | ({"per_channel": [list(c) for c in per_channel]} if per_channel else {})


def measure_burst_noise(burst: torch.Tensor) -> Level:
    """What ``burstkpn denoise --noise auto`` measures on a linear burst ``(N, C, H, W)``: the
    temporal estimator (``estimate_burst_noise``) for 3 frames or more where it can measure,
    else the spatial one (:func:`measure_image_noise`)."""
    temporal = getattr(estimate, "estimate_burst_noise", None)
    if temporal is not None and burst.shape[0] >= 3:
        try:
            level = temporal(burst)
        except InputError:  # too much motion, too small an overlap
            pass
        else:
            sigma_r, sigma_s = float(level.sigma_r), float(level.sigma_s)
            return Level(sigma_r, sigma_s, "estimate_burst_noise", level)
    return measure_image_noise(burst)


def measure_image_noise(image: torch.Tensor) -> Level:
    """The level of a linear image ``(C, H, W)`` (or burst) by the spatial estimator."""
    sigma_r, sigma_s = estimate_or_floor(image)
    return Level(float(sigma_r), float(sigma_s), "estimate_or_floor")


@dataclass
class Case:
    """One scored image: ``frames`` ``(N, C, H, W)`` sRGB as stored (frame 0 the reference),
    ``truth`` ``(C, H, W)`` sRGB, the noise level every method uses, the scoring border, and
    ``info`` for the records."""

    name: str
    group: str  # the table column: the burst's name, or the pairs' layout
    frames: torch.Tensor
    truth: torch.Tensor
    noise: Level
    border: int
    info: dict = field(default_factory=dict)

    @property
    def sigma_r(self) -> float:
        return self.noise.sigma_r

    @property
    def sigma_s(self) -> float:
        return self.noise.sigma_s

    @cached_property
    def linear(self) -> torch.Tensor:
        return srgb_to_linear(self.frames.float())

    def item(self) -> SimpleNamespace:
        """What :mod:`burstkpn.bench.methods` reads (a test-set burst without offsets)."""
        noisy = self.linear[None]
        nmap = estimate_noise_map(noisy[:, 0], self.sigma_r, self.sigma_s)
        return SimpleNamespace(
            noisy=noisy, noise_map=nmap, sigma_r=self.sigma_r, sigma_s=self.sigma_s, offsets=None
        )


def list_burst(folder: str | Path, limit: int | None = None) -> list[str]:
    """The frame files of a burst folder, sorted by name (the first ``limit``); one-line errors
    for a missing folder and too few frames."""
    refs = list_images(str(folder))[:limit]
    if len(refs) < MIN_FRAMES:
        raise InputError(
            f"a real-burst score needs at least {MIN_FRAMES} frames (two to denoise, one or more "
            f"for the pseudo ground truth), '{folder}' has {len(refs)}"
        )
    return refs
