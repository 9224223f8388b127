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

from burstkpn.models.blocks import ChannelAttention
from burstkpn.models.kpn import KernelPredictionNet, pad_to_multiple


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


def _multiple(model) -> int:
    """The size multiple a model's pooling grid needs (its U-Net's, or its own)."""
    if hasattr(model, "backbone"):
        return model.backbone.multiple
    if hasattr(model, "multiple"):
        return model.multiple
    return getattr(getattr(model, "offset_net", None), "multiple", 1)


class _Stop(Exception):
    pass


def _windows(size: int, tile: int, margin: int) -> list[tuple[int, int, int, int]]:
    """(window start, window end, core start, core end) along one axis."""
    out = []
    for c0 in range(0, size, tile):
        c1 = min(c0 + tile, size)
        out.append((max(0, c0 - margin), min(size, c1 + margin), c0, c1))
    return out


@torch.no_grad()
def tiled_forward(
    model: KernelPredictionNet,
    burst: torch.Tensor,
    noise_map: torch.Tensor | None = None,
    *,
    tile: int = 256,
    margin: int | None = None,
    exact_attention: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """The denoised image ``(B, C, H, W)`` of ``model`` on ``burst`` ``(B, N, C, H, W)``,
    computed tile by tile. ``tile`` (core size) is rounded up to the U-Net multiple; ``margin``
    defaults to the receptive radius rounded up to that multiple. Models without a ``backbone``
    (single-image models such as dcn_lka) give their own ``multiple`` and need ``margin``: their
    reach has no exact bound, so their tiling is approximate (see :mod:`burstkpn.restoration`)."""
    b, n, c, h, w = burst.shape
    if c > 1 and getattr(model, "independent_channels", False):
        # the network sees each colour plane as its own batch item (CBAM statistics are per
        # item too), so planes one at a time give the same image with a third of the memory
        return torch.cat(
            [
                tiled_forward(
                    model,
                    burst[:, :, i : i + 1],
                    noise_map
                    if noise_map is None or noise_map.shape[1] == 1
                    else noise_map[:, i : i + 1],
                    tile=tile,
                    margin=margin,
                    exact_attention=exact_attention,
                    progress=progress,
                )
                for i in range(c)
            ],
            dim=1,
        )
    m = _multiple(model)
    tile = max(m, math.ceil(tile / m) * m)
    r = receptive_radius(model) if margin is None else margin
    margin = math.ceil(r / m) * m
    # pad exactly as the model would pad the whole image, so tiles see the same borders
    hp, wp = h + (-h) % m, w + (-w) % m
    burst_p = pad_to_multiple(burst.reshape(b, n * c, h, w), m).reshape(b, n, c, hp, wp)
    nmap_p = None if noise_map is None else pad_to_multiple(noise_map, m)
    tiles = [(ys, xs) for ys in _windows(hp, tile, margin) for xs in _windows(wp, tile, margin)]

    def run(ys, xs):
        y0, y1, _, _ = ys
        x0, x1, _, _ = xs
        nm = None if nmap_p is None else nmap_p[..., y0:y1, x0:x1]
        return model(burst_p[..., y0:y1, x0:x1], nm).image

    attention = [mod for mod in model.modules() if isinstance(mod, ChannelAttention)]
    try:
        if exact_attention:
            for module in attention:
                total, count, peak = None, 0, None
                for ys, xs in tqdm(tiles, desc="attention", disable=not progress, leave=False):

                    def grab(_mod, args, ys=ys, xs=xs):
                        nonlocal total, count, peak
                        x = args[0].float()
                        s = (ys[1] - ys[0]) // x.shape[-2]  # this block's stride
                        core = x[
                            ...,
                            (ys[2] - ys[0]) // s : (ys[3] - ys[0]) // s,
                            (xs[2] - xs[0]) // s : (xs[3] - xs[0]) // s,
                        ]
                        part = core.sum((2, 3), keepdim=True)
                        pmax = core.amax((2, 3), keepdim=True)
                        total = part if total is None else total + part
                        peak = pmax if peak is None else torch.maximum(peak, pmax)
                        count += core.shape[-2] * core.shape[-1]
                        raise _Stop

                    handle = module.register_forward_pre_hook(grab)
                    try:
                        run(ys, xs)
                    except _Stop:
                        pass
                    finally:
                        handle.remove()
                module.global_stats = (total / count, peak)
        out = burst.new_zeros((b, c, hp, wp), dtype=torch.float32)
        for ys, xs in tqdm(tiles, desc="tiles", disable=not progress, leave=False):
            img = run(ys, xs)
            out[..., ys[2] : ys[3], xs[2] : xs[3]] = img[
                ..., ys[2] - ys[0] : ys[3] - ys[0], xs[2] - xs[0] : xs[3] - xs[0]
            ].float()
    finally:
        for module in attention:
            module.global_stats = None
    return out[..., :h, :w]
