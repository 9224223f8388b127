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


def _trained_like(name, **kw):
    torch.manual_seed(0)
    model = create_model(name, **kw).eval()
    with torch.no_grad():  # perturb so attention and kernels are not at their init
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
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
