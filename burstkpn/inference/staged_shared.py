"""The staged path of exact tiled inference for ``shared_coarse`` models (issue 25): the colour
planes of a burst share the U-Net's coarse levels, and run the first level, the last decoder
block and the heads on their own (:func:`burstkpn.models.blocks.shared_coarse_features`).

The stages are those of :func:`burstkpn.inference.staged._staged_plane` (each ends where a
CBAM channel attention needs the whole feature map's statistics, eq. 5 of the AME-KPN paper),
with one change of order so that memory stays that of one plane: the planes' first-level
features are not stored. Stage 0 computes them per tile, only to pool them for the coarse
encoder; the stage of the last decoder block runs plane by plane and computes that plane's
first level again on its window (two 3x3 convolutions at full resolution, about 5 % of a
plane's work), and the heads follow for the same plane before the next one starts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from burstkpn.inference.staged import (
    TorchStages,
    _BufferPool,
    _first_trim,
    _given_stats,
    _grid,
    _stage_tiles,
    _StageBuffers,
    _window_of,
    first_block_reach,
    staged_margins,
)
from burstkpn.models.blocks import encode, plane_mean
from burstkpn.profiling import stage


class SharedCoarseStages(TorchStages):
    """The stages of a ``shared_coarse`` :class:`~burstkpn.models.kpn.KernelPredictionNet`
    with at least two decoder blocks, run by :meth:`run_plane` instead of the per-plane loop."""

    def margins(self) -> list[int]:
        """:func:`~burstkpn.inference.staged.staged_margins`, but the stage of the last
        decoder block also reaches over the first level it computes again: the attention of
        the block before it (at half resolution) and the upsampling, then the block's and
        the first level's 3x3 convolutions."""
        margins = staged_margins(self.model)
        unet = self.model.backbone
        k = self.blocks - 1
        sa = unet.decoder[k - 1].sa
        sa_reach = 0 if isinstance(sa, torch.nn.Identity) else sa.conv.kernel_size[0] // 2

        def convs(block) -> int:
            return sum(isinstance(mod, torch.nn.Conv2d) for mod in block)

        reach = (sa_reach + 1) * 2 + convs(unet.decoder[k].convs) + convs(unet.encoder[0])
        margins[k] = math.ceil(reach / self.multiple) * self.multiple
        return margins

    def repeats(self, channels: int) -> list[int]:
        """The last decoder block's stage and the heads run once per plane."""
        return [1] * (self.blocks - 1) + [channels, channels]

    def run_plane(
        self, burst, noise_map, tile: int, margins: list[int], bar, pool: _BufferPool
    ) -> torch.Tensor:
        """The image of ``burst`` (all its planes; :func:`~burstkpn.inference.staged.
        _staged_plane`'s arguments)."""
        return _staged_shared(self, burst, noise_map, tile, margins, bar, pool)


def _staged_shared(stages: SharedCoarseStages, burst, noise_map, tile, margins, bar, pool):
    pool.begin()
    unet = stages.model.backbone
    b, n, c, h, w = burst.shape
    levels, blocks = stages.levels, stages.blocks
    with stage("padding"):
        x = stages.network_input(burst, noise_map)  # (B*C, N [+1], Hp, Wp), plane-minor
    hp, wp = x.shape[-2:]
    sizes = [t for t, _ in _stage_tiles(stages.multiple, tile, margins)]
    buffers = _StageBuffers(hp, wp, pool)

    # stage 0: every plane's first level, pooled over the planes; the coarse encoder and the
    # first decoder block's convolutions once per burst (shared_coarse_features)
    keep = first_block_reach(stages.model)
    for ys, xs in _grid(hp, wp, sizes[0], margins[0]):
        trim, ys_d, xs_d = _first_trim(ys, xs, 2 ** (levels - 2), keep)
        with stage("encoder per tile"):
            fine = unet.encoder[0](x[..., ys[0] : ys[1], xs[0] : xs[1]])
            mean = plane_mean(fine, b)
            del fine
            skips = [None, *encode(unet.encoder[1:], F.avg_pool2d(mean, 2))]
            d = stages.first_block(skips, trim)
        with stage("storing cores"):
            for lv in range(1, levels - 2):  # the coarse skips of the later blocks
                buffers.put(("skip", lv), skips[lv], ys, xs, 2**lv)
            buffers.put(("dec", 0), d, ys_d, xs_d, 2 ** (levels - 2))
            del skips, d
        bar.update(1)
    # the coarse decoder blocks, once per burst
    for k in range(1, blocks - 1):
        prev, stats = buffers.pop_with_stats(("dec", k - 1))
        lv = levels - 2 - k
        skip = buffers.pop(("skip", lv))
        for ys, xs in _grid(hp, wp, sizes[k], margins[k]):
            with stage("decoder per tile"):
                d = stages.middle(
                    k,
                    _window_of(prev, ys, xs, 2 ** (lv + 1)),
                    _window_of(skip, ys, xs, 2**lv),
                    stats,
                )
            with stage("storing cores"):
                buffers.put(("dec", k), d, ys, xs, 2**lv)
                del d
            bar.update(1)
        pool.give(skip, keep=False)
        pool.give(prev, keep=False)
        del skip, prev
    # per plane: its first level again, the last decoder block and the heads
    k = blocks - 1
    mid, mid_stats = buffers.pop_with_stats(("dec", k - 1))
    out = x.new_zeros((b, c, hp, wp), dtype=torch.float32)
    last = unet.decoder[k]
    for p in range(c):
        xp = x[p::c]  # plane p of every burst, (B, N [+1], Hp, Wp)
        for ys, xs in _grid(hp, wp, sizes[k], margins[k]):
            with stage("decoder per tile"):
                fine = unet.encoder[0](xp[..., ys[0] : ys[1], xs[0] : xs[1]])
                with _given_stats(unet.decoder[k - 1].ca, mid_stats):
                    a = unet.decoder[k - 1].attend(_window_of(mid, ys, xs, 2))
                d = last.convolve(a, fine)
            with stage("storing cores"):
                buffers.put(("dec", k), d, ys, xs, 1)
                del fine, a, d
            bar.update(1)
        prev, stats = buffers.pop_with_stats(("dec", k))
        for ys, xs in _grid(hp, wp, sizes[-1], margins[-1]):
            with stage("heads per tile"):
                xw = xp[..., ys[0] : ys[1], xs[0] : xs[1]]
                shape = (b, 1, ys[1] - ys[0], xs[1] - xs[0])
                img = stages.last(_window_of(prev, ys, xs, 1), xw, stats, shape)
            with stage("storing cores"):
                out[:, p : p + 1, ys[2] : ys[3], xs[2] : xs[3]] = img[
                    ..., ys[2] - ys[0] : ys[3] - ys[0], xs[2] - xs[0] : xs[3] - xs[0]
                ].float()
            bar.update(1)
        pool.give(prev, keep=True)
        del prev
    pool.give(mid, keep=False)
    return out[..., :h, :w]
