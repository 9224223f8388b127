"""What every model family shares: the output type, the size presets and recipe of the named
constructors, and the handling of a burst on its way into a network (frames, noise map, padding
to the pooling grid, colour planes as batch items, memory format)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from burstkpn.errors import InputError

M = TypeVar("M", bound=nn.Module)


@dataclass
class DenoiseOutput:
    """What every model returns. ``image`` ``(B, C, H, W)``; ``frames`` the per-frame (KPN
    family, [AME-KPN] eq. 4) or per-group ([DeformKernels] eq. 10) predictions
    ``(B, N, C, H, W)`` for the annealed losses (``None`` for models without them); ``aux``
    (with ``return_aux=True``) the model's intermediate maps by name (see each model)."""

    image: torch.Tensor
    frames: torch.Tensor | None = None
    aux: dict[str, torch.Tensor] | None = None


# --------------------------------------------------------------------------- constructors
def size_config(sizes: Mapping[str, dict], size: str) -> dict:
    """A copy of the preset ``sizes[size]``; a one-line error for an unknown size."""
    if size not in sizes:
        raise InputError(f"unknown model size '{size}' (use one of {', '.join(sizes)})")
    return dict(sizes[size])


def build(
    cls: type[M],
    name: str,
    sizes: Mapping[str, dict],
    args: dict,
    *,
    skip: tuple[str, ...] = (),
    **kwargs,
) -> M:
    """The model a named constructor (``kpn``, ``deform2d``, ...) builds from its arguments
    ``args`` (its ``locals()``): ``cls`` with the preset ``sizes[args["size"]]``, every other
    argument by name (but those in ``skip``) and ``kwargs`` (which also override the preset).
    ``model.config`` keeps ``name`` and ``args``: the recipe a checkpoint stores
    (:func:`burstkpn.models.factory.save_model`)."""
    preset = size_config(sizes, args["size"])
    own = {k: v for k, v in args.items() if k != "size" and k not in skip}
    model = cls(**{**preset, **own, **kwargs})
    model.config = {"name": name, "kwargs": args}
    return model


