"""The heads of the KPN family on the U-Net features: M_kr, the per-frame kernels K and
residuals R of [AME-KPN] eq. (2), and M_w, the weight maps W of eq. (3).

Both are 3x3 convolutions on the same features. :func:`head_outputs` runs them and hands the
kernels on as a plain (``B, C, H, W``-contiguous) float32 tensor, the layout the tap-by-tap
kernel application reads (:func:`burstkpn.ops.kernels.apply_kernels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from burstkpn.models.common import cpu_bf16_inference, like_weight, plain_float32


class HeadOutputs(NamedTuple):
    """``kernels`` ``(B, kernels * Kmax^2, H, W)`` plain float32; ``residuals`` (R_i) and
    ``logits`` (W_i before the sigmoid), ``(B, kernels, H, W)`` float32, or ``None`` for a
    model without the residual branch."""

    kernels: torch.Tensor
    residuals: torch.Tensor | None
    logits: torch.Tensor | None


def fuse_matrix(kernel_sizes: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """``(T, Kmax^2)`` 0/1 matrix taking the taps of every kernel size to their centred
    places in one ``Kmax x Kmax`` kernel (:func:`~burstkpn.ops.kernels.fuse_multisize_kernels`
    of the identity): tap ``(i, j)`` of size ``s`` goes to ``(i + o, j + o)``,
    ``o = (Kmax - s) // 2``. Built as one-hot rows, without in-place writes, so ONNX tracing
    records it correctly."""
    kmax = max(kernel_sizes)
    places = [
        (i + (kmax - s) // 2) * kmax + j + (kmax - s) // 2
        for s in kernel_sizes
        for i in range(s)
        for j in range(s)
    ]
    index = torch.tensor(places, device=like.device)
    return F.one_hot(index, kmax * kmax).to(like.dtype)


def kernel_filters(
    kr_head: nn.Conv2d, kernel_sizes: Sequence[int], kernels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The filters and biases of M_kr that predict the ``kernels`` kernels (its first rows).
    For several kernel sizes (MKPN) the sizes are summed into one ``Kmax x Kmax`` kernel: the
    head is linear, so summing its filters first (``weight @ M``) gives the same kernels as
    predicting every size and fusing them, with autograd reaching the same per-size filters,
    at the cost of ``Kmax^2`` output channels per kernel instead of ``sum(s^2)`` (81 vs 165)."""
    taps = sum(k * k for k in kernel_sizes)
    weight, bias = kr_head.weight[: kernels * taps], kr_head.bias[: kernels * taps]
    if len(kernel_sizes) > 1:
        m = fuse_matrix(kernel_sizes, weight)
        fused = torch.einsum("ntk,tm->nmk", weight.reshape(kernels, taps, -1), m)
        weight = like_weight(fused.reshape(-1, *kr_head.weight.shape[1:]), kr_head.weight)
        bias = (bias.reshape(kernels, taps) @ m).reshape(-1)
    return weight, bias


def plain_layout_head(feat: torch.Tensor) -> bool:
    """Whether :func:`head_outputs` runs its one convolution in the plain layout: inference
    in bfloat16 on CPU. There oneDNN writes the plain layout from its own blocked one faster
    than torch reorders a channels_last output, and one convolution of 216 channels beats one
    of 200 and two of 8 (the last stage of a 128 px head tile of the cpu-size ame_kpn on an
    AMD Zen 4, AVX-512 BF16: 10.6 / 11.7 ms min / median against 12.3 / 13.5 ms,
    ``benchmarks/head_layout.py``; docs/speed/profile.md). Training, float32 (where the plain
    layout gained nothing in the whole tiled path on a Zen 3, docs/speed/profile.md) and GPUs
    keep the separate channels_last convolutions."""
    return cpu_bf16_inference(feat)


def head_outputs(
    feat: torch.Tensor,
    kr_head: nn.Conv2d,
    w_head: nn.Conv2d | None,
    kernel_sizes: Sequence[int],
    kernels: int,
) -> HeadOutputs:
    """M_kr and M_w (eq. 2-3) on the U-Net features ``feat``: ``kernels`` kernels (fused to
    ``Kmax x Kmax`` for several sizes, :func:`kernel_filters`), and, where ``kr_head`` has
    rows after them, as many residuals, with ``w_head``'s weight logits. The kernels come
    out plain: a channels_last head output would put the taps innermost, and the tap-by-tap
    application would then stream the whole kernel tensor once per tap."""
    k_weight, k_bias = kernel_filters(kr_head, kernel_sizes, kernels)
    split = k_weight.shape[0]
    rows = kernels * sum(k * k for k in kernel_sizes)  # M_kr's kernel rows, residuals after
    r_weight, r_bias = kr_head.weight[rows:], kr_head.bias[rows:]
    has_residual = r_weight.shape[0] > 0
    if plain_layout_head(feat):
        # one convolution for all three outputs, in the plain layout (weights cast first,
        # as autocast would)
        weights = [k_weight, r_weight] + ([w_head.weight] if w_head is not None else [])
        biases = [k_bias, r_bias] + ([w_head.bias] if w_head is not None else [])
        weight = torch.cat(weights).to(feat.dtype).contiguous()
        out = F.conv2d(feat.contiguous(), weight, torch.cat(biases).to(feat.dtype), padding=1)
        out = out.float()
        if not has_residual:
            return HeadOutputs(out[:, :split], None, None)
        r_end = split + kernels
        return HeadOutputs(out[:, :split], out[:, split:r_end], out[:, r_end:])
    # contiguous float32 from channels_last, a few rows at a time (``plain_float32``: the
    # reorder of a whole tile's 208 channels per pixel misses the cache)
    k_out = plain_float32(F.conv2d(feat, k_weight, k_bias, padding=1))
    if not has_residual:
        return HeadOutputs(k_out, None, None)
    residuals = F.conv2d(feat, r_weight, r_bias, padding=1).float()
    logits = w_head(feat).float() if w_head is not None else None
    return HeadOutputs(k_out, residuals, logits)
