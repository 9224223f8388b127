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

Implementation
--------------
The default ``backend="gather"`` is a custom autograd function: the forward gathers the
``2^D`` corners of every sample and blends them with the (bi/tri)linear weights
``max(0, 1 - |d|)`` of eq. (7); the backward is appendix A of the paper, eq. (12)-(15) (scatter of
the weighted output gradient into the image, and the difference of the corners along each axis
for the coordinates). It computes the fractional part exactly, so integer positions (zero
offsets) return input pixels bit for bit, which ``grid_sample``'s normalised coordinates do not
(its round trip through ``[-1, 1]`` is off by about 1e-7). ``backend="grid_sample"`` uses
:func:`torch.nn.functional.grid_sample` (``align_corners=False``, ``padding_mode="border"``): the
same numbers to float rounding.

Precision: both backends compute in float32 for float16 / bfloat16 inputs, also under
``torch.autocast`` (``grid_sample`` in bfloat16 crashed this CPU with a segmentation fault for
8x1x256x256 with a random grid); float64 stays float64 (for ``gradcheck``).

Memory: the result ``(B, C, T, H, W)`` is the only tensor of that size built in the forward (the
models need the sampled pixels themselves: they feed the weight-prediction layers); the function
saves only the image and the ``(B, T, D, H, W)`` positions for the backward and recomputes the
rest, one corner at a time. Index tensors are ``(B, T, H, W)`` int64, one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from burstkpn.errors import InputError

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
_REDUCED = (torch.float16, torch.bfloat16)


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


# --------------------------------------------------------------------------- the sampler
def _axes(positions: torch.Tensor, sizes: Sequence[int]):
    """Per axis (x, y(, t)): the clamped coordinate, its low corner index (long) and the
    fraction in [0, 1] (border clamp, see module docstring)."""
    out = []
    for a, size in enumerate(sizes):
        clamped = positions[:, :, a].clamp(0, size - 1)
        lo = clamped.floor().clamp_(max=max(size - 2, 0))
        frac = clamped - lo  # exact: 0 at integer positions, 1 only at the last pixel
        out.append((clamped, lo.long(), frac))
    return out


def _flat_index(axes, strides: Sequence[int], b: int) -> torch.Tensor:
    """Index of every sample's low corner in the flattened input, ``(B, 1, T * H * W)``."""
    idx = axes[0][1]  # the low corners are fresh tensors, used only here: add in place
    for (_, lo, _), stride in zip(axes[1:], strides[1:], strict=True):
        idx.add_(lo, alpha=stride)
    return idx.view(b, 1, -1)


def _corner_view(flat: torch.Tensor, corner: tuple[int, ...], sizes, strides) -> torch.Tensor:
    """``flat`` shifted so that the low-corner index reads ``corner``: a view, no index math
    (the low corner is at most ``size - 2`` on every axis longer than one)."""
    shift = sum(s for bit, size, s in zip(corner, sizes, strides, strict=True) if bit and size > 1)
    return flat[:, :, shift:]


def _corner_weights(axes, corner: tuple[int, ...]) -> list[torch.Tensor]:
    return [frac if bit else 1 - frac for (_, _, frac), bit in zip(axes, corner, strict=True)]


def _corners(dims: int):
    """All ``2^D`` corners as tuples of 0 / 1 per axis."""
    return [tuple((c >> a) & 1 for a in range(dims)) for c in range(2**dims)]


def _product(factors: Sequence[torch.Tensor]) -> torch.Tensor:
    out = factors[0]
    for f in factors[1:]:
        out = out * f
    return out


