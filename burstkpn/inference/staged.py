"""The staged path of exact tiled inference for the KPN family with channel attention.

The U-Net runs in stages that end where a CBAM channel attention needs the statistics of the
whole feature map (eq. 5 of the AME-KPN paper): each stage runs tile by tile with only the
margin its own layers reach, writing the cores of its outputs into full-size buffers, and the
next stage reads windows of those buffers with the whole map's pooled statistics. Every layer
runs about once per pixel and the result equals the untiled forward up to float rounding.
:func:`burstkpn.inference.tiling.tiled_forward` chooses this path by default.
"""

from __future__ import annotations

import contextlib
import math

import torch

from burstkpn.inference.arena import ArenaPool, RecordingPool, _BufferPool
from burstkpn.models.blocks import ChannelAttention
from burstkpn.models.kpn import KernelPredictionNet
from burstkpn.profiling import stage, suspended


def _windows(size: int, tile: int, margin: int) -> list[tuple[int, int, int, int]]:
    """(window start, window end, core start, core end) along one axis."""
    out = []
    for c0 in range(0, size, tile):
        c1 = min(c0 + tile, size)
        out.append((max(0, c0 - margin), min(size, c1 + margin), c0, c1))
    return out


# core size (px) of the staged path's last stage (the last attention and the heads): their
# output, frames x taps kernel channels per pixel, is the largest tensor of the network, and
# at this size it stays in cache between the head and the kernel application (3 MP colour
# burst, ame_kpn cpu, one core: 49 s against 56 s with 512 px tiles; docs/speed/profile.md)
HEAD_TILE = 128


# core size of stage 0 (the encoder), in multiples of ``tile``: its margin is the widest
# (56 px for the cpu-size ame_kpn, against 24, 16 and 4 for the later stages), so at 512 px
# the windows of a 12 MP image hold 1.42x its pixels and at 1024 px 1.17x; its layers are the
# narrowest, so the larger window adds little memory (12 MP colour burst, AMD Zen 4,
# bfloat16: encoder per tile 17.96-18.73 s against 21.13-21.77 s; docs/speed/profile.md)
ENCODER_TILE_SCALE = 2


def _stage_tiles(m: int, tile: int, margins: list[int]) -> list[tuple]:
    """``(core size, margin)`` of each stage of :func:`_staged_plane` for a U-Net of pooling
    multiple ``m``: ``ENCODER_TILE_SCALE * tile`` for stage 0, ``tile`` for the middle ones
    and at most :data:`HEAD_TILE` for the last."""
    head = min(tile, math.ceil(HEAD_TILE / m) * m)
    first = [(ENCODER_TILE_SCALE * tile, margins[0])]
    return first + [(tile, r) for r in margins[1:-1]] + [(head, margins[-1])]


def _grid(hp: int, wp: int, tile: int, margin: int) -> list:
    return [(ys, xs) for ys in _windows(hp, tile, margin) for xs in _windows(wp, tile, margin)]


