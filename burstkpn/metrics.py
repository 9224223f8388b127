"""Image-quality metrics with one convention for the whole package.

PSNR and SSIM are computed on sRGB-gamma-corrected images ([DeformKernels] eq. 8) clipped
to [0, 1], ignoring an 8-pixel border, per image and then averaged over the batch (never pooled
over the batch). SSIM is Wang et al.'s: an 11x11 Gaussian window with sigma 1.5, K1 = 0.01,
K2 = 0.03, population covariances, the mean of the SSIM map over valid window positions,
averaged over colour channels. These match scikit-image's ``peak_signal_noise_ratio`` and
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1)`` (tested to 1e-4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from burstkpn.data.io.images import linear_to_srgb

BORDER = 8


def prepare(x: torch.Tensor, *, linear: bool = True, border: int = BORDER) -> torch.Tensor:
    """``(B, C, H, W)`` or ``(C, H, W)`` -> float64 ``(B, C, H', W')``: gamma-corrected (when
    ``linear``), clipped to [0, 1] and with ``border`` pixels removed on each side."""
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    x = x.detach().to(torch.float64)
    if linear:
        x = linear_to_srgb(x)
    x = x.clamp(0, 1)
    if border:
        if x.shape[-2] <= 2 * border or x.shape[-1] <= 2 * border:
            raise ValueError(f"image {tuple(x.shape[-2:])} too small for a {border}-pixel border")
        x = x[..., border:-border, border:-border]
    return x


def _prepare_pair(
    pred: torch.Tensor, target: torch.Tensor, linear: bool, border: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`prepare` of a prediction and its ground truth."""
    p = prepare(pred, linear=linear, border=border)
    return p, prepare(target, linear=linear, border=border)


def psnr(
    pred: torch.Tensor, target: torch.Tensor, *, linear: bool = True, border: int = BORDER
) -> torch.Tensor:
    """PSNR in dB per image, ``(B,)`` (data range 1 after gamma correction and clipping)."""
    p, t = _prepare_pair(pred, target, linear, border)
    mse = (p - t).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


DARK = 0.15  # sRGB level below which a clean pixel counts as shadow (issue 22's bias check)
DARK_REACH = 7  # px: a dark region's inside is dark within a 15 x 15 neighbourhood


def dark_bias(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    threshold: float = DARK,
    reach: int = 0,
    linear: bool = True,
    border: int = BORDER,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Brightness error in the shadows, per image: the mean signed error
    ``sRGB(pred) - sRGB(target)`` over the values (pixels x channels) whose ``target`` sRGB
    value is below ``threshold`` (positive: brighter than the truth; NaN where an image has
    none), and how many values that is, ``((B,), (B,))``. Same preparation as :func:`psnr`.
    Pool over images as ``sum(bias * count) / sum(count)``.

    Selecting pixels by their true value favours dark *details* (a dark line in a bright
    area), where any denoiser that averages neighbours errs upwards (regression to the mean),
    so BM3D and NLM show a positive bias here too. ``reach > 0`` keeps only values whose whole
    ``(2 reach + 1)^2`` neighbourhood in the target is below ``threshold``: the inside of dark
    regions, where the error is a brightness shift rather than lost detail."""
    p, t = _prepare_pair(pred, target, linear, border)
    if reach > 0:
        t_max = F.max_pool2d(t, 2 * reach + 1, stride=1, padding=reach)
        mask = (t_max < threshold).flatten(1)
    else:
        mask = (t < threshold).flatten(1)
    count = mask.sum(1)
    total = ((p - t).flatten(1) * mask).sum(1)
    return total / count.clamp(min=1) + torch.where(count > 0, 0.0, float("nan")), count


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    linear: bool = True,
    border: int = BORDER,
    window: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """SSIM per image, ``(B,)`` (Wang et al. 2004, Gaussian window; see module docstring)."""
    x, y = _prepare_pair(pred, target, linear, border)
    b, c, h, w = x.shape
    if h < window or w < window:
        raise ValueError(f"image {h}x{w} (after the border) is smaller than the SSIM window")
    k = _gaussian_window(window, sigma).to(x.device)[None, None].expand(c, 1, window, window)

    def filt(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, k, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx * mx
    vy = filt(y * y) - my * my
    cxy = filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(2).mean(2).mean(1)
