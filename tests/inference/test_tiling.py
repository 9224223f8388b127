from __future__ import annotations

import pytest
import torch

from burstkpn.inference.tiling import receptive_radius, tiled_forward
from burstkpn.models import create_model
from burstkpn.models.blocks import ChannelAttention
from tests.conftest import gen


def _burst(h, w, c=1, seed=0):
    g = gen(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 6, h), torch.linspace(0, 8, w), indexing="ij")
    clean = (0.5 + 0.4 * torch.sin(xx + yy) * torch.cos(2 * xx)).expand(1, 8, c, h, w)
    burst = clean + 0.05 * torch.randn(1, 8, c, h, w, generator=g)
    return burst, torch.full((1, c, h, w), 0.05)


def _trained_like(name, scale=0.05, **kw):
    torch.manual_seed(0)
    model = create_model(name, **kw).eval()
    with torch.no_grad():  # perturb so attention and kernels are not at their init
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    return model


@pytest.mark.parametrize("name,kw", [("kpn", {}), ("ame_kpn", {}), ("mkpn", {})])
def test_tiled_equals_untiled_small(name, kw):
    model = _trained_like(name, **kw)
    burst, nmap = _burst(203, 261, c=2)
    with torch.no_grad():
        full = model(burst, nmap).image
    tiled = tiled_forward(model, burst, nmap, tile=96)
    assert tiled.shape == full.shape
    assert (tiled - full).abs().max() < 1e-4
    assert all(m.global_stats is None for m in model.modules() if isinstance(m, ChannelAttention))


def test_tiled_equals_untiled_1024():
    model = _trained_like("ame_kpn")
    burst, nmap = _burst(1024, 1024)
    with torch.no_grad():
        full = model(burst, nmap).image
    tiled = tiled_forward(model, burst, nmap, tile=512)
    assert (tiled - full).abs().max() < 1e-4


def test_approximate_attention_differs_but_is_close():
    model = _trained_like("ame_kpn")
    burst, nmap = _burst(150, 170)
    with torch.no_grad():
        full = model(burst, nmap).image
    approx = tiled_forward(model, burst, nmap, tile=48, exact_attention=False)
    assert (approx - full).abs().max() > 1e-6  # per-tile statistics are not the global ones


@pytest.mark.parametrize("name", ["kpn", "ame_kpn"])
def test_receptive_radius_bounds_the_real_one(name):
    model = create_model(name).eval()
    for m in model.modules():  # freeze the global pooling: it is handled separately
        if isinstance(m, ChannelAttention):
            m.global_stats = (torch.ones(1, m.fc1.in_channels, 1, 1),) * 2
    size = 256
    burst = torch.rand(1, 8, 1, size, size, requires_grad=True)
    out = model(burst, torch.full((1, 1, size, size), 0.05)).image
    out[0, 0, size // 2, size // 2].backward()
    reach = burst.grad.abs().sum((0, 1, 2)).nonzero()
    extent = (reach - size // 2).abs().max().item()
    r = receptive_radius(model)
    assert extent <= r
    assert extent >= r // 2  # and the bound is not wildly loose


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"spatial_attention": False},
        {"residual": False},
        {"size": "tiny"},
        {"size": "paper", "kernel_size": 7},
        {"size": "tiny", "kernel_size": 11},  # the last stage's margin from the kernels
    ],
)
def test_staged_equals_untiled_and_the_attention_passes(kw):
    """The staged path (every layer once, each stage with its own margin) gives the untiled
    image, as the pass-per-attention path does; padding, odd sizes and edge tiles included."""
    paper = kw.get("size") == "paper"
    # the paper size's wide layers: a smaller perturbation keeps its activations near 1 (0.05
    # gives outputs in the thousands, where float rounding alone differs between paths)
    model = _trained_like("ame_kpn", scale=0.005 if paper else 0.05, **kw)
    burst, nmap = _burst(75, 61, c=2) if paper else _burst(203, 157, c=2)
    with torch.no_grad():
        full = model(burst, nmap).image
    tile = 32 if paper else 64
    staged = tiled_forward(model, burst, nmap, tile=tile)
    passes = tiled_forward(model, burst, nmap, tile=tile, staged=False)
    assert full.abs().max() < 10
    assert (staged - full).abs().max() < 1e-5
    assert (staged - passes).abs().max() < 1e-5
    assert all(m.global_stats is None for m in model.modules() if isinstance(m, ChannelAttention))


def test_staged_margins_are_needed():
    """Each stage's margin matters: one pooling multiple less breaks exactness somewhere (the
    stage-0 bound is conservative by construction, so it is checked against a far smaller
    one)."""
    import burstkpn.inference.staged as staged

    model = _trained_like("ame_kpn")
    burst, nmap = _burst(203, 157)
    with torch.no_grad():
        full = model(burst, nmap).image
    margins = staged.staged_margins(model)
    # the last stage, at full resolution, needs its exact reach only: 3 (spatial attention) +
    # 1 (3x3 head) on the features, 2 on the frames (5x5 kernels)
    assert margins == [56, 24, 16, 4]
    for i, cut in enumerate([32, 8, 8, 1]):

        def short(m, i=i, cut=cut):
            out = list(margins)
            out[i] -= cut
            return out

        original = staged.staged_margins
        staged.staged_margins = short
        try:
            with torch.no_grad():
                wrong = tiled_forward(model, burst, nmap, tile=64)
        finally:
            staged.staged_margins = original
        assert (wrong - full).abs().max() > 1e-5, i


