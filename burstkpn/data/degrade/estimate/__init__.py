"""Measuring the shot / read noise of a noisy image or burst (``--noise auto``): from spatial
statistics of one image (:mod:`~burstkpn.data.degrade.estimate.image`, after Foi et al.'s
clipped Poisson-Gaussian fitting) or from the temporal differences of a burst's aligned frames
(:mod:`~burstkpn.data.degrade.estimate.burst`). Both fit the variance line ``sigma_r^2 +
sigma_s * y`` of :mod:`burstkpn.data.degrade.noise` with
:func:`~burstkpn.data.degrade.noise_fit.nonnegative_line`."""

from burstkpn.data.degrade.estimate.burst import (
    BURST_BINS,
    BURST_MAX_SIDE,
    BurstNoiseEstimate,
    estimate_burst_noise,
    integer_overlap,
)
from burstkpn.data.degrade.estimate.image import (
    BLOCK,
    FLOOR_LEVEL,
    MIN_BLOCKS,
    ImageNoiseEstimate,
    NothingToEstimate,
    TooSmallToEstimate,
    block_statistics,
    estimate_noise_params,
    estimate_or_floor,
)
from burstkpn.data.degrade.noise_fit import nonnegative_line

__all__ = [
    "BLOCK",
    "BURST_BINS",
    "BURST_MAX_SIDE",
    "FLOOR_LEVEL",
    "MIN_BLOCKS",
    "BurstNoiseEstimate",
    "ImageNoiseEstimate",
    "NothingToEstimate",
    "TooSmallToEstimate",
    "block_statistics",
    "estimate_burst_noise",
    "estimate_noise_params",
    "estimate_or_floor",
    "integer_overlap",
    "nonnegative_line",
]
