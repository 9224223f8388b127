"""Deformable sampling: K taps per pixel read at learned, fractional positions, bilinearly in an
image ([DeformKernels] eq. 1-4) or trilinearly across the frames of a clip (eq. 6-7).

Conventions (shared by everything in the package that samples at learned offsets)
----------------------------------------------------------------------------------
* Coordinates are in pixels (and frames), ordered like the paper's ``V``: component 0 is ``x``
  (column), 1 is ``y`` (row) and, in 3D, 2 is ``t`` (time, eq. 3-4 and 15). Note that
  ``torchvision.ops.deform_conv2d`` orders its offsets ``(dy, dx)`` instead.
* The **rigid base grid** (eq. 2) of a ``K x K`` kernel has tap ``n = i * K + j`` (row-major, the
  tap order of ``F.unfold`` and :func:`burstkpn.ops.apply_kernels`) at ``(x, y) = (j - r, i - r)``
  with ``r = K // 2``. A ``Kt x K x K`` 3D kernel has tap ``n = (k * K + i) * K + j`` at
  ``(j - r, i - r, time_positions[k])``; the time positions default to the centred integers
  ``k - Kt // 2`` and may be any values (the ``deform3d`` model spreads them over its clip).
* ``offsets`` is ``(B, T, D, H, W)`` (``T`` taps, ``D = 2`` or ``3`` components, per output pixel)
  and tap ``n`` of output pixel ``(y, x)`` reads the input at
  ``(x + base_x[n] + offsets[:, n, 0], y + base_y[n] + offsets[:, n, 1](, base_t[n] +
  offsets[:, n, 2]))`` (eq. 3-4).
* A clip ``(B, F, C, H, W)`` has ``F`` odd frames in temporal order, ``F = 2 tau + 1``, and frame
  ``f`` sits at time ``t = f - tau``: the centre frame is ``t = 0`` (the paper's ``X_0``).
* **Borders: replicate.** Every coordinate is clamped to ``[0, size - 1]`` before interpolating,
  so a tap outside the image (or before the first / after the last frame) reads the nearest
  edge pixel (frame), like ``grid_sample(padding_mode="border")``; its gradient with respect to
  that clamped coordinate is zero. Zero padding would darken every average near the border.

The samplers themselves (the ``gather`` backend with its backward, and ``grid_sample``) are in
:mod:`burstkpn.ops.sampler`.

Precision: both backends compute in float32 for float16 / bfloat16 inputs, also under
``torch.autocast`` (``grid_sample`` in bfloat16 crashed this CPU with a segmentation fault for
8x1x256x256 with a random grid); float64 stays float64 (for ``gradcheck``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from burstkpn.errors import InputError
from burstkpn.ops.precision import compute_dtype
from burstkpn.ops.sampler import gather_sample, grid_sample

__all__ = [
    "BACKENDS",
    "DeformFilter",
    "DeformSample",
    "base_grid",
    "deform_filter",
    "deform_sample",
    "group_filter",
    "sampling_positions",
]

BACKENDS = ("gather", "grid_sample")


# --------------------------------------------------------------------------- grids
def _kernel_dims(kernel_size: int | Sequence[int], dims: int) -> tuple[int, ...]:
    """``(K, K)`` for 2D or ``(Kt, K, K)`` for 3D from an int or a tuple; sizes odd, positive."""
    if isinstance(kernel_size, int):
        sizes = (kernel_size,) * dims
    else:
        sizes = tuple(int(k) for k in kernel_size)
    if len(sizes) != dims or any(k < 1 or k % 2 == 0 for k in sizes):
        raise InputError(f"kernel size must be {dims} odd positive ints, got {kernel_size}")
    if sizes[-1] != sizes[-2]:
        raise InputError(f"the spatial kernel must be square, got {sizes[-2]}x{sizes[-1]}")
    return sizes


def base_grid(
    kernel_size: int | Sequence[int],
    *,
    dims: int = 2,
    time_positions: Sequence[float] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The rigid sampling grid of eq. (2): ``(T, D)`` tap coordinates ``(x, y(, t))`` relative to
    the output pixel, ``T = K * K`` (2D) or ``Kt * K * K`` (3D), taps row-major over
    ``(t,) y, x``. ``time_positions`` (3D only, ``Kt`` values) defaults to ``k - Kt // 2``."""
    if dims not in (2, 3):
        raise InputError(f"dims must be 2 or 3, got {dims}")
    sizes = _kernel_dims(kernel_size, dims)
    k = sizes[-1]
    r = k // 2
    ij = torch.arange(k, dtype=dtype, device=device) - r
    ys = ij.repeat_interleave(k)  # row i of tap i * K + j
    xs = ij.repeat(k)
    if dims == 2:
        if time_positions is not None:
            raise InputError("time_positions are for 3D kernels only")
        return torch.stack([xs, ys], dim=1)
    kt = sizes[0]
    if time_positions is None:
        ts = torch.arange(kt, dtype=dtype, device=device) - kt // 2
    else:
        ts = torch.as_tensor(list(time_positions), dtype=dtype, device=device)
        if ts.shape != (kt,):
            raise InputError(f"need {kt} time positions, got {len(ts)}")
    per = k * k
    return torch.stack([xs.repeat(kt), ys.repeat(kt), ts.repeat_interleave(per)], dim=1)


