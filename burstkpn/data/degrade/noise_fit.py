"""Noise lines: the variance ``a + b * x`` of noisy linear values against their clean intensity
``x`` (the shot / read model of :mod:`burstkpn.data.degrade.noise`, ``sigma_r = sqrt(a)``,
``sigma_s = b``), fitted with ``a, b >= 0``.

:func:`nonnegative_line` is the constrained least-squares line every noise line of the package
goes through (the single-image and burst estimators of :mod:`burstkpn.data.degrade.estimate`,
:func:`fit_noise_line`); :func:`fit_noise_line` measures the line of a noisy burst against its
clean reference, e.g. a camera burst (:mod:`burstkpn.data.degrade.camera`), whose noise no
longer follows the line it was drawn with once developed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from burstkpn.errors import InputError


def nonnegative_line(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, float]:
    """``(a, b)`` of the (weighted) least-squares line ``y = a + b x`` constrained to
    ``a, b >= 0``: the free fit, else the better constrained case (through the origin when the
    intercept comes out negative, a constant when the slope does). Two unknowns, so trying the
    cases is exact non-negative least squares. Used for every noise line of the package (the
    single-image and burst estimators, :func:`fit_noise_line`)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    if np.ptp(x) == 0:  # every point at one intensity: no slope to fit
        return max(float(np.average(y, weights=w)), 0.0), 0.0
    root = np.sqrt(w)
    design = np.stack([np.ones_like(x), x], axis=1) * root[:, None]
    (a, b), *_ = np.linalg.lstsq(design, y * root, rcond=None)
    if a < 0:  # through the origin
        a, b = 0.0, max(float(np.sum(w * x * y) / np.sum(w * x * x)), 0.0)
    elif b < 0:  # constant
        a, b = max(float(np.average(y, weights=w)), 0.0), 0.0
    return float(a), float(b)


@dataclass(frozen=True)
class NoiseFit:
    """Noise variance ``a + b * x`` of a burst against its clean linear intensity x: per
    channel (``a``, ``b`` of shape ``(C,)``) and for all channels pooled."""

    a: np.ndarray
    b: np.ndarray
    a_pooled: float
    b_pooled: float

    @property
    def sigma_r(self) -> float:
        """The pooled fit in the terms of :mod:`burstkpn.data.degrade.noise`: ``sqrt(a)``."""
        return math.sqrt(self.a_pooled)

    @property
    def sigma_s(self) -> float:
        return self.b_pooled

    def noise_map(self, noisy: torch.Tensor) -> torch.Tensor:
        """``sqrt(a + b * max(x, 0))`` per channel of a noisy linear image ``(C, H, W)`` (the
        per-channel analogue of eq. 1 of [AME-KPN])."""
        a = torch.as_tensor(self.a, dtype=noisy.dtype, device=noisy.device).view(-1, 1, 1)
        b = torch.as_tensor(self.b, dtype=noisy.dtype, device=noisy.device).view(-1, 1, 1)
        return (a + b * noisy.clamp_min(0)).sqrt()


def _line_from_bins(
    x: np.ndarray, y: np.ndarray, n: np.ndarray, iterations: int = 3
) -> tuple[float, float]:
    """Weighted least-squares line ``y = a + b x`` through bin means ``(x, y)`` of ``n``
    squared residuals each, constrained to ``a, b >= 0``. A mean of n squared Gaussian residuals
    of variance v has variance ``2 v^2 / n``, so the weights are ``n / v^2`` with v from the
    previous iteration (first: the observed means)."""
    if x.size == 0:
        return 0.0, 0.0
    v = np.maximum(y, 1e-12)
    a = b = 0.0
    for _ in range(iterations):
        a, b = nonnegative_line(x, y, n / np.square(v))
        v = np.maximum(a + b * x, 1e-12)
    return a, b


