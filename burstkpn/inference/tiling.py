"""Tiled inference in bounded memory that reproduces the untiled forward pass.

The image is cut into core tiles, each processed with a context margin of at least the
network's receptive radius. Tiles start at multiples of the U-Net's pooling multiple, so every
pooling grid is the one the whole image would see, and the margin covers everything a core
pixel depends on. CBAM channel attention pools over the whole feature map, which no tile sees;
with ``exact_attention=True`` (default) the global statistics are gathered first, one decoder
block at a time (each block's statistics depend on the earlier ones), from the tiles' core
regions, and then given to every tile. The result equals the untiled forward up to float
rounding; memory is that of one tile.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from burstkpn.inference.staged import (
    _BufferPool,
    _grid,
    _stage_tiles,
    _staged_plane,
    _stages_of,
    planned_pool,
)
from burstkpn.models.blocks import ChannelAttention
from burstkpn.models.common import pad_to_multiple
from burstkpn.models.kpn import KernelPredictionNet
from burstkpn.models.traits import model_traits, unwrap
from burstkpn.profiling import stage


def receptive_radius(model: KernelPredictionNet) -> int:
    """An upper bound on how far (in input pixels) an output pixel can see, ignoring the
    global pooling of channel attention (handled separately)."""
    unet = model.backbone
    levels = len(unet.encoder)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in unet.encoder[0])
    r = convs  # encoder level 0
    for lv in range(1, levels):
        r += 2 ** (lv - 1) + convs * 2**lv  # 2x2 pooling, then the convs of level lv
    for block, lv in zip(unet.decoder, reversed(range(levels - 1)), strict=True):
        r += 2 ** (lv + 1) + convs * 2**lv  # bilinear upsampling, convs
        if not isinstance(block.sa, torch.nn.Identity):
            r += (block.sa.conv.kernel_size[0] // 2) * 2**lv
    if model.direct:
        return r + 3
    return r + 1 + max(model.kernel_sizes) // 2  # 3x3 head, kernel footprint


class _Stop(Exception):
    pass


@torch.no_grad()
def tiled_forward(
    model: KernelPredictionNet,
    burst: torch.Tensor,
    noise_map: torch.Tensor | None = None,
    *,
    tile: int = 256,
    margin: int | None = None,
    exact_attention: bool = True,
    staged: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """The denoised image ``(B, C, H, W)`` of ``model`` on ``burst`` ``(B, N, C, H, W)``,
    computed tile by tile. ``tile`` (core size) is rounded up to the U-Net multiple; ``tile=0``
    is the whole image in one tile; ``margin`` defaults to the receptive radius rounded up to
    that multiple (the multiple and a model's own margin come from its traits,
    :func:`~burstkpn.models.traits.model_traits`). Models without a ``backbone`` (single-image
    models such as dcn_lka) need a margin: their reach has no exact bound, so their tiling
    is approximate (see :mod:`burstkpn.restoration`). ``progress``: one bar for the whole call
    (every tile of every plane and attention pass), with its ETA.

    ``staged`` (default) runs the KPN family with channel attention by
    :func:`~burstkpn.inference.staged._staged_plane`: every part of the network once, each
    stage with only the margin it needs (exact, so ``margin`` does not apply); a model that
    brings its own ``stages`` (the onnxruntime backend: one graph per stage,
    :class:`~burstkpn.export.backend.OnnxStages`) runs them the same way. Without it the
    whole network runs once per attention module and tile to gather the statistics
    (``exact_attention``), then once more: about 3x the work at 512 px tiles."""
    if tile < 0:
        raise ValueError(f"tile must be 0 (the whole image) or positive, got {tile}")
    b, n, c, h, w = burst.shape
    traits = model_traits(model)
    if c > 1 and traits.independent_channels:
        # the network sees each colour plane as its own batch item (CBAM statistics are per
        # item too), so planes one at a time give the same image with a third of the memory
        planes = [
            (
                burst[:, :, i : i + 1],
                noise_map
                if noise_map is None or noise_map.shape[1] == 1
                else noise_map[:, i : i + 1],
            )
            for i in range(c)
        ]
    else:
        planes = [(burst, noise_map)]
    m = traits.size_multiple
    hp, wp = h + (-h) % m, w + (-w) % m
    tile = max(hp, wp) if tile == 0 else max(m, math.ceil(tile / m) * m)
    margin = traits.tile_margin if margin is None else margin
    r = receptive_radius(model) if margin is None else margin
    margin = math.ceil(r / m) * m
    tiles = _grid(hp, wp, tile, margin)
    attention = _attention_modules(model)
    # one tile sees the whole image, so its own pooling is already the global one
    passes = attention if exact_attention and len(tiles) > 1 else []
    stages = _stages_of(unwrap(model))
    if passes and staged and stages is not None:
        margins = stages.margins()
        grids = _stage_tiles(stages.multiple, tile, margins)
        repeats = getattr(stages, "repeats", lambda _c: [1] * len(grids))(planes[0][0].shape[2])
        total = len(planes) * sum(
            k * len(_grid(hp, wp, t, r)) for k, (t, r) in zip(repeats, grids, strict=True)
        )
        with tqdm(
            total=total, desc="denoise", unit="tile", disable=not progress, leave=False
        ) as bar:
            # one arena for the buffers of every plane (arena.py); a small burst takes its
            # buffers one by one
            pool = planned_pool(stages, *planes[0], margins, hp, wp) or _BufferPool()
            outs = [_staged_plane(stages, pb, pn, tile, margins, bar, pool) for pb, pn in planes]
            del pool
        return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
    total = len(planes) * len(tiles) * (len(passes) + 1)
    with tqdm(total=total, desc="denoise", unit="tile", disable=not progress, leave=False) as bar:
        outs = [_tiled_plane(model, pb, pn, m, tiles, passes, attention, bar) for pb, pn in planes]
    return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]


def _attention_modules(model) -> list:
    """The channel-attention modules in execution order, or a model's own
    ``attention_slots`` (objects with ``global_stats``: the onnxruntime backend)."""
    slots = getattr(model, "attention_slots", None)
    if slots is not None:
        return list(slots)
    return [mod for mod in model.modules() if isinstance(mod, ChannelAttention)]


def _hooked_core_stats(model, module, inputs, ys, xs) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Sum, max and pixel count over the tile's core region of ``module``'s input, read by a
    pre-hook that stops the forward pass there."""
    found = []

    def grab(_mod, args):
        x = args[0].float()
        s = (ys[1] - ys[0]) // x.shape[-2]  # this block's stride
        core = x[
            ...,
            (ys[2] - ys[0]) // s : (ys[3] - ys[0]) // s,
            (xs[2] - xs[0]) // s : (xs[3] - xs[0]) // s,
        ]
        found.append(
            (
                core.sum((2, 3), keepdim=True),
                core.amax((2, 3), keepdim=True),
                core.shape[-2] * core.shape[-1],
            )
        )
        raise _Stop

    handle = module.register_forward_pre_hook(grab)
    try:
        model(*inputs)
    except _Stop:
        pass
    finally:
        handle.remove()
    return found[0]