# --------------------------------------------------------------------------- network input
def model_frames(burst: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The frames of ``burst`` ``(B, N, C, H, W)`` a network built for ``num_frames`` reads: the
    reference (frame 0) of any burst for a single-image network, else exactly ``num_frames``."""
    if burst.ndim != 5:
        raise InputError(f"expected a burst (B, N, C, H, W), got shape {tuple(burst.shape)}")
    if num_frames == 1:
        return burst[:, :1]
    if burst.shape[1] != num_frames:
        raise InputError(f"this model takes bursts of {num_frames} frames, got {burst.shape[1]}")
    return burst


def check_noise_map(noise_map: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
    """The noise map of a non-blind network, which must be ``shape`` ``(B, C, H, W)``."""
    if noise_map is None:
        raise InputError("this model needs a noise map (B, C, H, W)")
    if noise_map.shape != shape:
        raise InputError(f"noise map of shape {tuple(noise_map.shape)} does not match {shape}")
    return noise_map


def noise_planes(noise_map: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
    """The noise map ``(B, C, H, W)`` (``shape``) of a non-blind network, checked, as one input
    channel per colour plane, ``(B*C, 1, H, W)`` (the batch layout of :func:`fold_channels`)."""
    b, c, h, w = shape
    return check_noise_map(noise_map, shape).reshape(b * c, 1, h, w)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the last two dims at the bottom / right to a multiple (reflect where possible)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def fold_channels(burst: torch.Tensor) -> torch.Tensor:
    """``(B, N, C, H, W)`` -> ``(B*C, N, H, W)``."""
    b, n, c, h, w = burst.shape
    return burst.transpose(1, 2).reshape(b * c, n, h, w)


def unfold_channels(x: torch.Tensor, batch: int) -> torch.Tensor:
    """``(B*C, N, ...)`` -> ``(B, N, C, ...)``."""
    bc, n = x.shape[:2]
    return x.reshape(batch, bc // batch, n, *x.shape[2:]).transpose(1, 2)


def conv_input(
    x: torch.Tensor | Sequence[torch.Tensor], multiple: int, weight: torch.Tensor
) -> torch.Tensor:
    """``x`` as a network whose first convolution has ``weight`` reads it: padded at the bottom /
    right to the pooling ``multiple`` (:func:`pad_to_multiple`), in the weight's memory format
    (:func:`like_weight`).

    ``x`` is a ``(B, C, H, W)`` tensor or a sequence of channel blocks ``(B, *C_i, H, W)``
    stacked along the channels (each block's channel dims flattened in order, as
    ``torch.cat`` of their reshapes would; cast to the first block's dtype). Blocks are
    written once into the padded buffer of the weight's format and the reflection filled in
    place: one pass over the input instead of a copy each for the reorder, the stacking, the
    padding and the format (at 12 MP colour: padding 4.3 -> 0.7 s, 430 MiB less peak memory;
    docs/speed/profile.md)."""
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        return like_weight(pad_to_multiple(x, multiple), weight)
    blocks = [x] if isinstance(x, torch.Tensor) else list(x)
    first = blocks[0]
    b, (h, w) = first.shape[0], first.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    traced = torch.jit.is_tracing() or torch.compiler.is_compiling()
    if traced or not (ph < h and pw < w):
        # the plain path: a graph being traced or exported sees no writes into an empty
        # buffer; an input too small to reflect is replicated
        flat = torch.cat([t.reshape(b, -1, h, w).to(first.dtype) for t in blocks], 1)
        return like_weight(pad_to_multiple(flat, multiple), weight)
    fmt = _memory_format(weight)
    sizes = [math.prod(t.shape[1:-2]) for t in blocks]
    out = torch.empty(
        (b, sum(sizes), h + ph, w + pw), dtype=first.dtype, device=first.device, memory_format=fmt
    )
    start = 0
    for t, size in zip(blocks, sizes, strict=True):
        out[:, start : start + size, :h, :w].unflatten(1, t.shape[1:-2]).copy_(t)
        start += size
    if ph:  # reflect, as F.pad: row h + i is row h - 2 - i
        out[..., h:, :w] = out[..., h - ph - 1 : h - 1, :w].flip(-2)
    if pw:  # then the columns of every row (the corner reflects both ways)
        out[..., w:] = out[..., w - pw - 1 : w - 1].flip(-1)
    return out


def _memory_format(weight: torch.Tensor) -> torch.memory_format:
    """channels_last for a weight in it (a model that :func:`burstkpn.runtime.prepare_model`
    converted), else the plain format."""
    if weight.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def like_weight(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x`` in channels_last when ``weight`` is (:func:`_memory_format`), so its first
    convolution runs without a layout change."""
    if _memory_format(weight) == torch.channels_last:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def cpu_bf16_inference(x: torch.Tensor) -> bool:
    """Whether ``x`` flows through bfloat16 inference on CPU (no autograd, no tracing): where
    oneDNN's bfloat16 kernels and torch's bfloat16 reductions differ most from their float32
    counterparts in speed, so a few layers take another path there
    (:func:`~burstkpn.models.heads.plain_layout_head`,
    :func:`~burstkpn.models.blocks.channel_max`)."""
    return (
        x.dtype == torch.bfloat16
        and x.device.type == "cpu"
        and not torch.is_grad_enabled()
        and not torch.jit.is_tracing()
    )


def plain_float32(x: torch.Tensor, band: int = 8) -> torch.Tensor:
    """``x`` ``(B, C, H, W)`` as a contiguous float32 tensor. Without autograd a channels_last
    ``x`` is reordered ``band`` rows at a time: a wide head output (hundreds of channels per
    pixel) reordered whole misses the cache, a few rows at a time stay in it (about 2x faster
    on a 136 px head tile of ame_kpn, docs/speed/profile.md)."""
    if x.dtype == torch.float32 and x.is_contiguous():
        return x
    if torch.is_grad_enabled() or not x.is_contiguous(memory_format=torch.channels_last):
        return x.to(torch.float32, memory_format=torch.contiguous_format)
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    for r in range(0, x.shape[-2], band):
        out[..., r : r + band, :].copy_(x[..., r : r + band, :])
    return out