def _bin_statistics(
    x: torch.Tensor, r2: torch.Tensor, bins: int, edge: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, sum of x and sum of r2 per channel and intensity bin, ``(C, bins)`` each (float64),
    from clean values ``x`` and squared errors ``r2`` of shape ``(C, P)``; values within
    ``edge`` of 0 or 1 go to a discarded extra bin. One ``bincount`` pass per statistic for all
    channels, in float32 with int32 indices (conversions to float64 / int64 cost more than the
    rest of the fit on a CPU; float32 sums of 1e6 values are good to 1e-4)."""
    c = x.shape[0]
    idx = (x * bins).clamp_(0, bins - 1).floor_()
    idx += bins * torch.arange(c, dtype=idx.dtype, device=x.device)[:, None]
    idx.masked_fill_((x <= edge) | (x >= 1 - edge), c * bins)
    idx = idx.flatten().int()

    def count(weights: torch.Tensor | None) -> np.ndarray:
        w = None if weights is None else weights.flatten()
        out = torch.bincount(idx, weights=w, minlength=c * bins + 1)
        return out[:-1].view(c, bins).cpu().numpy().astype(np.float64)

    return count(None), count(x), count(r2)


def _fit_bins(n: np.ndarray, sx: np.ndarray, sy: np.ndarray, margin: float) -> tuple[float, float]:
    """The noise line through one set of intensity bins (see :func:`fit_noise_line`)."""
    used = n > 0
    if not used.any():
        return 0.0, 0.0
    n, x, y = n[used], sx[used] / n[used], sy[used] / n[used]
    a, b = _line_from_bins(x, y, n)
    # Developed frames are clipped at black and white: where the clean value lies within a few
    # noise deviations of 0 or 1, part of the noise was clipped away and the squared error
    # underestimates the variance. Drop those bins with the current fit and refit.
    for _ in range(2):
        s = np.sqrt(np.maximum(a + b * x, 0))
        inner = (x > margin * s) & (x < 1 - margin * s)
        if inner.sum() < 2:
            break
        a, b = _line_from_bins(x[inner], y[inner], n[inner])
    return a, b


def fit_noise_line(
    clean_linear: torch.Tensor,
    noisy_linear: torch.Tensor,
    *,
    bins: int = 128,
    margin: float = 3.0,
    edge: float = 1e-3,
) -> NoiseFit:
    """Least-squares line ``(noisy - clean)^2 = a + b * clean`` of bursts or images
    ``(..., C, H, W)`` in linear light, per channel and pooled; ``a, b >= 0``.

    For a camera burst, ``noisy`` is the developed frames linearised (``srgb_to_linear``) and
    ``clean`` the linear photo; the line is then the shot / read model that best describes the
    noise as it reaches the network, i.e. what a burst noise estimator should find and what the
    noise map of such a burst is made of (``sigma_r = sqrt(a)``, ``sigma_s = b``).

    The squared errors are averaged in ``bins`` equal intensity bins and the line is fitted
    through the bin means by weighted least squares (:func:`_line_from_bins`). Clean values
    within ``edge`` of 0 or 1 are left out, and then the bins within ``margin`` fitted noise
    deviations of them, because clipping at black and white shrinks their errors."""
    if clean_linear.shape != noisy_linear.shape or clean_linear.ndim < 3:
        raise InputError(
            f"clean {tuple(clean_linear.shape)} and noisy {tuple(noisy_linear.shape)} must be "
            "images or bursts (..., C, H, W) of one shape"
        )
    c = clean_linear.shape[-3]
    clean = clean_linear.detach().float()
    x = clean.movedim(-3, 0).reshape(c, -1)
    r2 = (noisy_linear.detach().float() - clean).square_().movedim(-3, 0).reshape(c, -1)
    n, sx, sy = _bin_statistics(x, r2, bins, edge)
    per = [_fit_bins(n[k], sx[k], sy[k], margin) for k in range(c)]
    a_pooled, b_pooled = _fit_bins(n.sum(0), sx.sum(0), sy.sum(0), margin)
    return NoiseFit(
        a=np.array([p[0] for p in per]),
        b=np.array([p[1] for p in per]),
        a_pooled=a_pooled,
        b_pooled=b_pooled,
    )