def _tiled_plane(model, burst, noise_map, m, tiles, passes, attention, bar) -> torch.Tensor:
    """:func:`tiled_forward` of one input (all channels the model sees at once)."""
    b, n, c, h, w = burst.shape
    hp, wp = h + (-h) % m, w + (-w) % m
    # pad exactly as the model would pad the whole image, so tiles see the same borders
    with stage("padding"):
        burst_p = pad_to_multiple(burst.reshape(b, n * c, h, w), m).reshape(b, n, c, hp, wp)
        nmap_p = None if noise_map is None else pad_to_multiple(noise_map, m)

    def window(ys, xs):
        y0, y1, _, _ = ys
        x0, x1, _, _ = xs
        nm = None if nmap_p is None else nmap_p[..., y0:y1, x0:x1]
        return burst_p[..., y0:y1, x0:x1], nm

    def run(ys, xs):
        return model(*window(ys, xs)).image

    # a model that reports the statistics itself (the onnxruntime backend's graph does)
    reported = getattr(model, "attention_core_stats", None)
    try:
        for k, module in enumerate(passes):
            total, count, peak = None, 0, None
            for ys, xs in tiles:
                with stage("attention statistics per tile"):
                    if reported is not None:
                        core = (ys[2] - ys[0], ys[3] - ys[0], xs[2] - xs[0], xs[3] - xs[0])
                        part, pmax, pixels = reported(k, *window(ys, xs), core)
                    else:
                        part, pmax, pixels = _hooked_core_stats(
                            model, module, window(ys, xs), ys, xs
                        )
                total = part if total is None else total + part
                peak = pmax if peak is None else torch.maximum(peak, pmax)
                count += pixels
                bar.update(1)
            module.global_stats = (total / count, peak)
        out = burst.new_zeros((b, c, hp, wp), dtype=torch.float32)
        for ys, xs in tiles:
            with stage("network per tile"):
                img = run(ys, xs)
            with stage("tile assembly"):
                with stage("storing cores"):
                    out[..., ys[2] : ys[3], xs[2] : xs[3]] = img[
                        ..., ys[2] - ys[0] : ys[3] - ys[0], xs[2] - xs[0] : xs[3] - xs[0]
                    ].float()
            bar.update(1)
    finally:
        for module in attention:
            module.global_stats = None
    return out[..., :h, :w]