class _DeformSampleFunction(torch.autograd.Function):
    """``x`` ``(B, C, L)`` (the image or clip flattened, ``L = (F *) H * W``), ``positions``
    ``(B, T, D, H, W)`` in pixels / frame indices, ``sizes`` ``(W, H(, F))``.
    Returns ``(B, C, T, H, W)``: eq. (7) with ``max(0, 1 - |d|)`` weights."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, positions: torch.Tensor, sizes: tuple[int, ...]):
        b, c, _ = x.shape
        _, t, d, h, w = positions.shape
        strides = [1, sizes[0], sizes[0] * sizes[1]][:d]
        axes = _axes(positions, sizes)
        idx = _flat_index(axes, strides, b).expand(b, c, -1)
        out = None
        for corner in _corners(d):
            vals = _corner_view(x, corner, sizes, strides).gather(2, idx)
            weight = _product(_corner_weights(axes, corner)).view(b, 1, -1)
            out = vals.mul_(weight) if out is None else out.addcmul_(vals, weight)
        ctx.save_for_backward(x, positions)
        ctx.sizes = sizes
        return out.view(b, c, t, h, w)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        x, positions = ctx.saved_tensors
        sizes = ctx.sizes
        need_x, need_pos = ctx.needs_input_grad[:2]
        b, c, _ = x.shape
        d = positions.shape[2]
        strides = [1, sizes[0], sizes[0] * sizes[1]][:d]
        axes = _axes(positions, sizes)
        idx = _flat_index(axes, strides, b).expand(b, c, -1)
        g = grad_out.reshape(b, c, -1)
        grad_x = torch.zeros_like(x) if need_x else None
        grad_pos = [None] * d
        for corner in _corners(d):
            factors = _corner_weights(axes, corner)
            if need_x:  # eq. (12) transposed: scatter the weighted output gradient
                weight = _product(factors).view(b, 1, -1)
                _corner_view(grad_x, corner, sizes, strides).scatter_add_(2, idx, g * weight)
            if need_pos:  # eq. (13)-(15): d weight / d coordinate = +-(product of the others)
                vals = _corner_view(x, corner, sizes, strides).gather(2, idx)
                gv = vals.mul_(g) if c == 1 else (g * vals).sum(1, keepdim=True)
                gv = gv.view_as(factors[0])
                for a in range(d):
                    term = _product([gv] + [f for o, f in enumerate(factors) if o != a])
                    if grad_pos[a] is None:
                        grad_pos[a] = term if corner[a] else -term
                    elif corner[a]:
                        grad_pos[a].add_(term)
                    else:
                        grad_pos[a].sub_(term)
        grad_positions = None
        if need_pos:  # zero where the coordinate was clamped (outside the image or clip)
            inside = [(clamped == positions[:, :, a]) for a, (clamped, _, _) in enumerate(axes)]
            grad_positions = torch.stack(
                [gp.mul_(m) for gp, m in zip(grad_pos, inside, strict=True)], dim=2
            )
        return grad_x, grad_positions, None


def _grid_sample(x: torch.Tensor, positions: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """The same sampling with ``F.grid_sample`` (``x`` ``(B, C, H, W)`` or ``(B, C, F, H, W)``)."""
    b, t, d, h, w = positions.shape
    # pixel centres -> [-1, 1] (align_corners=False); "border" clamps to [0, size - 1] in pixels
    norm = [(2 * positions[:, :, a] + 1) / sizes[a] - 1 for a in range(d)]
    grid = torch.stack(norm, dim=-1)  # (B, T, H, W, D), components (x, y(, t))
    if d == 2:
        out = F.grid_sample(x, grid.view(b, t * h, w, 2), "bilinear", "border", align_corners=False)
        return out.view(b, x.shape[1], t, h, w)
    # 5-D input: mode "bilinear" is trilinear (eq. 7)
    return F.grid_sample(x, grid, "bilinear", "border", align_corners=False)


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    for tensor in tensors:
        if not tensor.is_floating_point():
            raise InputError(f"expected floating-point tensors, got {tensor.dtype}")
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return torch.float32 if dtype in _REDUCED else dtype


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
    dtype = _compute_dtype(x, offsets)
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
            return _grid_sample(x.contiguous(), positions, sizes)
        flat = x.reshape(b, x.shape[1], -1)
        return _DeformSampleFunction.apply(flat, positions.contiguous(), sizes)


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
    dtype = _compute_dtype(samples, weights)
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
