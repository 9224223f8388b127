"""``shared_coarse``: the colour planes share the U-Net's coarse levels (issue 25 item 3); the
first level, the last decoder block and the heads stay per plane."""

from __future__ import annotations

import pytest
import torch

from burstkpn.errors import InputError
from burstkpn.inference.tiling import _grid, tiled_forward
from burstkpn.models import create_model, load_model, save_model
from burstkpn.models.kpn import KernelPredictionNet, config_traits
from burstkpn.models.traits import model_traits
from tests.conftest import gen


def _pair(widths=(4, 8, 8)) -> tuple[KernelPredictionNet, KernelPredictionNet]:
    """A per-plane AME-KPN with three levels (two coarse decoder blocks, with attention) and
    the same weights with ``shared_coarse``; weights moved off their initial values."""
    torch.manual_seed(0)
    kw = dict(
        num_frames=4,
        widths=widths,
        num_convs=1,
        channel_attention=True,
        spatial_attention=True,
        residual=True,
    )
    plane = KernelPredictionNet(**kw).eval()
    with torch.no_grad():
        for p in plane.parameters():
            p.add_(0.05 * torch.randn_like(p))
    shared = KernelPredictionNet(**kw, shared_coarse=True).eval()
    shared.load_state_dict(plane.state_dict())
    return plane, shared


def _burst(c=3, h=24, w=20, seed=0, frames=4):
    g = gen(seed)
    return torch.rand(2, frames, c, h, w, generator=g), torch.full((2, c, h, w), 0.03)


def test_grey_and_equal_planes_give_the_per_plane_model():
    plane, shared = _pair()
    grey, nmap = _burst(c=1)
    rgb = grey.expand(2, 4, 3, 24, 20)
    with torch.no_grad():
        torch.testing.assert_close(shared(grey, nmap).image, plane(grey, nmap).image)
        torch.testing.assert_close(
            shared(rgb, nmap.expand(2, 3, 24, 20)).image,
            plane(rgb, nmap.expand(2, 3, 24, 20)).image,
        )


def test_planes_meet_only_in_the_coarse_levels_and_their_order_does_not_matter():
    plane, shared = _pair()
    burst, nmap = _burst()
    other = burst.clone()
    other[:, :, 1] = torch.rand(other[:, :, 1].shape, generator=gen(5))  # G changed
    order = [2, 0, 1]
    with torch.no_grad():
        out = shared(burst, nmap).image
        # R's output depends on G (the shared coarse levels) ...
        assert (shared(other, nmap).image[:, 0] - out[:, 0]).abs().max() > 2e-5
        # ... but not in the per-plane model
        assert torch.equal(plane(other, nmap).image[:, 0], plane(burst, nmap).image[:, 0])
        # plane-blind: a permutation of R, G and B permutes the output (the mean is symmetric)
        permuted = shared(burst[:, :, order], nmap[:, order]).image
        torch.testing.assert_close(permuted, out[:, order], atol=1e-6, rtol=0)
        # the batch items stay apart
        torch.testing.assert_close(shared(burst[1:], nmap[1:]).image, out[1:])


def test_matches_a_hand_built_forward():
    """Per plane: the first level; once per burst: the coarse levels on the planes' mean of
    it; per plane again: the last decoder block on their output and the plane's first level."""
    _, shared = _pair()
    burst, nmap = _burst()
    unet = shared.backbone
    assert len(unet.encoder) == 3 and len(unet.decoder) == 2
    pool = torch.nn.functional.avg_pool2d
    with torch.no_grad():
        x = shared.network_input(burst, nmap)  # (2 bursts * 3 planes, 4 frames + noise, H, W)
        fine = unet.encoder[0](x)
        feats = []
        for b in range(2):
            mine = fine[3 * b : 3 * b + 3]
            s1 = unet.encoder[1](pool(mine.mean(0, keepdim=True), 2))
            s2 = unet.encoder[2](pool(s1, 2))
            mid = unet.decoder[0](s2, s1)  # the coarse decoder block, once per burst
            feats.append(unet.decoder[1](mid.expand(3, -1, -1, -1), mine))
        want = shared.predict(x, torch.cat(feats), (2, 3, 24, 20)).image
        torch.testing.assert_close(shared(burst, nmap).image, want)


