"""The colour variant of the KPN family (issue 25 item 3): one network pass for R, G and B,
kernels per frame and channel."""

from __future__ import annotations

import pytest
import torch

from burstkpn.errors import InputError
from burstkpn.inference.tiling import tiled_forward
from burstkpn.models import create_model, load_model, save_model
from burstkpn.models.kpn import config_traits
from burstkpn.models.traits import model_traits
from tests.conftest import gen


def _burst(c=3, h=20, w=28, seed=0):
    g = gen(seed)
    burst = torch.rand(2, 8, c, h, w, generator=g)
    return burst, torch.full((2, c, h, w), 0.05)


@pytest.mark.parametrize("name", ["kpn", "mkpn", "ame_kpn"])
def test_shapes_and_traits(name):
    model = create_model(name, "tiny", color=True).eval()
    burst, nmap = _burst()
    with torch.no_grad():
        out = model(burst, nmap, return_aux=True)
    assert out.image.shape == (2, 3, 20, 28) and out.frames.shape == (2, 8, 3, 20, 28)
    assert out.aux["kernels"].shape[:3] == (2, 8, 3)
    assert model_traits(model).independent_channels is False
    assert config_traits(model.config["kwargs"]).independent_channels is False
    assert model_traits(create_model(name, "tiny")).independent_channels is True
    # one network pass for all planes: the U-Net's input holds 3 x 8 frames + 3 noise planes
    assert model.network_input(burst, nmap).shape[:2] == (2, 27)


def test_zero_heads_give_the_burst_mean_per_channel():
    """With the head's weights at zero every kernel is its initial centre tap, so each output
    plane is the mean of that plane's frames: the plane-major head layout keeps R, G and B apart."""
    model = create_model("kpn", "tiny", color=True).eval()
    with torch.no_grad():
        model.kr_head.weight.zero_()
    burst, nmap = _burst()
    burst[:, :, 1] += 2.0  # planes far apart: any mixing would show
    burst[:, :, 2] -= 1.0
    with torch.no_grad():
        out = model(burst, nmap).image
    torch.testing.assert_close(out, burst.mean(1), atol=1e-5, rtol=0)


def test_grey_burst_is_the_mean_of_three_identical_planes():
    model = create_model("ame_kpn", "tiny", color=True).eval()
    grey, nmap = _burst(c=1)
    with torch.no_grad():
        out = model(grey, nmap).image
        rgb = model(grey.expand(2, 8, 3, 20, 28), nmap.expand(2, 3, 20, 28)).image
    assert out.shape == (2, 1, 20, 28)
    torch.testing.assert_close(out, rgb.mean(1, keepdim=True))
    with pytest.raises(InputError, match="RGB or grey"):
        model(torch.rand(1, 8, 2, 16, 16), torch.rand(1, 2, 16, 16))


def test_tiled_equals_whole_and_planes_stay_together():
    torch.manual_seed(0)
    model = create_model("ame_kpn", "tiny", color=True).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    burst, nmap = _burst(h=150, w=131)
    with torch.no_grad():
        full = model(burst, nmap).image
    for staged in (True, False):
        tiled = tiled_forward(model, burst, nmap, tile=48, staged=staged)
        assert (tiled - full).abs().max() < 1e-5


def test_checkpoint_round_trip(tmp_path):
    model = create_model("ame_kpn", "tiny", color=True).eval()
    path = save_model(model, tmp_path / "color.safetensors")
    again = load_model(path).eval()
    assert again.color and again.config["kwargs"]["color"] is True
    burst, nmap = _burst()
    with torch.no_grad():
        torch.testing.assert_close(again(burst, nmap).image, model(burst, nmap).image)


def test_denoise_burst_tiled_equals_whole():
    from burstkpn.denoising import denoise_burst

    model = create_model("ame_kpn", "tiny", color=True).eval()
    burst, _ = _burst(h=40, w=36)
    whole = denoise_burst(burst[0], model, noise="gain1", align="off", tile=0)
    tiled = denoise_burst(burst[0], model, noise="gain1", align="off", tile=16)
    assert whole.image.shape == (3, 40, 36)
    assert (whole.image - tiled.image).abs().max() < 1e-5


def test_colour_costs_less_than_three_grey_passes():
    """Issue 25 item 3's point: per colour megapixel the variant runs the U-Net once, the
    per-plane model three times (the heads and kernel application stay per plane)."""
    from burstkpn.bench.speed import gmac_per_megapixel, model_spec

    name, kw = model_spec("ame_kpn_color")
    per_plane = gmac_per_megapixel(create_model("ame_kpn", "cpu"))
    colour = gmac_per_megapixel(create_model(name, "cpu", **kw))
    assert per_plane / 3 < colour < 0.6 * per_plane


@pytest.mark.parametrize("name", ["kpn", "mkpn", "ame_kpn"])
def test_warm_start_from_a_plane_model(name):
    """color_from_planes: on a grey burst the warm-started colour variant is the plane model
    (same kernels, residuals, weights); on a colour burst it applies the kernels the plane
    model predicts from the mean of the planes to every plane."""
    from burstkpn.models.warm_start import color_from_planes

    torch.manual_seed(1)
    plane = create_model(name, "tiny").eval()
    for p in plane.parameters():  # away from the near-identity initial heads
        p.data.add_(0.05 * torch.randn_like(p))
    color = create_model(name, "tiny", color=True).eval()
    color_from_planes(plane, color)
    grey, nmap = _burst(c=1)
    rgb, nmap3 = _burst(c=3, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(color(grey, nmap).image, plane(grey, nmap).image)
        got = color(rgb, nmap3, return_aux=True).aux["kernels"]
        mean = rgb.mean(2, keepdim=True)
        want = plane(mean, nmap3.mean(1, keepdim=True), return_aux=True).aux["kernels"]
    torch.testing.assert_close(got, want.expand_as(got), rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError, match="per-plane kernel model"):
        color_from_planes(color, plane)


def test_init_warm_starts_a_colour_variant_from_plane_weights(tmp_path):
    """--init with per-plane weights accepts a colour-variant run (the warm start); other
    differences still refuse."""
    from burstkpn.train import _init_path, start_from_weights

    plane = create_model("ame_kpn", "tiny", num_frames=2)
    path = save_model(plane, tmp_path / "plane.safetensors", steps=5)
    color = create_model("ame_kpn", "tiny", num_frames=2, color=True)
    assert _init_path(path, color) == path
    assert start_from_weights(path, color) == 5
    torch.testing.assert_close(
        color.backbone.encoder[1][0].weight, plane.backbone.encoder[1][0].weight
    )
    with pytest.raises(InputError, match="this run builds"):
        _init_path(path, create_model("ame_kpn", "tiny", num_frames=2, color=True, residual=False))
