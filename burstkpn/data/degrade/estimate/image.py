"""Estimating the shot / read noise parameters of a noisy image or burst from its spatial
statistics (``--noise auto``; the temporal estimator of bursts is
:mod:`burstkpn.data.degrade.estimate.burst`).

Model: variance ``sigma_r^2 + sigma_s * y`` (:mod:`burstkpn.data.degrade.noise`). Method (a
simplified version of Foi et al.'s clipped Poisson-Gaussian fitting):

1. A high-pass residual, the diagonal second difference of 2x2 neighbourhoods (Haar HH),
   removes most of the signal (it is blind to linear ramps); for white noise its variance is
   the noise variance.
2. The image is cut into 8x8 blocks; each gives the mean intensity of the smoothed image and the
   variance of its residual.
3. Blocks are grouped into intensity bins (equal counts); in each bin the 10th percentile of the
   block variances is taken (textured blocks have larger variances; the low percentile keeps the
   flat ones) and divided by the expected 10th percentile of a sample variance of 64 values
   (chi-square, about 0.78).
4. ``sigma_r^2`` and ``sigma_s`` are the non-negative least-squares line through the
   (intensity, variance) points.

All frames of a burst contribute blocks. Accuracy on synthetic bursts is tested per gain.

Where nothing can be measured, :func:`estimate_noise_params` raises one-line errors the command
line shows as they are: :class:`TooSmallToEstimate` for images too small to hold enough 8x8
blocks (the user passes ``--noise``), :class:`NothingToEstimate` when too little of the image is
neither black nor saturated (flat white, flat black or clipped bursts).
:func:`estimate_or_floor` turns the second case into :data:`FLOOR_LEVEL` with a warning: a burst
with (almost) no unclipped pixel holds almost no noise to remove.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch
import torch.nn.functional as F

from burstkpn.data.degrade.noise import NOISE_LEVELS
from burstkpn.data.degrade.noise_fit import nonnegative_line
from burstkpn.errors import BurstkpnWarning, InputError

BLOCK = 8
_RESIDUAL_GAIN = 1.0  # variance of the Haar HH residual on white noise
MIN_BLOCKS = 64  # bins (16) x 4: fewer usable 8x8 blocks cannot fit the noise line
FLOOR_LEVEL = "gain1"  # the lowest named level, used where no noise can be measured


class TooSmallToEstimate(InputError):
    """The image has too few 8x8 blocks to estimate its noise."""


class NothingToEstimate(InputError):
    """Too little of the image is neither black nor saturated to estimate its noise."""


def _chi2_quantile_factor(q: float, dof: int) -> float:
    """Approximate q-quantile of chi2(dof) / dof (Wilson-Hilferty)."""
    z = NormalDist().inv_cdf(q)
    a = 2.0 / (9.0 * dof)
    return (1 - a + z * math.sqrt(a)) ** 3


def block_statistics(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per 8x8 block of every plane of ``x`` (``(..., H, W)``): smoothed mean and residual
    variance (already divided by the residual's noise gain). One plane at a time, so the
    float64 temporaries exist for one plane only (a whole 12 MP burst at once took 9 GB)."""
    h, w = x.shape[-2:]
    if h < 2 or w < 2 or (h - 1) // BLOCK == 0 or (w - 1) // BLOCK == 0:
        raise too_small_error(h, w)
    stats = [_plane_block_statistics(p) for p in x.reshape(-1, h, w)]
    return (
        np.concatenate([m for m, _ in stats]),
        np.concatenate([v for _, v in stats]),
    )


def _plane_block_statistics(plane: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    planes = plane.reshape(1, 1, *plane.shape).double()
    smooth = F.avg_pool2d(planes, 2, stride=1)
    # diagonal second difference (Haar HH): unit gain on white noise, blind to linear ramps
    resid = (
        planes[..., :-1, :-1] - planes[..., 1:, :-1] - planes[..., :-1, 1:] + planes[..., 1:, 1:]
    ) / 2
    h, w = resid.shape[-2:]
    hb, wb = h // BLOCK * BLOCK, w // BLOCK * BLOCK

    def blocks(t: torch.Tensor) -> torch.Tensor:
        t = (
            t[..., 1 : hb - 1, 1 : wb - 1]
            if hb > 2 * BLOCK and wb > 2 * BLOCK
            else t[..., :hb, :wb]
        )
        hh, ww = t.shape[-2] // BLOCK * BLOCK, t.shape[-1] // BLOCK * BLOCK
        t = t[..., :hh, :ww]
        return t.reshape(t.shape[0], hh // BLOCK, BLOCK, ww // BLOCK, BLOCK).permute(0, 1, 3, 2, 4)

    mean = blocks(smooth).flatten(-2).mean(-1).flatten()
    var = blocks(resid).flatten(-2).var(-1, unbiased=True).flatten() / _RESIDUAL_GAIN
    return mean.numpy(), var.numpy()


def estimate_noise_params(
    x: torch.Tensor, *, bins: int = 16, quantile: float = 0.1
) -> tuple[float, float]:
    """``(sigma_r, sigma_s)`` from a noisy linear image ``(C, H, W)`` or burst ``(N, C, H, W)``."""
    mean, var = block_statistics(x)
    if mean.size < bins * 4:
        raise too_small_error(*x.shape[-2:])
    keep = (mean > 0.002) & (mean < 0.98)  # avoid the clipped ends
    mean, var = mean[keep], var[keep]
    if mean.size < bins * 4:
        raise NothingToEstimate(
            "too little of the image is neither black nor saturated to estimate its noise: "
            "pass --noise (e.g. --noise gain1)"
        )
    order = np.argsort(mean)
    factor = _chi2_quantile_factor(quantile, BLOCK * BLOCK - 1)
    xs, ys = [], []
    for chunk in np.array_split(order, bins):
        xs.append(float(np.median(mean[chunk])))
        ys.append(float(np.quantile(var[chunk], quantile)) / factor)
    a, b = nonnegative_line(np.array(xs), np.array(ys))  # var = a + b * y
    return math.sqrt(a), b


def too_small_error(h: int, w: int) -> TooSmallToEstimate:
    return TooSmallToEstimate(
        f"{w}x{h} px is too small to estimate the noise: pass --noise (e.g. --noise gain1)"
    )


def estimate_or_floor(x: torch.Tensor) -> tuple[float, float]:
    """:func:`estimate_noise_params`, or the :data:`FLOOR_LEVEL` noise with a warning when the
    image is (almost) all black or saturated; too small an image still raises."""
    try:
        return estimate_noise_params(x)
    except NothingToEstimate:
        level = NOISE_LEVELS[FLOOR_LEVEL]
        warnings.warn(
            "the noise cannot be measured (the image is almost all black or saturated): using "
            f"--noise {FLOOR_LEVEL}",
            BurstkpnWarning,
            stacklevel=2,
        )
        return level.sigma_r, level.sigma_s


@dataclass(frozen=True)
class ImageNoiseEstimate:
    """The noise measured from spatial statistics (:func:`estimate_or_floor`)."""

    sigma_r: float
    sigma_s: float
