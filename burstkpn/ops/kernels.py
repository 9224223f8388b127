"""Per-pixel kernel application ("adaptive convolution"), the inner term ``X_i ⊛ K_i`` of
[AME-KPN] eq. (4), for KPN, MKPN and AME-KPN.

Convention (used by every model in the package)
-----------------------------------------------
``frames`` is ``(B, N, C, H, W)``; ``kernels`` is ``(B, N, T, H, W)`` (one kernel per pixel shared
by all colour channels) or ``(B, N, C, T, H, W)`` (one per channel), with ``T = K * K`` and ``K``
odd. With ``r = K // 2`` and ``P`` the frames padded by ``r`` on each side with
``F.pad(mode="reflect")`` (``d c b | a b c d | c b a``, the same as scipy.ndimage's ``"mirror"``;
``"replicate"`` when ``H <= r`` or ``W <= r``, where reflection is undefined)::

    out[b, n, c, y, x] = sum_{i, j = 0..K-1} kernels[b, n, (c,) i * K + j, y, x]
                                             * P[b, n, c, y + i, x + j]

so tap ``t = i * K + j`` (row-major) reads the frame at offset ``(dy, dx) = (i - r, j - r)`` from
the output pixel, and the centre tap ``t = r * K + r`` reads the pixel itself. This is a
correlation, not a flipped convolution, and the tap order matches ``F.unfold``.

Memory: the op never materialises a ``(B, N, C, T, H, W)`` tensor. Its forward and backward loop
over the ``T`` taps with in-place multiply-adds on shifted views of the padded frames, so besides
the kernels (and, when training, their gradient) it needs only frame-sized buffers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from burstkpn.ops.precision import compute_dtype

__all__ = [
    "KernelApply",
    "apply_kernels",
    "apply_multisize_kernels",
    "fuse_multisize_kernels",
]


def _kernel_size(taps: int, kernel_size: int | None = None) -> int:
    """The odd ``K`` with ``K * K == taps`` (checked against ``kernel_size`` when given)."""
    k = math.isqrt(taps) if taps >= 0 else 0
    if k * k != taps or k % 2 == 0:
        raise ValueError(f"kernel tap count {taps} is not the square of an odd kernel size")
    if kernel_size is not None and kernel_size != k:
        raise ValueError(f"kernels have {taps} taps, expected {kernel_size}x{kernel_size}")
    return k


def _check_shapes(frames: torch.Tensor, kernels: torch.Tensor) -> bool:
    """Validate shapes; return True when the kernels are shared across channels."""
    if frames.ndim != 5:
        raise ValueError(f"frames must be (B, N, C, H, W), got shape {tuple(frames.shape)}")
    b, n, c, h, w = frames.shape
    if kernels.ndim == 5:
        ok = kernels.shape[:2] == (b, n) and kernels.shape[3:] == (h, w)
        expected = f"({b}, {n}, T, {h}, {w})"
    elif kernels.ndim == 6:
        ok = kernels.shape[:3] == (b, n, c) and kernels.shape[4:] == (h, w)
        expected = f"({b}, {n}, {c}, T, {h}, {w})"
    else:
        ok, expected = False, "(B, N, T, H, W) or (B, N, C, T, H, W)"
    if not ok:
        raise ValueError(
            f"kernels of shape {tuple(kernels.shape)} do not fit frames of shape "
            f"{tuple(frames.shape)}: expected {expected}"
        )
    return kernels.ndim == 5


def _pad_frames(frames: torch.Tensor, r: int) -> torch.Tensor:
    """Pad ``(B, N, C, H, W)`` by ``r`` per spatial side: reflect, or replicate if too small."""
    if r == 0:
        return frames
    b, n, c, h, w = frames.shape
    mode = "reflect" if h > r and w > r else "replicate"
    padded = F.pad(frames.reshape(b * n, c, h, w), (r, r, r, r), mode=mode)
    return padded.view(b, n, c, h + 2 * r, w + 2 * r)


def _apply_taps(padded: torch.Tensor, kernels: torch.Tensor, k: int) -> torch.Tensor:
    """The forward sum of eq. (4)'s ``X_i ⊛ K_i`` on frames padded by ``K // 2``: one in-place
    multiply-add per tap on a shifted view (see the module docstring for the layout)."""
    shared = kernels.ndim == 5
    h, w = kernels.shape[-2:]
    out = padded.new_zeros(padded.shape[:3] + (h, w))
    for t in range(k * k):
        i, j = divmod(t, k)
        tap = kernels[:, :, None, t] if shared else kernels[:, :, :, t]
        out.addcmul_(padded[..., i : i + h, j : j + w], tap)
    return out


class _KernelApplyFunction(torch.autograd.Function):
    """Tap-by-tap kernel application on already padded frames ([AME-KPN] eq. (4)).

    Inputs: ``padded`` ``(B, N, C, H + 2r, W + 2r)``, ``kernels`` ``(B, N, T, H, W)`` or
    ``(B, N, C, T, H, W)`` of the same dtype, ``K``. The padding stays outside this Function so
    that autograd differentiates it (reflect padding folds border gradients back in).
    """

    @staticmethod
    def forward(ctx, padded: torch.Tensor, kernels: torch.Tensor, k: int) -> torch.Tensor:
        out = _apply_taps(padded, kernels, k)
        ctx.save_for_backward(padded, kernels)
        ctx.k = k
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        padded, kernels = ctx.saved_tensors
        k = ctx.k
        need_frames, need_kernels = ctx.needs_input_grad[:2]
        shared = kernels.ndim == 5
        h, w = kernels.shape[-2:]
        channels = padded.shape[2]
        grad_out = grad_out.contiguous()
        grad_padded = torch.zeros_like(padded) if need_frames else None
        grad_kernels = torch.empty_like(kernels) if need_kernels else None
        for t in range(k * k):
            i, j = divmod(t, k)
            view = padded[..., i : i + h, j : j + w]
            if need_kernels:
                if shared:  # sum over channels without a (B, N, C, H, W) temporary
                    dst = grad_kernels[:, :, t]
                    torch.mul(grad_out[:, :, 0], view[:, :, 0], out=dst)
                    for c in range(1, channels):
                        dst.addcmul_(grad_out[:, :, c], view[:, :, c])
                else:
                    torch.mul(grad_out, view, out=grad_kernels[:, :, :, t])
            if need_frames:
                tap = kernels[:, :, None, t] if shared else kernels[:, :, :, t]
                grad_padded[..., i : i + h, j : j + w].addcmul_(grad_out, tap)
        return grad_padded, grad_kernels, None


def apply_kernels(
    frames: torch.Tensor, kernels: torch.Tensor, kernel_size: int | None = None
) -> torch.Tensor:
    """Apply per-pixel kernels to each frame: the ``X_i ⊛ K_i`` of [AME-KPN] eq. (4).

    Args:
        frames: ``(B, N, C, H, W)`` floating-point frames.
        kernels: ``(B, N, T, H, W)`` (shared across channels) or ``(B, N, C, T, H, W)``
            (per channel), ``T = K * K`` with ``K`` odd.
        kernel_size: ``K``; inferred from ``T`` when ``None``, checked when given.

    Returns:
        ``(B, N, C, H, W)`` with ``out[b, n, c, y, x] = sum_{i, j} kernels[b, n, (c,) i * K + j,
        y, x] * P[b, n, c, y + i, x + j]``, ``P`` the frames reflect-padded by ``r = K // 2``
        (replicate-padded when ``H <= r`` or ``W <= r``). Tap ``t = i * K + j`` (row-major) reads
        the pixel at offset ``(i - r, j - r)``; the centre tap ``r * K + r`` reads the pixel
        itself. See the module docstring.

    The computation runs in the promoted dtype of the inputs, with float16 / bfloat16 (for example
    under ``torch.autocast``) promoted to float32, and the result has that dtype: float32 for
    reduced-precision inputs, float64 stays float64. Memory stays bounded: no
    ``(B, N, C, T, H, W)`` tensor is ever built (forward and backward loop over the taps).
    """
    shared = _check_shapes(frames, kernels)
    k = _kernel_size(kernels.shape[2 if shared else 3], kernel_size)
    dtype = compute_dtype(frames, kernels)
    frames = frames.to(dtype)
    kernels = kernels.to(dtype)
    padded = _pad_frames(frames, k // 2)
    if torch.jit.is_tracing():  # ONNX export: the tracer cannot inline the autograd Function,
        return _apply_taps(padded, kernels, k)  # so it records the same loop directly
    return _KernelApplyFunction.apply(padded, kernels, k)


def project_kernel_sum(kernels: torch.Tensor, dims: Sequence[int], total: float) -> torch.Tensor:
    """``kernels`` moved, by the same amount on every tap, onto the taps whose sum over
    ``dims`` is ``total`` (the nearest such kernels in L2): ``K + (total - sum K) / count``,
    ``count`` the number of taps summed. A flat frame filtered by kernels summing to one keeps
    its value, so these projections fix the brightness of the kernel path (``unit_kernels``
    and ``burst_unit_kernels`` of :class:`~burstkpn.models.kpn.KernelPredictionNet`)."""
    count = math.prod(kernels.shape[d] for d in dims)
    return kernels + (total - kernels.sum(tuple(dims), keepdim=True)) / count


def fuse_multisize_kernels(
    kernels: Sequence[torch.Tensor], sizes: Sequence[int] = (1, 3, 5, 7, 9)
) -> torch.Tensor:
    """Fuse MKPN's kernels of several sizes into one kernel of the largest size.

    ``kernels[m]`` is ``(B, N, s * s, H, W)`` or ``(B, N, C, s * s, H, W)`` with ``s = sizes[m]``
    (odd; the list order must match ``sizes``). Each ``s x s`` kernel is zero-padded *centred*
    inside ``Kmax x Kmax`` (``Kmax = max(sizes)``) and the results are summed, giving
    ``(B, N, Kmax * Kmax, H, W)`` (or per channel). Because the op of [AME-KPN] eq. (4) is linear
    in the kernel, ``apply_kernels(frames, fused)`` equals the sum over sizes of applying each
    kernel on its own, and each size reads exactly its centred ``s x s`` window: tap ``(i, j)`` of
    the size-``s`` kernel reads offset ``(i - s // 2, j - s // 2)``.
    """
    kernels = list(kernels)
    sizes = [int(s) for s in sizes]
    if len(kernels) != len(sizes) or not kernels:
        raise ValueError(f"got {len(kernels)} kernel tensors for sizes {sizes}")
    if any(s < 1 or s % 2 == 0 for s in sizes):
        raise ValueError(f"kernel sizes must be odd and positive, got {sizes}")
    first = kernels[0]
    if first.ndim not in (5, 6):
        raise ValueError(
            f"kernels must be (B, N, T, H, W) or (B, N, C, T, H, W), got {tuple(first.shape)}"
        )
    lead, spatial = first.shape[: first.ndim - 3], first.shape[-2:]
    for s, kern in zip(sizes, kernels, strict=True):
        expected = tuple(lead) + (s * s,) + tuple(spatial)
        if tuple(kern.shape) != expected:
            raise ValueError(
                f"size-{s} kernels have shape {tuple(kern.shape)}, expected {expected} "
                "(the kernel list must follow the order of sizes)"
            )
    kmax = max(sizes)
    dtype = compute_dtype(*kernels)
    fused = first.new_zeros(tuple(lead) + (kmax, kmax) + tuple(spatial), dtype=dtype)
    for s, kern in zip(sizes, kernels, strict=True):
        o = (kmax - s) // 2
        window = fused[..., o : o + s, o : o + s, :, :]
        window.add_(kern.reshape(tuple(lead) + (s, s) + tuple(spatial)).to(dtype))
    return fused.view(tuple(lead) + (kmax * kmax,) + tuple(spatial))


def apply_multisize_kernels(
    frames: torch.Tensor,
    kernels: Sequence[torch.Tensor],
    sizes: Sequence[int] = (1, 3, 5, 7, 9),
) -> torch.Tensor:
    """MKPN's kernel application: the sum over sizes of each size's per-pixel kernels applied to
    the frames ([AME-KPN] eq. (4) with several kernel sizes), computed as one application of
    :func:`fuse_multisize_kernels` (``max(sizes) ** 2`` taps instead of ``sum(s * s)``)."""
    return apply_kernels(frames, fuse_multisize_kernels(kernels, sizes))


class KernelApply(nn.Module):
    """Module form of :func:`apply_kernels` (no parameters): ``forward(frames, kernels)``."""

    def __init__(self, kernel_size: int | None = None) -> None:
        super().__init__()
        if kernel_size is not None:
            _kernel_size(kernel_size * kernel_size)
        self.kernel_size = kernel_size

    def forward(self, frames: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        return apply_kernels(frames, kernels, self.kernel_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"
