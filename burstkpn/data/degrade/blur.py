"""Motion blur: random camera-shake kernels (:func:`motion_blur_kernel`) and the convolution of
an image with a point spread function, same size (:func:`blur_image`) or the valid part only
(:func:`convolve_valid`, float64 FFT, for byte-reproducible test sets). Used by the synthetic
blur pairs of :mod:`burstkpn.data.datasets` and the deblurring test set."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from burstkpn.errors import InputError


def motion_blur_kernel(
    size: int,
    generator: torch.Generator,
    *,
    extent: float | tuple[float, float] | None = None,
    steps: int = 32,
    momentum: float = 0.8,
    jitter: float = 0.5,
) -> torch.Tensor:
    """A random camera-shake / motion-blur kernel ``(size, size)`` (float32, sums to 1, >= 0).

    The camera path is a random walk with momentum, uniform in time: velocity ``v_0`` a unit
    vector at a uniformly random angle, then ``v_t = momentum * v_{t-1} + jitter * n_t`` with
    ``n_t ~ N(0, I)``, position ``p_t = p_{t-1} + v_t`` for ``t = 1..steps``. High momentum
    gives smooth, nearly straight strokes; more jitter gives curved, shaky ones; speed changes
    along the path make the exposure (kernel mass) uneven, as in real shake. The path is
    sampled at the middle of ``n`` equal time slots per step, ``n`` chosen so samples are at
    most 1/4 pixel apart; the samples are centred on their mean and scaled so they reach
    ``extent`` pixels from it (Chebyshev distance; drawn uniformly from a ``(lo, hi)`` pair,
    default ``(1, (size - 1) / 2)``), and splatted bilinearly (sub-pixel accurate: bilinear
    splatting keeps the centroid) with equal weights. The kernel's centroid is therefore
    exactly the centre pixel, so a blurred image is not shifted against its sharp original.
    ``size`` must be odd (a centre pixel). ``extent=0`` gives the identity kernel.
    """
    if size < 1 or size % 2 == 0:
        raise InputError(f"blur kernel size must be odd and positive, got {size}")
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    half = (size - 1) / 2
    if extent is None:
        extent = (min(1.0, half), half)
    if isinstance(extent, (tuple, list)):
        lo, hi = (float(e) for e in extent)
        extent = lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))
    extent = float(extent)
    if not 0 <= extent <= half:
        raise InputError(f"blur extent must lie in [0, {half:g}] for a {size}x{size} kernel")
    dt = torch.float64
    angle = 2 * math.pi * float(torch.rand((), generator=generator, dtype=dt))
    noise = torch.randn(steps, 2, generator=generator, dtype=dt)
    v = torch.tensor([math.sin(angle), math.cos(angle)], dtype=dt)  # (dy, dx)
    points = [torch.zeros(2, dtype=dt)]
    for t in range(steps):
        v = momentum * v + jitter * noise[t]
        points.append(points[-1] + v)
    path = torch.stack(points)  # (steps + 1, 2)
    radius = (path - path.mean(0)).abs().max()
    if extent == 0 or radius == 0:
        kernel = torch.zeros(size, size)
        kernel[size // 2, size // 2] = 1.0
        return kernel
    path = path * (extent / radius)
    seg = path[1:] - path[:-1]
    n = max(1, math.ceil(float(seg.norm(dim=1).max()) * 4))  # samples <= 1/4 px apart
    frac = (torch.arange(n, dtype=dt) + 0.5) / n
    samples = (path[:-1, None] + frac[None, :, None] * seg[:, None]).reshape(-1, 2)
    samples = samples - samples.mean(0)
    samples = samples * (extent / samples.abs().max()) + half  # kernel coordinates
    # bilinear splat; the clamp keeps a sample on the last row / column in range
    base = samples.floor().clamp(0, size - 2)
    f = samples - base
    iy, ix = base[:, 0].long(), base[:, 1].long()
    kernel = torch.zeros(size, size, dtype=dt)
    for dy, dx, wgt in (
        (0, 0, (1 - f[:, 0]) * (1 - f[:, 1])),
        (0, 1, (1 - f[:, 0]) * f[:, 1]),
        (1, 0, f[:, 0] * (1 - f[:, 1])),
        (1, 1, f[:, 0] * f[:, 1]),
    ):
        kernel.index_put_((iy + dy, ix + dx), wgt, accumulate=True)
    kernel = kernel.clamp_min(0)
    return (kernel / kernel.sum()).float()


def blur_image(image: torch.Tensor, kernel: torch.Tensor, mode: str = "reflect") -> torch.Tensor:
    """Convolve every channel of ``image`` ``(C, H, W)`` or ``(B, C, H, W)`` with the point
    spread function ``kernel`` ``(K, K)`` (odd K; a point at ``p`` spreads to ``p + u`` with
    weight ``kernel[c + u]``, c the centre). ``mode="valid"`` returns only the pixels whose
    neighbourhood lies inside the image (``H - K + 1`` rows); ``"reflect"`` keeps the size."""
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise InputError(f"blur kernel must be square with odd size, got {tuple(kernel.shape)}")
    if mode not in ("valid", "reflect"):
        raise InputError(f"unknown blur mode '{mode}' (use 'valid' or 'reflect')")
    squeeze = image.ndim == 3
    x = image[None] if squeeze else image
    if x.ndim != 4:
        raise InputError(f"expected an image (C, H, W) or (B, C, H, W), got {tuple(image.shape)}")
    b, c, h, w = x.shape
    k = kernel.shape[0]
    x = x.reshape(b * c, 1, h, w)
    if mode == "reflect":
        r = k // 2
        x = F.pad(x, (r, r, r, r), mode="reflect" if r < min(h, w) else "replicate")
    weight = kernel.flip(0, 1).to(x.dtype)[None, None]  # conv2d correlates: flip for convolution
    y = F.conv2d(x, weight)
    y = y.reshape(b, c, *y.shape[-2:])
    return y[0] if squeeze else y


def convolve_valid(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Every channel of ``image`` ``(C, H, W)`` convolved with ``kernel`` ``(K, K)``, the valid
    part only ``(C, H - K + 1, W - K + 1)``; float64 FFT, deterministic (equals
    :func:`blur_image` with ``mode="valid"``)."""
    from scipy.signal import fftconvolve

    k = kernel.double().numpy()
    planes = [fftconvolve(p, k, mode="valid") for p in image.double().numpy()]
    return torch.from_numpy(np.stack(planes)).float()
