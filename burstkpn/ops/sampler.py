"""The two backends of :func:`burstkpn.ops.deform.deform_sample`: (bi/tri)linear sampling at
absolute positions ([DeformKernels] eq. 3-4 and 7) with replicate borders (the conventions are
:mod:`burstkpn.ops.deform`'s).

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

Memory: the result ``(B, C, T, H, W)`` is the only tensor of that size built in the forward (the
models need the sampled pixels themselves: they feed the weight-prediction layers); the function
saves only the image and the ``(B, T, D, H, W)`` positions for the backward and recomputes the
rest, one corner at a time. Index tensors are ``(B, T, H, W)`` int64, one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["gather_sample", "grid_sample"]


def _axes(positions: torch.Tensor, sizes: Sequence[int]):
    """Per axis (x, y(, t)): the clamped coordinate, its low corner index (long) and the
    fraction in [0, 1] (border clamp, :mod:`burstkpn.ops.deform`)."""
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


class _GatherSample(torch.autograd.Function):
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


def grid_sample(x: torch.Tensor, positions: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """The ``grid_sample`` backend: ``x`` ``(B, C, H, W)`` or ``(B, C, F, H, W)``, ``positions``
    and ``sizes`` as :func:`gather_sample` takes them; returns ``(B, C, T, H, W)``."""
    b, t, d, h, w = positions.shape
    # pixel centres -> [-1, 1] (align_corners=False); "border" clamps to [0, size - 1] in pixels
    norm = [(2 * positions[:, :, a] + 1) / sizes[a] - 1 for a in range(d)]
    grid = torch.stack(norm, dim=-1)  # (B, T, H, W, D), components (x, y(, t))
    if d == 2:
        out = F.grid_sample(x, grid.view(b, t * h, w, 2), "bilinear", "border", align_corners=False)
        return out.view(b, x.shape[1], t, h, w)
    # 5-D input: mode "bilinear" is trilinear (eq. 7)
    return F.grid_sample(x, grid, "bilinear", "border", align_corners=False)


def gather_sample(x: torch.Tensor, positions: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """The ``gather`` backend: ``x`` ``(B, C, L)`` (the image or clip flattened,
    ``L = (F *) H * W``), ``positions`` ``(B, T, D, H, W)`` in pixels / frame indices, ``sizes``
    ``(W, H(, F))``; returns ``(B, C, T, H, W)``, differentiable in ``x`` and ``positions``
    (appendix A, eq. 12-15)."""
    return _GatherSample.apply(x, positions, sizes)