def test_staged_in_bfloat16_matches_the_passes():
    """Under bfloat16 autocast the staged and pass-per-attention paths agree to bf16 rounding
    (the same statistics in float32, the same layers)."""
    model = _trained_like("ame_kpn")
    burst, nmap = _burst(150, 170)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        staged = tiled_forward(model, burst, nmap, tile=64)
        passes = tiled_forward(model, burst, nmap, tile=64, staged=False)
        full = model(burst, nmap).image.float()
    assert (staged - passes).abs().max() < 2e-2
    assert (staged - full).abs().mean() < 2e-3


@pytest.mark.parametrize("fmt", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("channels", [1, 5])
def test_window_stats_match_a_float64_reduction(fmt, channels):
    # eq. (5)'s pooling over a core cut from a larger map, in either memory layout
    from burstkpn.inference.staged import _window_stats

    part = torch.randn(2, channels, 37, 41, generator=gen(3)).contiguous(memory_format=fmt)
    core = part[..., 3:30, 5:36]
    total, peak = _window_stats(core.bfloat16() if channels == 5 else core)
    ref = core.bfloat16().float() if channels == 5 else core
    assert total.shape == peak.shape == (2, channels, 1, 1)
    assert total.dtype == peak.dtype == torch.float32
    torch.testing.assert_close(
        total.double(), ref.double().sum((2, 3), keepdim=True), rtol=1e-6, atol=1e-5
    )
    assert torch.equal(peak, ref.amax((2, 3), keepdim=True))


def test_buffer_pool_reuses_within_the_peak():
    from burstkpn.inference.staged import _BufferPool

    pool = _BufferPool()
    cl = torch.channels_last
    a = pool.take((1, 4, 8, 8), torch.float32, "cpu", cl)  # 1 KiB
    b = pool.take((1, 8, 4, 4), torch.float32, "cpu", cl)  # 512 B
    assert (pool.live, pool.peak) == (1536, 1536)
    pool.give(b)
    pool.give(a)
    assert pool.live == 0 and pool.spare_bytes() == 1536  # both within the peak
    again = pool.take((1, 4, 8, 8), torch.float32, "cpu", cl)
    assert again.data_ptr() == a.data_ptr() and again.is_contiguous(memory_format=cl)
    assert pool.reused == 1024
    assert pool.spare_bytes() == 512
    # another dtype is no match, and 1024 in use + 512 spare + 256 new would pass the peak:
    # the spare goes first
    other = pool.take((1, 8, 4, 4), torch.bfloat16, "cpu", cl)
    assert other.dtype == torch.bfloat16 and pool.spare_bytes() == 0
    assert (pool.live, pool.peak) == (1280, 1536)
    # with no spares left a new buffer may raise the peak
    big = pool.take((1, 1, 16, 16), torch.float32, "cpu", torch.contiguous_format)
    assert (pool.live, pool.peak) == (2304, 2304)
    pool.give(big)
    assert pool.spare_bytes() == 1024  # 1280 in use + 1024 spare = the peak
    assert pool.take((1, 1, 16, 16), torch.float32, "cpu", cl).data_ptr() == big.data_ptr()


def test_staged_colour_planes_equal_one_plane_at_a_time():
    # the pool hands plane 1's buffers to plane 2: the values must not change
    from burstkpn.inference.staged import (
        TorchStages,
        _BufferPool,
        _staged_plane,
        staged_margins,
    )

    model = create_model("ame_kpn", size="tiny", num_frames=3).eval()
    stages = TorchStages(model)
    margins = staged_margins(model)
    burst = torch.rand(1, 3, 1, 96, 80, generator=gen(5))
    nmap = torch.full((1, 1, 96, 80), 0.05)

    class Bar:
        def update(self, n):
            pass

    with torch.no_grad():
        fresh = [_staged_plane(stages, burst * s, nmap, 32, margins, Bar()) for s in (1.0, 0.5)]
        pool = _BufferPool()
        shared = [
            _staged_plane(stages, burst * s, nmap, 32, margins, Bar(), pool) for s in (1.0, 0.5)
        ]
    assert pool.reused > 0  # the second plane wrote into buffers of the first
    for a, b in zip(fresh, shared, strict=True):
        assert torch.equal(a, b)


def test_first_block_trim_is_exact_and_its_reach_is_needed(monkeypatch):
    """Stage 0 computes the first decoder block on the tile's core and its own reach only (the
    encoder needs the whole margin): the image stays exact, and one row less is not."""
    import burstkpn.inference.staged as staged

    model = _trained_like("ame_kpn")
    burst, nmap = _burst(203, 157)
    trims = []
    original = staged._first_trim

    def spy(*args):
        out = original(*args)
        trims.append(out[0])
        return out

    monkeypatch.setattr(staged, "_first_trim", spy)
    with torch.no_grad():
        full = model(burst, nmap).image
        exact = tiled_forward(model, burst, nmap, tile=64)
        reach = staged.first_block_reach(model)
        assert reach == 3  # two 3x3 convolutions and the upsampling's neighbour
        monkeypatch.setattr(staged, "first_block_reach", lambda m: reach - 1)
        wrong = tiled_forward(model, burst, nmap, tile=64)
    assert any(any(t) for t in trims) and all(v % 2 == 0 for t in trims for v in t)
    assert (exact - full).abs().max() < 1e-5
    assert (wrong - full).abs().max() > 1e-5