def test_traits_tiling_and_checkpoint(tmp_path):
    _, shared = _pair()
    assert model_traits(shared).independent_channels is False  # the tiler keeps RGB together
    args = {"size": "tiny", "num_frames": 8, "blind": False, "shared_coarse": True}
    assert config_traits(args).independent_channels is False
    burst, nmap = _burst(h=72, w=61)
    with torch.no_grad():
        full = shared(burst, nmap).image
    assert len(_grid(72, 64, 16, 16)) > 1
    for staged in (True, False):  # staged_shared, or the hooked attention passes
        tiled = tiled_forward(shared, burst, nmap, tile=16, staged=staged)
        assert (tiled - full).abs().max() < 1e-5
    model = create_model("ame_kpn", "tiny", shared_coarse=True).eval()
    again = load_model(save_model(model, tmp_path / "sc.safetensors")).eval()
    assert again.shared_coarse
    b8, n8 = _burst(frames=8)
    with torch.no_grad():
        torch.testing.assert_close(again(b8, n8).image, model(b8, n8).image)


def test_init_from_plane_weights_and_refusals(tmp_path):
    from burstkpn.export.graph import check_exportable
    from burstkpn.train import _init_path, start_from_weights

    plane = create_model("ame_kpn", "tiny", num_frames=2)
    path = save_model(plane, tmp_path / "plane.safetensors", steps=7)
    shared = create_model("ame_kpn", "tiny", num_frames=2, shared_coarse=True)
    assert _init_path(path, shared) == path
    assert start_from_weights(path, shared) == 7
    for a, b in zip(shared.state_dict().values(), plane.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(InputError, match="choose one"):
        create_model("ame_kpn", "tiny", color=True, shared_coarse=True)
    with pytest.raises(InputError, match="shared_coarse"):
        check_exportable(shared)


def test_costs_less_than_the_per_plane_model_on_rgb():
    from burstkpn.bench.speed import gmac_per_megapixel

    per_plane = gmac_per_megapixel(create_model("ame_kpn", "cpu"))
    shared = gmac_per_megapixel(create_model("ame_kpn", "cpu", shared_coarse=True))
    assert 0.6 * per_plane < shared < 0.75 * per_plane


@pytest.mark.parametrize("widths", [(4, 8, 8), (4, 8, 8, 8)])
def test_staged_path_is_exact_keeps_one_plane_in_memory_and_needs_its_margin(widths):
    """The staged path of shared_coarse models (staged_shared): equal to the untiled forward
    with two or three decoder blocks (a coarse block between), the arena planned for it used
    as planned, the last block's stage run per plane with its own margin (without it the
    output breaks)."""
    from burstkpn.inference import staged_shared
    from burstkpn.inference.staged import _stages_of, planned_pool

    _, shared = _pair(widths)
    stages = _stages_of(shared)
    assert isinstance(stages, staged_shared.SharedCoarseStages)
    burst, nmap = _burst(h=150, w=131)
    with torch.no_grad():
        full = shared(burst, nmap).image
        pool = planned_pool(stages, burst, nmap, stages.margins(), 152, 136)
        assert pool is not None and pool.fallbacks == 0
        # one last-block buffer at a time (B bursts x 1 plane x f0 channels), not B x 3
        full_size = [r.shape[0] * r.shape[1] for r in pool.requests if r.scale == 1]
        assert max(full_size) == burst.shape[0] * widths[0]
        tiled = tiled_forward(shared, burst, nmap, tile=32)
        assert (tiled - full).abs().max() < 1e-5
        k = stages.blocks - 1
        narrow = staged_shared.SharedCoarseStages.margins
        try:  # that stage's windows are cut by its own margin: none breaks the output
            staged_shared.SharedCoarseStages.margins = lambda self: [
                0 if i == k else r for i, r in enumerate(narrow(self))
            ]
            cut = tiled_forward(shared, burst, nmap, tile=32)
        finally:
            staged_shared.SharedCoarseStages.margins = narrow
    assert (cut - full).abs().max() > 1e-4
