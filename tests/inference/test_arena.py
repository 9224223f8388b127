from __future__ import annotations

import itertools

import pytest
import torch

import burstkpn.inference.tiling as tiling
from burstkpn.inference.arena import ArenaPool, Request, peak_live_bytes, plan_offsets
from burstkpn.inference.staged import TorchStages, planned_pool, staged_margins
from burstkpn.models import create_model
from tests.conftest import gen


def _overlap(a0, a1, b0, b1) -> bool:
    return a0 < b1 and b0 < a1


def test_plan_offsets_never_overlaps_live_buffers():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        n = int(torch.randint(1, 9, (1,), generator=g))
        sizes = [int(s) for s in torch.randint(1, 20000, (n,), generator=g)]
        starts = [int(s) for s in torch.randint(0, 10, (n,), generator=g)]
        lifetimes = [(s, s + 1 + int(torch.randint(0, 6, (1,), generator=g))) for s in starts]
        offsets, total = plan_offsets(sizes, lifetimes, align=4096)
        assert all(o % 4096 == 0 for o in offsets)
        assert total == max(o + s for o, s in zip(offsets, sizes, strict=True))
        assert total >= peak_live_bytes(sizes, lifetimes)
        for i, j in itertools.combinations(range(n), 2):
            if _overlap(*lifetimes[i], *lifetimes[j]):
                a, b = offsets[i], offsets[j]
                assert not _overlap(a, a + sizes[i], b, b + sizes[j])


def test_plan_offsets_reuses_freed_bytes():
    # a U-Net plane at 12 MP in units of 128 MiB pages: skip0 12, skip1 6, dec0 3 from the
    # start; dec1 6 once dec0 and skip1 are read; dec2 12 once they are freed
    sizes = [12, 6, 3, 6, 12]
    lifetimes = [(0, 7), (1, 4), (2, 5), (3, 8), (6, 9)]
    offsets, total = plan_offsets(sizes, lifetimes, align=1)
    assert total == peak_live_bytes(sizes, lifetimes) == 30  # skip0 + dec1 + dec2
    assert sum(sizes) == 39  # what buffers of their own would take


def test_peak_live_bytes():
    assert peak_live_bytes([5, 3, 4], [(0, 2), (1, 3), (2, 4)]) == 8
    assert peak_live_bytes([], []) == 0


def test_arena_pool_hands_out_planned_views_and_falls_back():
    reqs = [
        Request((1, 4, 8, 8), torch.float32, True, 1, 0, 2),
        Request((1, 8, 4, 4), torch.float32, True, 2, 1, 3),
    ]
    pool = ArenaPool(reqs, 32, 16, "cpu")
    assert pool.shapes == [(1, 4, 32, 16), (1, 8, 16, 8)]
    a = pool.take((1, 4, 32, 16), torch.float32, "cpu", torch.channels_last)
    b = pool.take((1, 8, 16, 8), torch.float32, "cpu", torch.channels_last)
    assert a.is_contiguous(memory_format=torch.channels_last)
    assert b.is_contiguous(memory_format=torch.channels_last)
    a.fill_(1.0)
    b.fill_(2.0)
    assert (a == 1).all() and (b == 2).all()  # both alive: no shared bytes
    assert pool.fallbacks == 0 and pool.arena is not None
    pool.begin()
    again = pool.take((1, 4, 32, 16), torch.float32, "cpu", torch.channels_last)
    assert again.data_ptr() == a.data_ptr()
    other = pool.take((1, 8, 16, 8), torch.bfloat16, "cpu", torch.channels_last)  # not planned
    assert other.dtype == torch.bfloat16 and pool.fallbacks == 1


@pytest.mark.parametrize("c,kw", [(1, {}), (3, {}), (3, {"color": True})])
def test_tiled_forward_with_the_arena_equals_buffers_of_their_own(monkeypatch, c, kw):
    """The arena changes where the buffers live, never a value: the staged path gives the
    same image bit for bit, every request matches the plan, and the arena is no larger than
    the most bytes the buffers hold at once."""
    torch.manual_seed(0)
    model = create_model("ame_kpn", size="tiny", num_frames=3, **kw).eval()
    burst = torch.rand(1, 3, c, 100, 84, generator=gen(3))
    nmap = torch.full((1, c, 100, 84), 0.05)
    pools = []

    def spy(*args):
        pools.append(planned_pool(*args))
        return pools[-1]

    with torch.no_grad():
        monkeypatch.setattr(tiling, "planned_pool", spy)
        arena = tiling.tiled_forward(model, burst, nmap, tile=32)
        monkeypatch.setattr(tiling, "planned_pool", lambda *args: None)
        own = tiling.tiled_forward(model, burst, nmap, tile=32)
    (pool,) = pools
    assert isinstance(pool, ArenaPool) and pool.arena is not None
    assert pool.fallbacks == 0
    assert pool.size == pool.peak
    assert torch.equal(arena, own)


def test_no_arena_for_a_burst_smaller_than_the_dry_run():
    model = create_model("ame_kpn", size="tiny", num_frames=3).eval()
    stages = TorchStages(model)
    m = stages.multiple
    burst = torch.rand(1, 3, 1, 2 * m - 1, 40)
    assert planned_pool(stages, burst, None, staged_margins(model), 2 * m, 40) is None
