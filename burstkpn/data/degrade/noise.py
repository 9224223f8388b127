"""The heteroscedastic (shot + read) noise model in linear light, the noise-map estimate, and
the named noise levels of the papers.

[AME-KPN] section 3.1 (after Mildenhall et al.): a measured pixel is
``x ~ N(y, sigma_r^2 + sigma_s * y)`` with y the true linear intensity; the network is given
``sigma_hat = sqrt(sigma_r^2 + sigma_s * max(x, 0))`` computed from the noisy reference (eq. 1).
:func:`correlated_noise` gives the unit-variance noise low-pass filtered in space (as demosaicing
and JPEG leave real sRGB noise) for the synthetic noisy pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from burstkpn.errors import InputError


@dataclass(frozen=True)
class NoiseLevel:
    """Read-noise standard deviation ``sigma_r`` and shot-noise gain ``sigma_s`` (both in units
    of linear intensity in [0, 1])."""

    name: str
    sigma_r: float
    sigma_s: float
    source: str = ""


NOISE_LEVELS: dict[str, NoiseLevel] = {
    # [AME-KPN] Table 1 footnote. Gain 4 sigma_s = 2.3e-2 is the paper's value; the authors'
    # public code uses 4.3e-2 instead. Gains 3 and 4 lie outside the training range.
    "gain1": NoiseLevel("gain1", 5e-3, 1e-3, "[AME-KPN] Table 1"),
    "gain2": NoiseLevel("gain2", 2e-2, 4.3e-3, "[AME-KPN] Table 1"),
    "gain3": NoiseLevel("gain3", 5e-2, 1e-2, "[AME-KPN] Table 1"),
    "gain4": NoiseLevel("gain4", 8e-2, 2.3e-2, "[AME-KPN] Table 1"),
    # [DeformKernels] Tables 2-3 captions.
    "low": NoiseLevel("low", 1e-2, 2.5e-3, "[DeformKernels] Tables 2-3"),
    "high": NoiseLevel("high", 2e-2, 6.4e-3, "[DeformKernels] Tables 2-3"),
}

# Training ranges ([AME-KPN] section 3.1, [DeformKernels] section 5).
TRAIN_SIGMA_R = (1e-3, 10**-1.5)
TRAIN_SIGMA_S = (1e-4, 1e-2)


def parse_noise(spec: str | NoiseLevel) -> NoiseLevel:
    """``"gain3"`` / ``"low"`` (a named level) or ``"SIGMA_R,SIGMA_S"`` (e.g. ``"0.02,0.004"``)."""
    if isinstance(spec, NoiseLevel):
        return spec
    key = spec.strip().lower()
    if key in NOISE_LEVELS:
        return NOISE_LEVELS[key]
    parts = key.split(",")
    if len(parts) == 2:
        try:
            sigma_r, sigma_s = float(parts[0]), float(parts[1])
        except ValueError:
            sigma_r = sigma_s = math.nan
        if math.isfinite(sigma_r) and math.isfinite(sigma_s) and sigma_r >= 0 and sigma_s >= 0:
            return NoiseLevel(f"r{sigma_r:g}_s{sigma_s:g}", sigma_r, sigma_s, "user")
    raise InputError(
        f"unknown noise level '{spec}': use one of {', '.join(NOISE_LEVELS)} "
        "or SIGMA_R,SIGMA_S with two non-negative numbers"
    )


def sample_noise_params(
    batch: int,
    generator: torch.Generator,
    sigma_r_range: tuple[float, float] = TRAIN_SIGMA_R,
    sigma_s_range: tuple[float, float] = TRAIN_SIGMA_S,
    log_uniform: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``batch`` pairs ``(sigma_r, sigma_s)`` as float32 tensors of shape ``(batch,)``.

    Log-uniform by default: the ranges span 1.5 and 2 decades, and a uniform draw would spend
    87 % of ``sigma_r`` samples above 5e-3 (Gain 1's read noise) and nearly all ``sigma_s``
    samples above 1e-3 (91 %), so the low-noise end that real daylight bursts live in would
    hardly be seen. Log-uniform sampling gives each decade equal weight; the papers write the
    ranges as powers of ten, which reads naturally as a range of exponents.
    ``log_uniform=False`` gives the literal uniform reading of [AME-KPN] section 3.1.
    """
    u = torch.rand(2, batch, generator=generator, dtype=torch.float64)

    def draw(lo: float, hi: float, t: torch.Tensor) -> torch.Tensor:
        if log_uniform:
            return 10 ** (math.log10(lo) + t * (math.log10(hi) - math.log10(lo)))
        return lo + t * (hi - lo)

    return draw(*sigma_r_range, u[0]).float(), draw(*sigma_s_range, u[1]).float()


def _as_batch_param(p: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A scalar or per-batch ``(B,)`` parameter reshaped to broadcast over ``like``."""
    t = torch.as_tensor(p, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t
    if t.ndim != 1 or t.shape[0] != like.shape[0]:
        raise InputError(
            f"noise parameter of shape {tuple(t.shape)} does not match batch {like.shape[0]}"
        )
    return t.view(-1, *([1] * (like.ndim - 1)))


def noise_variance(
    clean: torch.Tensor, sigma_r: float | torch.Tensor, sigma_s: float | torch.Tensor
) -> torch.Tensor:
    """Per-pixel variance ``sigma_r^2 + sigma_s * y`` (y clamped at 0)."""
    sr = _as_batch_param(sigma_r, clean)
    ss = _as_batch_param(sigma_s, clean)
    return sr * sr + ss * clean.clamp_min(0)


def add_noise(
    clean: torch.Tensor,
    sigma_r: float | torch.Tensor,
    sigma_s: float | torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """Draw ``x ~ N(y, sigma_r^2 + sigma_s * y)`` independently for every element of ``clean``
    (linear light; [AME-KPN] section 3.1). ``sigma_r`` / ``sigma_s`` are scalars or ``(B,)``
    tensors for the leading batch dimension. The result is not clipped."""
    eps = torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device)
    return clean + eps * noise_variance(clean, sigma_r, sigma_s).sqrt()


def estimate_noise_map(
    noisy: torch.Tensor, sigma_r: float | torch.Tensor, sigma_s: float | torch.Tensor
) -> torch.Tensor:
    """``sigma_hat = sqrt(sigma_r^2 + sigma_s * max(x, 0))`` from a noisy image ([AME-KPN]
    section 3.1 and eq. 1; the network's extra input is this map of the reference frame)."""
    return noise_variance(noisy, sigma_r, sigma_s).sqrt()


def correlated_noise(
    shape: tuple[int, ...], correlation: float, generator: torch.Generator
) -> torch.Tensor:
    """Unit-variance Gaussian noise of ``shape`` (last two dims spatial), low-pass filtered by a
    Gaussian of standard deviation ``correlation`` pixels and rescaled to unit variance per pixel
    (white for 0). Demosaicing and JPEG make real sRGB camera noise spatially correlated."""
    if correlation <= 0:
        return torch.randn(shape, generator=generator)
    r = max(1, math.ceil(3 * correlation))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g1 = torch.exp(-0.5 * (t / correlation) ** 2)
    g2 = g1[:, None] * g1[None, :]
    g2 = (g2 / g2.square().sum().sqrt()).float()  # sum of squares 1: variance preserved
    *lead, h, w = shape
    white = torch.randn(math.prod(lead), 1, h + 2 * r, w + 2 * r, generator=generator)
    return F.conv2d(white, g2[None, None]).reshape(shape)