def sampling_positions(offsets: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """Absolute sampling coordinates (eq. 3-4): ``(B, T, D, H, W)`` with
    ``pos[:, n, 0] = x + base[n, 0] + offsets[:, n, 0]``, ``pos[:, n, 1] = y + base[n, 1] +
    offsets[:, n, 1]`` and, in 3D, ``pos[:, n, 2] = base[n, 2] + offsets[:, n, 2]`` (time relative
    to the centre frame, not yet shifted to a frame index)."""
    if offsets.ndim != 5:
        raise InputError(f"offsets must be (B, T, D, H, W), got shape {tuple(offsets.shape)}")
    _, t, d, h, w = offsets.shape
    if base.shape != (t, d):
        raise InputError(f"base grid of shape {tuple(base.shape)} does not fit offsets ({t}, {d})")
    base = base.to(offsets)
    pixel = torch.zeros(d, h, w, dtype=offsets.dtype, device=offsets.device)
    pixel[0] = torch.arange(w, dtype=offsets.dtype, device=offsets.device)
    pixel[1] = torch.arange(h, dtype=offsets.dtype, device=offsets.device)[:, None]
    return offsets + (pixel + base[:, :, None, None])


# --------------------------------------------------------------------------- sampling
def deform_sample(
    x: torch.Tensor,
    offsets: torch.Tensor,
    kernel_size: int | Sequence[int],
    *,
    time_positions: Sequence[float] | None = None,
    backend: str = "gather",
) -> torch.Tensor:
    """Sample ``T`` taps per output pixel at the rigid grid plus learned offsets (eq. 3-4, 7).

    Args:
        x: an image ``(B, C, H, W)`` (bilinear, eq. 1-4) or a clip ``(B, F, C, H, W)`` of ``F``
            odd frames in temporal order, the centre frame at time 0 (trilinear, eq. 6-7).
        offsets: ``(B, T, 2, H, W)`` for an image, ``(B, T, 3, H, W)`` for a clip, components
            ``(dx, dy(, dt))`` in pixels / frames (module docstring).
        kernel_size: ``K`` (``T = K * K``) for an image; ``Kt`` / ``(Kt, K, K)`` for a clip
            (``T = Kt * K * K``).
        time_positions: the ``Kt`` base times of a 3D kernel (default ``k - Kt // 2``).
        backend: ``"gather"`` (exact at integer positions, the default) or ``"grid_sample"``.

    Returns:
        ``(B, C, T, H, W)``: ``out[:, c, n, y, x]`` is the input interpolated at tap ``n``'s
        position, coordinates clamped to the image / clip (replicate borders). Differentiable in
        ``x`` and ``offsets``; float32 for reduced-precision inputs (also under autocast).
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown sampling backend '{backend}' (use one of {', '.join(BACKENDS)})")
    if x.ndim not in (4, 5):
        raise InputError(f"expected an image (B, C, H, W) or a clip (B, F, C, H, W), got {x.ndim}D")
    dims = 2 if x.ndim == 4 else 3
    sizes_k = _kernel_dims(kernel_size, dims)
    taps = 1
    for k in sizes_k:
        taps *= k
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    if offsets.shape != (b, taps, dims, h, w):
        raise InputError(
            f"offsets of shape {tuple(offsets.shape)} do not fit input {tuple(x.shape)}: "
            f"expected {(b, taps, dims, h, w)}"
        )
    if dims == 3 and x.shape[1] % 2 == 0:
        raise InputError(f"a clip needs an odd number of frames (2 tau + 1), got {x.shape[1]}")
    dtype = compute_dtype(x, offsets, error=InputError)
    with torch.autocast(x.device.type, enabled=False):
        x, offsets = x.to(dtype), offsets.to(dtype)
        base = base_grid(
            sizes_k, dims=dims, time_positions=time_positions, dtype=dtype, device=x.device
        )
        positions = sampling_positions(offsets, base)
        if dims == 3:
            frames = x.shape[1]
            # time relative to the centre frame -> frame index
            shift = torch.tensor([0.0, 0.0, (frames - 1) / 2], dtype=dtype, device=x.device)
            positions = positions + shift.view(1, 1, 3, 1, 1)
            x = x.transpose(1, 2)  # (B, C, F, H, W)
            sizes = (w, h, frames)
        else:
            sizes = (w, h)
        if backend == "grid_sample":
            return grid_sample(x.contiguous(), positions, sizes)
        flat = x.reshape(b, x.shape[1], -1)
        return gather_sample(flat, positions.contiguous(), sizes)


# --------------------------------------------------------------------------- filtering
def _check_weights(samples: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``weights`` ``(B, T, H, W)`` (shared by channels) or ``(B, C, T, H, W)`` -> 5-D."""
    if weights.ndim == 4:
        weights = weights.unsqueeze(1)
    if (
        weights.ndim != 5
        or weights.shape[0] != samples.shape[0]
        or weights.shape[2:] != (samples.shape[2:])
    ):
        raise InputError(
            f"weights of shape {tuple(weights.shape)} do not fit samples {tuple(samples.shape)}"
        )
    return weights


def group_filter(
    samples: torch.Tensor, weights: torch.Tensor, groups: int = 1, *, scale: bool = True
) -> torch.Tensor:
    """Weighted sums of the samples per tap group (eq. 1 / 6, and eq. 10 for ``groups > 1``).

    ``samples`` ``(B, C, T, H, W)`` (from :func:`deform_sample`), ``weights`` ``(B, T, H, W)`` or
    ``(B, C, T, H, W)``. The taps are split into ``groups`` contiguous chunks of ``T / groups``
    (for a 3D kernel with ``groups = Kt``, one chunk per temporal slice of the base grid) and
    ``Y_i = groups * sum_{n in chunk i} samples_n * weights_n`` (the multiplier ``s`` of eq. 10
    matches the scale of ``Y``). Returns ``(B, groups, C, H, W)``; their mean is eq. (6)'s ``Y``.
    ``scale=False`` leaves out the factor ``groups``: then the sum over groups is ``Y`` exactly
    (no rounding from multiplying and dividing by ``groups``)."""
    weights = _check_weights(samples, weights)
    b, c, t, h, w = samples.shape
    if groups < 1 or t % groups:
        raise InputError(f"{t} taps cannot be split into {groups} equal groups")
    dtype = compute_dtype(samples, weights, error=InputError)
    prod = samples.to(dtype) * weights.to(dtype)
    per = prod.view(b, c, groups, t // groups, h, w).sum(3).transpose(1, 2)
    return per * groups if scale else per


def deform_filter(
    x: torch.Tensor,
    offsets: torch.Tensor,
    weights: torch.Tensor,
    kernel_size: int | Sequence[int],
    *,
    time_positions: Sequence[float] | None = None,
    backend: str = "gather",
) -> torch.Tensor:
    """The deformable kernel itself, eq. (1) for an image and eq. (6) for a clip:
    ``Y(y, x) = sum_n X(sampled at tap n) F(y, x, n)``. ``x`` and ``offsets`` as in
    :func:`deform_sample`, ``weights`` ``(B, T, H, W)`` (shared by the channels) or
    ``(B, C, T, H, W)``. Returns ``(B, C, H, W)``."""
    samples = deform_sample(x, offsets, kernel_size, time_positions=time_positions, backend=backend)
    return group_filter(samples, weights, 1)[:, 0]


class DeformSample(nn.Module):
    """Module form of :func:`deform_sample` (no parameters): ``forward(x, offsets)``."""

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        *,
        time_positions: Sequence[float] | None = None,
        backend: str = "gather",
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise InputError(f"unknown sampling backend '{backend}'")
        self.kernel_size = kernel_size
        self.time_positions = None if time_positions is None else tuple(time_positions)
        self.backend = backend

    def forward(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return deform_sample(
            x,
            offsets,
            self.kernel_size,
            time_positions=self.time_positions,
            backend=self.backend,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, backend={self.backend}"


class DeformFilter(DeformSample):
    """Module form of :func:`deform_filter`: ``forward(x, offsets, weights)``."""

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        return deform_filter(
            x,
            offsets,
            weights,
            self.kernel_size,
            time_positions=self.time_positions,
            backend=self.backend,
        )
