"""Temporal noise estimation from a burst (issue 23): the frames of a static burst show one
scene with independent noise, so once they are aligned the difference of two frames is pure
noise, whatever the texture and however the noise is correlated in space (demosaicing, JPEG):
``Var(x_i - x_0) = 2 sigma^2(y)`` per pixel. Only pixels that moved (local motion, parallax,
residual misalignment at edges) break this; they are rejected by their local difference energy
(:func:`estimate_burst_noise`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from burstkpn.data.degrade.estimate.image import NothingToEstimate, too_small_error
from burstkpn.data.degrade.noise_fit import nonnegative_line
from burstkpn.errors import InputError
from burstkpn.ops.align import estimate_shifts

BURST_BINS = 24  # intensity bins of the robust fit
BURST_MAX_SIDE = 640  # a central window of at most this side is enough (noise is stationary)
_CHI2_1_MEDIAN = 0.45493642311957283  # median of chi-square with 1 degree of freedom
_ENERGY_WINDOW = 5  # local mean of squared differences: motion is spatially coherent
_ENERGY_LIMIT = 4.0  # reject where the local energy exceeds 4x the predicted 2 sigma^2
_TAIL_LIMIT = 25.0  # and single differences beyond 5 predicted standard deviations
_SLOPE_LIMIT = 8.0  # and pixels whose squared slope exceeds 8 sigma^2
_MIN_SAMPLES = 2000  # kept differences per channel, fewer cannot fit the line


@dataclass(frozen=True)
class BurstNoiseEstimate:
    """The noise of a burst measured from its frames: variance ``a_c + b_c * x`` per channel
    ``c`` on linear values ``x``, reported as ``sigma_r = sqrt(a)`` and ``sigma_s = b`` (the
    parameters of :mod:`burstkpn.data.degrade.noise`). ``sigma_r`` / ``sigma_s`` pool the channels
    (the channel-mean variance line); ``rejected`` is the fraction of differences rejected as
    motion or outliers."""

    sigma_r: float
    sigma_s: float
    per_channel: tuple[tuple[float, float], ...]
    frames: int
    rejected: float

    def noise_map(self, x: torch.Tensor) -> torch.Tensor:
        """``sqrt(a_c + b_c * max(x, 0))`` for an image ``(..., C, H, W)`` with this burst's
        channels: the network's noise-map input ([AME-KPN] eq. 1) with per-channel levels."""
        c = x.shape[-3]
        if c != len(self.per_channel):
            raise InputError(f"noise estimated for {len(self.per_channel)} channels, got {c}")
        sr = torch.tensor([p[0] for p in self.per_channel], dtype=x.dtype, device=x.device)
        ss = torch.tensor([p[1] for p in self.per_channel], dtype=x.dtype, device=x.device)
        return (sr.view(c, 1, 1) ** 2 + ss.view(c, 1, 1) * x.clamp_min(0)).sqrt()

    def variance(self, x: float | np.ndarray, channel: int | None = None) -> np.ndarray:
        """The fitted variance at linear intensity ``x`` (pooled, or of one channel)."""
        sr, ss = (self.sigma_r, self.sigma_s) if channel is None else self.per_channel[channel]
        return sr * sr + ss * np.asarray(x, dtype=np.float64)