def staged_margins(model: KernelPredictionNet) -> list[int]:
    """Context (full-resolution px, multiples of the pooling multiple) of each stage of
    :func:`_staged_plane`: stage 0 is the encoder and the convolutions of the first decoder
    block; stage k the attention of decoder block k-1, upsampling and the convolutions of
    block k; the last stage the attention of the last block and the heads."""
    unet = model.backbone
    levels = len(unet.encoder)
    convs = sum(isinstance(mod, torch.nn.Conv2d) for mod in unet.encoder[0])
    m = unet.multiple

    def up(r: int) -> int:
        return math.ceil(r / m) * m

    def sa_reach(block) -> int:
        return 0 if isinstance(block.sa, torch.nn.Identity) else block.sa.conv.kernel_size[0] // 2

    r = convs
    for lv in range(1, levels):
        r += 2 ** (lv - 1) + convs * 2**lv
    lv = levels - 2
    margins = [up(r + 2 ** (lv + 1) + convs * 2**lv)]
    for k in range(1, len(unet.decoder)):
        lv = levels - 2 - k  # block k works at level lv, block k-1 at lv + 1
        reach = (sa_reach(unet.decoder[k - 1]) + 1) * 2 ** (lv + 1) + convs * 2**lv
        margins.append(up(reach))
    # the last stage runs at full resolution (no pooling grid to keep): its exact reach,
    # the attention's and the 3x3 head's on the features (3 convs for ``direct``), and the
    # kernel footprint on the frames of the window
    feat = sa_reach(unet.decoder[-1]) + (3 if model.direct else 1)
    margins.append(max(feat, 0 if model.direct else max(model.kernel_sizes) // 2))
    return margins


def first_block_reach(model: KernelPredictionNet) -> int:
    """Rows of context (at its own level) that the first decoder block's output needs around
    a tile's core: one per 3x3 convolution, and one for the bilinear upsampling, whose first
    row in a crop clamps to its edge (:func:`_first_trim` keeps the crop on the coarser
    level's grid)."""
    block = model.backbone.decoder[0]
    return sum(isinstance(mod, torch.nn.Conv2d) for mod in block.convs) + 1


def _first_trim(ys, xs, scale: int, keep: int):
    """What stage 0 need not compute of the first decoder block in window ``ys, xs``: the
    window's margin (at the block's ``scale``) beyond ``keep`` rows, on every side, rounded
    down to even; with the window bounds of the block's output that is left. The encoder needs
    the whole margin; the first block, at a quarter of the network's cost per tile, only its
    own reach (stage 0 of a 12 MP burst: docs/speed/profile.md)."""

    def cut(avail: int) -> int:
        c = max(0, avail // scale - keep)
        return c - c % 2

    top, bottom = cut(ys[2] - ys[0]), cut(ys[1] - ys[3])
    left, right = cut(xs[2] - xs[0]), cut(xs[1] - xs[3])
    ys_d = (ys[0] + top * scale, ys[1] - bottom * scale, ys[2], ys[3])
    xs_d = (xs[0] + left * scale, xs[1] - right * scale, xs[2], xs[3])
    return (top, bottom, left, right), ys_d, xs_d


def _store(buf: torch.Tensor, part: torch.Tensor, ys, xs, scale: int) -> torch.Tensor:
    """Write the core of window output ``part`` (at 1 / ``scale`` resolution) into ``buf``;
    returns that core."""
    y0, _, c0, c1 = (v // scale for v in ys)
    x0, _, d0, d1 = (v // scale for v in xs)
    core = part[..., c0 - y0 : c1 - y0, d0 - x0 : d1 - x0]
    buf[..., c0:c1, d0:d1] = core
    return core


def _window_of(buf: torch.Tensor, ys, xs, scale: int) -> torch.Tensor:
    return buf[..., ys[0] // scale : ys[1] // scale, xs[0] // scale : xs[1] // scale]


def _empty_like_level(
    part: torch.Tensor, hp: int, wp: int, scale: int, pool: _BufferPool | None = None
) -> torch.Tensor:
    """A full-size buffer at 1 / ``scale`` resolution for window outputs like ``part``
    (from ``pool`` when one is given). Its values are undefined until the cores are stored."""
    fmt = (
        torch.channels_last
        if part.is_contiguous(memory_format=torch.channels_last) and part.shape[1] > 1
        else torch.contiguous_format
    )
    shape = (part.shape[0], part.shape[1], hp // scale, wp // scale)
    if pool is not None:
        return pool.take(shape, part.dtype, part.device, fmt)
    return torch.empty(shape, dtype=part.dtype, device=part.device, memory_format=fmt)


def _window_stats(core: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The float32 sum and maximum over height and width of ``core`` (B, C, h, w), shaped
    (B, C, 1, 1): eq. (5)'s average and max pooling, before the division by the area.

    A window cut from a channels-last map is reduced as its (B, h, w, C) view, rows first and
    then columns: one reduction over both spatial dimensions of such a strided window takes
    torch's slow inner loop on CPU, about 20x slower at 512 px (12 MP profile,
    docs/speed/profile.md); the pairwise order is also a little more accurate."""
    core = core.float()
    if core.shape[1] > 1 and core.stride(1) == 1:
        rows = core.permute(0, 2, 3, 1)
        total, peak = rows.sum(1).sum(1), rows.amax(1).amax(1)
        return total[..., None, None], peak[..., None, None]
    return core.sum((2, 3), keepdim=True), core.amax((2, 3), keepdim=True)


@contextlib.contextmanager
def _given_stats(module, stats):
    """``module`` (a :class:`ChannelAttention`, or ``nn.Identity`` in ablations without it)
    pools ``stats`` instead of its input's own statistics inside the block."""
    if not isinstance(module, ChannelAttention):
        yield
        return
    module.global_stats = stats
    try:
        yield
    finally:
        module.global_stats = None


class TorchStages:
    """The stages of :func:`_staged_plane` run by a torch :class:`KernelPredictionNet`.

    Stage 0 (:meth:`first`): the encoder and the first decoder block's convolutions, on a
    window of the network input; stage ``k`` (:meth:`middle`): block ``k-1``'s attention with
    the whole image's statistics ``stats`` (eq. 5) and block ``k``'s upsampling and
    convolutions; the last stage (:meth:`last`): the last block's attention and the heads
    (eq. 2-4). Another backend provides the same methods
    (:class:`~burstkpn.export.backend.OnnxStages`)."""

    def __init__(self, model: KernelPredictionNet) -> None:
        self.model = model
        self.multiple = model.backbone.multiple
        self.levels = len(model.backbone.encoder)
        self.blocks = len(model.backbone.decoder)

    def margins(self) -> list[int]:
        return staged_margins(self.model)

    def repeats(self, channels: int) -> list[int]:
        """How often each stage's tiles run for an input of ``channels`` planes (one call of
        :func:`_staged_plane` runs every stage once)."""
        return [1] * (self.blocks + 1)

    def network_input(self, burst: torch.Tensor, noise_map: torch.Tensor | None) -> torch.Tensor:
        return self.model.network_input(burst, noise_map)

    def first(
        self, x: torch.Tensor, trim: tuple[int, int, int, int] = (0, 0, 0, 0)
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The skips the later blocks read (finest first) and the first block's output, less
        ``trim`` (top, bottom, left, right; even) of its rows and columns, which the first
        block does not compute (:func:`_first_trim`)."""
        skips = self.model.backbone.encode(x)
        return skips[: self.levels - 2], self.first_block(skips, trim)

    def first_block(self, skips: list, trim: tuple[int, int, int, int]) -> torch.Tensor:
        """The first decoder block's convolutions on the encoder's two deepest outputs
        (``skips[-1]``, ``skips[-2]``), less ``trim`` (:meth:`first`)."""
        deep, skip = skips[-1], skips[-2]
        if any(trim):
            top, bottom, left, right = trim
            skip = skip[..., top : skip.shape[-2] - bottom, left : skip.shape[-1] - right]
            deep = deep[
                ...,
                top // 2 : deep.shape[-2] - bottom // 2,
                left // 2 : deep.shape[-1] - right // 2,
            ]
        return self.model.backbone.decoder[0].convolve(deep, skip)

    def middle(self, k: int, prev: torch.Tensor, skip: torch.Tensor, stats) -> torch.Tensor:
        blocks = self.model.backbone.decoder
        with _given_stats(blocks[k - 1].ca, stats):
            a = blocks[k - 1].attend(prev)
        return blocks[k].convolve(a, skip)

    def last(self, prev: torch.Tensor, x: torch.Tensor, stats, shape) -> torch.Tensor:
        block = self.model.backbone.decoder[-1]
        with _given_stats(block.ca, stats):
            feat = block.attend(prev)
        return self.model.predict(x, feat, shape).image


def _stages_of(model):
    """The stages a model runs in :func:`_staged_plane`: its own (``stages``), or those of a
    torch kernel-prediction network (:class:`~burstkpn.inference.staged_shared.
    SharedCoarseStages` for ``shared_coarse`` ones); ``None`` for other models, and for a
    ``shared_coarse`` U-Net of one decoder block (the hooked passes of ``_tiled_plane`` run
    it)."""
    stages = getattr(model, "stages", None)
    if stages is None and isinstance(model, KernelPredictionNet):
        if not model.shared_coarse:
            return TorchStages(model)
        if len(model.backbone.decoder) >= 2:
            from burstkpn.inference.staged_shared import SharedCoarseStages

            return SharedCoarseStages(model)
    return stages


class _NoBar:
    def update(self, n: int) -> None:
        pass


def planned_pool(stages, burst, noise_map, margins: list[int], hp: int, wp: int):
    """An :class:`~burstkpn.inference.arena.ArenaPool` for the planes of ``burst`` (network
    input ``hp x wp``), planned from a dry run of the stages on a crop of two pooling multiples
    (the buffers' sizes scale with the image, their order does not depend on it); ``None`` for
    a burst smaller than the crop, whose buffers are small anyway."""
    s = 2 * stages.multiple
    if min(burst.shape[-2:]) < s:
        return None
    crop = burst[..., :s, :s]
    noise = None if noise_map is None else noise_map[..., :s, :s]
    record = RecordingPool((s, s))
    with suspended():
        _staged_plane(stages, crop, noise, s, margins, _NoBar(), record)
    return ArenaPool(record.plan(), hp, wp, burst.device)


class _StageBuffers:
    """The full-size buffers of :func:`_staged_plane` (from ``pool``) by key, with eq. (5)'s
    pooling of every decoder block's output gathered as its cores are stored, while the tile
    is in cache (the cores cover the buffer once: their sums and maxima are the whole map's)."""

    def __init__(self, hp: int, wp: int, pool) -> None:
        self.hp, self.wp, self.pool = hp, wp, pool
        self.buffers: dict = {}
        self.pooled: dict = {}  # ("dec", k): [sum, max] of its output over the cores so far

    def put(self, key, part: torch.Tensor, ys, xs, scale: int) -> None:
        if key not in self.buffers:
            self.buffers[key] = _empty_like_level(part, self.hp, self.wp, scale, self.pool)
        core = _store(self.buffers[key], part, ys, xs, scale)
        if key[0] == "dec":
            total, peak = _window_stats(core)
            if key in self.pooled:
                old_total, old_peak = self.pooled[key]
                total, peak = total + old_total, torch.maximum(peak, old_peak)
            self.pooled[key] = (total, peak)

    def pop(self, key) -> torch.Tensor:
        return self.buffers.pop(key)

    def pop_with_stats(self, key) -> tuple[torch.Tensor, tuple]:
        """A decoder block's output and its whole-map (mean, max) over height and width."""
        buf = self.buffers.pop(key)
        total, peak = self.pooled.pop(key)
        return buf, (total / (buf.shape[-2] * buf.shape[-1]), peak)


def _staged_plane(
    stages, burst, noise_map, tile: int, margins: list[int], bar, pool: _BufferPool | None = None
) -> torch.Tensor:
    """The image of one input (a colour plane) through the U-Net in stages that end where a
    channel attention needs the statistics of the whole feature map (eq. 5), run by
    ``stages`` (:class:`TorchStages` or a backend's):

    0. per tile (margin: the reach of the encoder and the first decoder convolutions): the
       encoder and the first decoder block's convolutions; the cores of the skips still needed
       and of the block's output go into full-size buffers;
    1. the block's channel statistics (the values the untiled network pools over its whole
       buffer, summed and maximised over the cores as they were stored); per tile (a margin
       of a few px): its attention, the upsampling and the next block's convolutions, from
       windows of the buffers; and so on down the decoder;
    2. per tile: the last block's attention and the heads (kernels, residuals, weights,
       eq. 2-4) on the frames of the window.

    Each buffer holds exactly what the untiled network computes there (its cores come from
    windows with enough context), so every window cut from it later is exact at every pixel
    and later stages need only their own small reach. Every layer runs about once per pixel
    instead of once per attention pass; memory is that of the buffers (the finest level: the
    first encoder width at full resolution, twice) plus one tile. ``pool`` (shared by the
    planes of one image) hands out the buffers: :func:`planned_pool`'s views of one arena
    planned for the whole image, or a :class:`_BufferPool` that keeps buffers from plane to
    plane within that peak. Stage 0 computes the first decoder block on the tile's core and
    its reach only (:func:`_first_trim`)."""
    pool = _BufferPool() if pool is None else pool
    run = getattr(stages, "run_plane", None)  # stages with their own order (staged_shared)
    if run is not None:
        return run(burst, noise_map, tile, margins, bar, pool)
    pool.begin()
    b, n, c, h, w = burst.shape
    levels, blocks = stages.levels, stages.blocks
    with stage("padding"):
        x = stages.network_input(burst, noise_map)  # (B, N [+1], Hp, Wp)
    hp, wp = x.shape[-2:]
    sizes = [t for t, _ in _stage_tiles(stages.multiple, tile, margins)]  # core size per stage
    buffers = _StageBuffers(hp, wp, pool)

    # stage 0: encoder + first decoder convolutions
    keep = first_block_reach(stages.model)
    for ys, xs in _grid(hp, wp, sizes[0], margins[0]):
        trim, ys_d, xs_d = _first_trim(ys, xs, 2 ** (levels - 2), keep)
        with stage("encoder per tile"):
            skips, d = stages.first(x[..., ys[0] : ys[1], xs[0] : xs[1]], trim)
        with stage("storing cores"):
            for lv, skip in enumerate(skips):  # the skips of the later blocks
                buffers.put(("skip", lv), skip, ys, xs, 2**lv)
            buffers.put(("dec", 0), d, ys_d, xs_d, 2 ** (levels - 2))
            del skips, d
        bar.update(1)
    for k in range(1, blocks + 1):
        prev, stats = buffers.pop_with_stats(("dec", k - 1))
        coarse = 2 ** (levels - 1 - k)  # the scale of block k-1's output
        if k < blocks:
            lv = levels - 2 - k
            skip = buffers.pop(("skip", lv))
            for ys, xs in _grid(hp, wp, sizes[k], margins[k]):
                with stage("decoder per tile"):
                    d = stages.middle(
                        k, _window_of(prev, ys, xs, coarse), _window_of(skip, ys, xs, 2**lv), stats
                    )
                with stage("storing cores"):
                    buffers.put(("dec", k), d, ys, xs, 2**lv)
                    del d
                bar.update(1)
            # freed, not kept: the heads' temporaries come on top of what is kept while
            # they run, and the plane's memory peak with them
            pool.give(skip, keep=False)
            del skip
        else:  # the last block's attention and the heads, at full resolution
            out = x.new_zeros((b, c, hp, wp), dtype=torch.float32)
            # smaller tiles here: the kernels of a tile (frames x taps channels) then stay
            # in cache between the head and their application; the margin is a few px
            for ys, xs in _grid(hp, wp, sizes[k], margins[k]):
                with stage("heads per tile"):
                    xw = x[..., ys[0] : ys[1], xs[0] : xs[1]]
                    shape = (b, c, ys[1] - ys[0], xs[1] - xs[0])
                    img = stages.last(_window_of(prev, ys, xs, 1), xw, stats, shape)
                with stage("storing cores"):
                    out[..., ys[2] : ys[3], xs[2] : xs[3]] = img[
                        ..., ys[2] - ys[0] : ys[3] - ys[0], xs[2] - xs[0] : xs[3] - xs[0]
                    ].float()
                bar.update(1)
        pool.give(prev, keep=k == blocks)  # the last block's output, for the next plane
        del prev
    return out[..., :h, :w]