def integer_overlap(
    frames: torch.Tensor, shifts: np.ndarray, max_side: int | None = None
) -> torch.Tensor:
    """Frames ``(N, C, H, W)`` moved onto frame 0 by their shifts rounded to whole pixels
    (``scipy.ndimage.shift`` convention of :func:`burstkpn.ops.align.apply_shifts`: frame i at
    p shows ``x_i[p - shift_i]``), cropped to the region every frame covers. Whole-pixel moves
    copy the noise unchanged; an interpolated shift would low-pass it and bias the estimate.
    ``max_side``: keep only a central window of at most this side of that region."""
    s = np.rint(np.asarray(shifts, dtype=np.float64)).astype(np.int64)
    h, w = frames.shape[-2:]
    y0, y1 = max(0, int(s[:, 0].max())), h + min(0, int(s[:, 0].min()))
    x0, x1 = max(0, int(s[:, 1].max())), w + min(0, int(s[:, 1].min()))
    if y1 - y0 < 8 or x1 - x0 < 8:
        raise NothingToEstimate(
            "the frames hardly overlap after alignment: pass --noise (e.g. --noise gain1)"
        )
    if max_side is not None:
        y0, x0 = y0 + max(0, (y1 - y0 - max_side) // 2), x0 + max(0, (x1 - x0 - max_side) // 2)
        y1, x1 = min(y1, y0 + max_side), min(x1, x0 + max_side)
    return torch.stack(
        [
            f[:, y0 - int(dy) : y1 - int(dy), x0 - int(dx) : x1 - int(dx)].float()
            for f, (dy, dx) in zip(frames, s, strict=True)
        ]
    )


def _too_little() -> NothingToEstimate:
    return NothingToEstimate(
        "too little of the burst is neither black nor saturated to estimate its noise: "
        "pass --noise (e.g. --noise gain1)"
    )


def _bin_index(mean: torch.Tensor, valid: torch.Tensor, bins: int) -> torch.Tensor:
    """Equal-count intensity bins of the valid pixels: the bin of every pixel of ``mean``
    ``(H, W)``, -1 outside ``valid``."""
    values = mean[valid].sort().values
    if values.numel() < bins:
        raise _too_little()
    cuts = values[(torch.arange(1, bins) * values.numel()) // bins]
    idx = torch.bucketize(mean.contiguous(), cuts)
    return torch.where(valid, idx, torch.full_like(idx, -1))


def _bin_means(
    idx: torch.Tensor, keep: torch.Tensor, m: torch.Tensor, values: torch.Tensor, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per bin (flat samples with bin ``idx``, bin ``bins`` = none), the mean intensity and
    the mean of ``values`` over the samples ``keep`` selects. Weighted counts instead of
    boolean indexing: no compacted copies of the (frames x pixels) arrays."""
    w = keep.to(values.dtype)

    def total(weights: torch.Tensor) -> torch.Tensor:
        return torch.bincount(idx, weights=weights, minlength=bins + 1)[:bins].double()

    count = total(w)
    use = (count >= 50).numpy()
    if use.sum() < 2:
        raise _too_little()
    mean_m = total(m * w) / count.clamp_min(1)
    mean_v = total(values * w) / count.clamp_min(1)
    return mean_m.numpy()[use], mean_v.numpy()[use]


def _bin_medians(
    idx: torch.Tensor, m: torch.Tensor, values: torch.Tensor, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`_bin_means` with the median of ``values`` (on at most 2^18 samples)."""
    step = max(1, idx.numel() >> 18)
    idx, m, values = idx[::step], m[::step], values[::step]
    values, order = values.sort()
    grouped = torch.sort(idx[order], stable=True)  # by bin, values ascending within each
    count = torch.bincount(idx, minlength=bins)[:bins]
    start = torch.cumsum(count, 0) - count
    median = values[grouped.indices[(start + count // 2).clamp_max(idx.numel() - 1)]]
    mean_m = torch.bincount(idx, weights=m, minlength=bins)[:bins] / count.clamp_min(1)
    use = (count >= 50).numpy()
    if use.sum() < 2:
        raise _too_little()
    return mean_m.numpy()[use], median.numpy()[use]


def _channel_line(
    diffs: torch.Tensor,
    mean: torch.Tensor,
    slope: torch.Tensor,
    valid: torch.Tensor,
    clipped: torch.Tensor,
    bins: int,
) -> tuple[float, float, float]:
    """``(a, b, rejected)`` of one channel: ``diffs`` ``(P, H, W)`` frame-minus-reference
    differences (variance ``2 (a + b y)``), ``mean`` ``(H, W)`` the temporal mean (the
    intensity), ``slope`` ``(H, W)`` its squared gradient, ``valid`` ``(H, W)`` the pixels
    inside the intensity range, ``clipped``
    ``(P, H, W)`` the differences one of whose two frames sits at 0 or 1. Clipped
    differences are truncated: they are left out, and so are the intensity bins where more
    than 2 % of them clip (leaving out only the clipped ones would keep the samples whose
    noise happened to stay inside the range, and bias the bin low)."""
    if int(valid.sum()) * diffs.shape[0] < _MIN_SAMPLES:
        raise _too_little()
    p = diffs.shape[0]
    sq = diffs.float().square()  # (P, H, W)
    k = _ENERGY_WINDOW
    energy = F.avg_pool2d(sq[:, None], k, stride=1, padding=k // 2, count_include_pad=False)
    energy = energy.reshape(-1)
    sq = sq.reshape(-1)
    pix_idx = _bin_index(mean, valid, bins)
    idx = torch.where(pix_idx >= 0, pix_idx, bins).reshape(-1).repeat(p)  # bin `bins`: none
    m = mean.float().reshape(-1).repeat(p)
    clip = clipped.reshape(-1)
    grad2 = slope.float().reshape(-1).repeat(p)
    counts = torch.bincount(idx, minlength=bins + 1).double().clamp_min(1)
    clip_share = torch.bincount(idx, weights=clip.double(), minlength=bins + 1) / counts
    usable = clip_share <= 0.02
    usable[bins] = False
    ok = usable[idx] & ~clip
    if int(ok.sum()) < _MIN_SAMPLES:
        raise _too_little()
    # 1. a robust start: per bin, median of d^2 / median(chi2_1) = 2 sigma^2 (Gaussian d)
    # the lines are unweighted: the bins hold equal numbers of samples, so an unweighted line
    # with an intercept keeps their mean variance, and the burst's overall level stays right
    # where the line does not fit exactly (a tone curve bends the variance of developed
    # frames); weighting by 1/v^2 followed the dark bins and came out 5-25 % low on
    # camera-pipeline bursts
    xs, meds = _bin_medians(idx[ok], m[ok], sq[ok], bins)
    a, b = nonnegative_line(xs, meds / _CHI2_1_MEDIAN / 2)
    keep = ok
    for _ in range(3):  # 2. reject motion and outliers against the current line, refit
        expected = 2 * (a + b * m.clamp_min(0))
        keep = ok & (energy < _ENERGY_LIMIT * expected) & (sq < _TAIL_LIMIT * expected)
        # what the first-order shift correction leaves (shift-estimate error, curvature) grows
        # with the slope: leave out the steepest pixels. For Gaussian noise the temporal mean
        # is independent of the differences (x_i and x_0 enter it with equal weights, which
        # cancel), so selecting on it biases nothing; under JPEG, whose noise is stronger in
        # texture, a strict limit would (8 measured as the balance, see estimate_burst_noise)
        keep &= grad2 < _SLOPE_LIMIT * expected / 2
        if int(keep.sum()) < _MIN_SAMPLES:
            raise NothingToEstimate(
                "the burst moves too much to measure its noise: pass --noise (e.g. --noise gain1)"
            )
        xs, means = _bin_means(idx, keep, m, sq, bins)
        a, b = nonnegative_line(xs, means / 2)
    rejected = 1.0 - float(keep.sum()) / float(ok.sum())
    return a, b, rejected


def estimate_burst_noise(
    frames: torch.Tensor,
    shifts: np.ndarray | None = None,
    *,
    bins: int = BURST_BINS,
    max_side: int = BURST_MAX_SIDE,
) -> BurstNoiseEstimate:
    """Measure the noise of a burst ``(N, C, H, W)`` (linear values, N >= 2) from temporal
    differences (issue 23 item 1).

    1. The frames are moved onto frame 0 by whole pixels (``shifts``, as
       :func:`burstkpn.ops.align.estimate_shifts` gives them; estimated when ``None``).
    2. Per channel, the differences ``d_i = x_i - x_0`` of every frame with the reference have
       variance ``2 sigma^2(y)`` where the scene is static; the temporal mean of the frames is
       the intensity ``y``. The sub-pixel part ``r_i`` of the shift the whole-pixel move
       leaves is removed to first order (``d_i -= r_i . grad y``). Differences with a
       clipped frame are left out.
    3. A robust start (per intensity bin, the median of ``d^2``), then three rounds of
       rejecting differences whose local 5x5 energy exceeds 4x the line's prediction (moving
       or misaligned pixels come in patches) or that exceed 5 standard deviations, and pixels
       on steep slopes (squared gradient above 8 sigma^2), then refitting on the mean of
       ``d^2`` per bin.
    4. ``sigma^2 = a + b * x`` per channel, a non-negative least-squares line through the
       bins (:func:`nonnegative_line`, unweighted).

    Measured (``tests/data/degrade/test_estimate_burst.py``; ``benchmarks/burst_noise_estimate.py``
    for the table in the training docs): within 10 % of the reference's true level on
    independent noise at Gains 1-4, with local motion, and on camera-pipeline bursts without
    JPEG; with JPEG at the lowest noise up to about 13 % low, because JPEG removes more noise
    from flat areas than from textured ones, which the slope and motion rejection leave out
    in part. The limits above are the balance of those cases.
    """
    if frames.ndim != 4 or frames.shape[0] < 2:
        raise InputError(
            f"temporal noise estimation needs a burst (N >= 2, C, H, W), got {tuple(frames.shape)}"
        )
    if shifts is None:
        shifts = estimate_shifts(frames)
    shifts = np.asarray(shifts, dtype=np.float64)
    aligned = integer_overlap(frames, shifts, max_side)
    if aligned.shape[-1] < 16 or aligned.shape[-2] < 16:
        raise too_small_error(*frames.shape[-2:])
    # The whole-pixel move leaves frame i off by r_i = shift_i - round(shift_i) (at most half a
    # pixel): d_i = y(p + r_i) - y(p) + noise = r_i . grad y + noise to first order. The
    # gradient of the temporal mean (central differences) removes that signal term, which
    # would otherwise inflate low noise levels on textured scenes.
    residual = torch.from_numpy(shifts - np.rint(shifts)).float()  # (N, 2)
    mean_full = aligned.mean(0)  # (C, H, W)
    grad_y = (mean_full[:, 2:, 1:-1] - mean_full[:, :-2, 1:-1]) / 2
    grad_x = (mean_full[:, 1:-1, 2:] - mean_full[:, 1:-1, :-2]) / 2
    aligned = aligned[..., 1:-1, 1:-1]
    mean = mean_full[:, 1:-1, 1:-1]
    # the ends of the range clip (black level, saturation): a difference with a frame at 0 or
    # 1 is truncated (unclipped synthetic values beyond them are fine; see _channel_line)
    at_bound = (aligned == 0.0) | (aligned == 1.0)  # (N, C, H, W)
    valid = (mean > 0.002) & (mean < 0.98)
    lines, rejected = [], []
    for c in range(aligned.shape[1]):
        signal = (
            residual[1:, 0, None, None] * grad_y[c] + residual[1:, 1, None, None] * grad_x[c]
        ) - (residual[0, 0] * grad_y[c] + residual[0, 1] * grad_x[c])
        diffs = aligned[1:, c] - aligned[0, c] - signal
        clipped = at_bound[1:, c] | at_bound[0, c]
        slope = grad_y[c].square() + grad_x[c].square()
        a, b, r = _channel_line(diffs, mean[c], slope, valid[c], clipped, bins)
        lines.append((math.sqrt(a), b))
        rejected.append(r)
    a_pool = float(np.mean([sr * sr for sr, _ in lines]))
    b_pool = float(np.mean([ss for _, ss in lines]))
    return BurstNoiseEstimate(
        math.sqrt(a_pool), b_pool, tuple(lines), int(frames.shape[0]), float(np.mean(rejected))
    )
