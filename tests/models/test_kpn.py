from __future__ import annotations

import pytest
import torch

from burstkpn.errors import InputError
from burstkpn.models import TABLE2_CONFIGS, count_parameters, create_model
from burstkpn.models.blocks import ChannelAttention, SpatialAttention
from tests.conftest import gen


def _burst(shape, seed=0):
    g = gen(seed)
    burst = torch.rand(shape, generator=g)
    b, n, c, h, w = shape
    return burst, 0.02 + 0.05 * torch.rand(b, c, h, w, generator=g)


@pytest.mark.parametrize("model_id", sorted(TABLE2_CONFIGS))
@pytest.mark.parametrize("shape", [(2, 8, 1, 64, 64), (1, 8, 3, 67, 93)])
def test_table2_configs_forward_backward(model_id, shape):
    torch.manual_seed(0)
    model = create_model("ame_kpn", "cpu", **TABLE2_CONFIGS[model_id])
    burst, nmap = _burst(shape)
    out = model(burst, nmap, return_aux=True)
    b, n, c, h, w = shape
    assert out.image.shape == (b, c, h, w) and out.frames.shape == shape
    assert torch.allclose(out.image, out.frames.mean(1))
    aux = out.aux
    assert aux["kernels"].shape == (b, n, c, 25, h, w)
    if TABLE2_CONFIGS[model_id]["residual"]:  # eq. (4)
        merged = aux["weights"] * aux["filtered"] + (1 - aux["weights"]) * aux["residuals"]
        assert torch.allclose(out.frames, merged, atol=1e-6)
        assert 0 < aux["weights"].min() and aux["weights"].max() < 1
    else:
        assert torch.allclose(out.frames, aux["filtered"])
    out.image.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_parameter_counts_follow_the_switches():
    counts = {
        i: count_parameters(create_model("ame_kpn", **cfg)) for i, cfg in TABLE2_CONFIGS.items()
    }
    m1 = create_model("ame_kpn", **TABLE2_CONFIGS[6])
    decoder = m1.backbone.decoder
    ca = sum(count_parameters(blk.ca) for blk in decoder)
    sa = sum(count_parameters(blk.sa) for blk in decoder)
    assert ca > 0 and sa == len(decoder) * (2 * 49 + 1)
    f, n = m1.backbone.out_channels, 8
    residual = n * (f * 9 + 1) + n * (f * 9 + 1)  # N extra M_kr channels + the M_w branch
    assert counts[2] - counts[1] == ca
    assert counts[3] - counts[1] == sa
    assert counts[4] - counts[1] == ca + sa
    assert counts[5] - counts[1] == residual
    assert counts[6] - counts[1] == ca + sa + residual
    assert count_parameters(create_model("kpn")) == counts[1]  # Model 1 is the original KPN


def test_attention_sits_in_every_decoder_block():
    model = create_model("ame_kpn")
    for blk in model.backbone.decoder:
        assert isinstance(blk.ca, ChannelAttention) and isinstance(blk.sa, SpatialAttention)
    assert not any(isinstance(m, ChannelAttention) for m in model.backbone.encoder.modules())


def test_colour_channels_go_through_the_same_network_independently():
    torch.manual_seed(1)
    model = create_model("ame_kpn").eval()
    burst, nmap = _burst((1, 8, 3, 40, 48), seed=1)
    with torch.no_grad():
        full = model(burst, nmap).image
        for ch in range(3):
            single = model(burst[:, :, ch : ch + 1], nmap[:, ch : ch + 1]).image
            assert torch.allclose(full[:, ch : ch + 1], single, atol=1e-5)


def test_kpn_variants():
    burst, nmap = _burst((1, 8, 1, 33, 35))
    big = create_model("kpn", kernel_size=21)
    assert big(burst, nmap).frames.shape == (1, 8, 1, 33, 35)
    blind = create_model("kpn", blind=True)
    assert blind(burst).image.shape == (1, 1, 33, 35)
    one = create_model("kpn", num_frames=1)
    out = one(burst, nmap)
    assert out.frames.shape == (1, 1, 1, 33, 35)
    direct = create_model("kpn", direct=True)
    out = direct(burst, nmap)
    assert out.frames is None and out.image.shape == (1, 1, 33, 35)
    mk = create_model("mkpn")
    assert mk.taps == 1 + 9 + 25 + 49 + 81
    assert mk(burst, nmap, return_aux=True).aux["kernels"].shape[3] == 81  # fused 9x9


def test_untrained_model_starts_near_the_burst_mean():
    model = create_model("kpn").eval()
    burst, nmap = _burst((1, 8, 1, 32, 32))
    with torch.no_grad():
        out = model(burst, nmap).image
    assert (out - burst.mean(1)).abs().mean() < 0.2


def test_bad_inputs():
    model = create_model("kpn")
    burst, nmap = _burst((1, 8, 1, 16, 16))
    with pytest.raises(InputError, match="8 frames"):
        model(burst[:, :5], nmap)
    with pytest.raises(InputError, match="noise map"):
        model(burst)
    with pytest.raises(InputError, match="expected a burst"):
        model(burst[0], nmap)
    with pytest.raises(InputError, match="unknown model"):
        create_model("nope")
    with pytest.raises(InputError, match="unknown model size"):
        create_model("kpn", "huge")
    with pytest.raises(InputError, match="bad arguments"):
        create_model("kpn", colour=True)


def test_bfloat16_autocast_and_channels_last_close_to_float32():
    torch.manual_seed(2)
    model = create_model("ame_kpn").eval()
    burst, nmap = _burst((1, 8, 3, 48, 48), seed=2)
    with torch.no_grad():
        ref = model(burst, nmap).image
        model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(burst, nmap).image
    assert fast.dtype == torch.float32
    assert (fast - ref).abs().mean() < 5e-3


def test_paper_size_has_published_widths():
    model = create_model("ame_kpn", "paper")
    widths = [blk[0].out_channels for blk in model.backbone.encoder]
    assert widths == [64, 128, 256, 512, 512]


def test_mkpn_fused_head_equals_predicting_each_size_then_fusing():
    """MKPN sums its head's per-size filters before the convolution (81 output channels per
    frame instead of 165); kernels and the gradients reaching the per-size filters must equal
    predicting all 165 taps and fusing them (fuse_multisize_kernels)."""
    from burstkpn.ops.kernels import fuse_multisize_kernels

    torch.manual_seed(0)
    model = create_model("mkpn", "tiny", num_frames=2).double()
    feat = torch.randn(3, model.kr_head.in_channels, 9, 11, dtype=torch.float64)
    fused = model._predict_kernels(feat).reshape(3, 2, 81, 9, 11)
    fused.square().sum().backward()
    grad_fast = model.kr_head.weight.grad.clone()
    model.zero_grad()
    kr = model.kr_head(feat).reshape(3, 2, model.taps, 9, 11)
    parts = torch.split(kr, [k * k for k in model.kernel_sizes], dim=2)
    reference = fuse_multisize_kernels(list(parts), model.kernel_sizes)
    reference.square().sum().backward()
    assert torch.allclose(fused, reference, atol=1e-12)
    assert torch.allclose(grad_fast, model.kr_head.weight.grad, atol=1e-10)


def test_mkpn_fuse_matrix_is_fuse_multisize_kernels_of_the_identity():
    """The one-hot fusion matrix (built without in-place writes, for ONNX export) places every
    tap exactly where fuse_multisize_kernels does."""
    from burstkpn.ops.kernels import fuse_multisize_kernels

    model = create_model("mkpn", "tiny", num_frames=2)
    eye = torch.eye(model.taps)[None, :, :, None, None]
    parts = torch.split(eye, [k * k for k in model.kernel_sizes], dim=2)
    reference = fuse_multisize_kernels(list(parts), model.kernel_sizes)[0, :, :, 0, 0]
    assert torch.equal(model._fuse_matrix(eye), reference)


@pytest.mark.parametrize("name", ["kpn", "mkpn", "ame_kpn"])
def test_unit_kernels_sum_to_one_and_keep_a_flat_burst(name):
    """``unit_kernels``: every frame's kernel sums to one whatever the head predicts, so the
    kernel path of eq. (4) returns a flat burst unchanged."""
    torch.manual_seed(0)
    model = create_model(name, "tiny", num_frames=3, unit_kernels=True).eval()
    with torch.no_grad():
        model.kr_head.bias.normal_(0, 1.0)  # kernels far from the identity init
        burst = torch.full((1, 3, 2, 16, 16), 0.3)
        out = model(burst, torch.full((1, 2, 16, 16), 0.01), return_aux=True)
    sums = out.aux["kernels"].sum(3)  # (B, N, C, taps, H, W)
    torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.aux["filtered"], torch.full_like(out.aux["filtered"], 0.3))
    assert model.config["kwargs"]["unit_kernels"] is True


@pytest.mark.parametrize("name,color", [("kpn", False), ("mkpn", False), ("ame_kpn", True)])
def test_burst_unit_kernels_sum_to_n_together_and_keep_a_flat_burst(name, color):
    """``burst_unit_kernels``: the kernels of all frames of a plane sum to N together (each
    frame's share left free), so the kernel path's mean over frames returns a flat burst."""
    torch.manual_seed(0)
    model = create_model(name, "tiny", num_frames=3, color=color, burst_unit_kernels=True)
    model.eval()
    c = 3 if color else 2
    with torch.no_grad():
        model.kr_head.bias.normal_(0, 1.0)  # kernels far from the identity init
        burst = torch.full((1, 3, c, 16, 16), 0.3)
        out = model(burst, torch.full((1, c, 16, 16), 0.01), return_aux=True)
    sums = out.aux["kernels"].sum(3)  # (B, N, C, H, W): per frame
    torch.testing.assert_close(sums.sum(1), torch.full_like(sums[:, 0], 3.0), atol=1e-4, rtol=0)
    assert (sums - 1).abs().max() > 0.1  # the frames' shares are not fixed at 1/N
    kernel_path = out.aux["filtered"].mean(1)
    torch.testing.assert_close(kernel_path, torch.full_like(kernel_path, 0.3), atol=1e-5, rtol=0)
    assert model.config["kwargs"]["burst_unit_kernels"] is True


def test_unit_kernels_and_burst_unit_kernels_exclude_each_other():
    with pytest.raises(InputError, match="exclude each other"):
        create_model("kpn", "tiny", unit_kernels=True, burst_unit_kernels=True)


def test_kernels_from_residual_keeps_the_kernels_and_drops_the_residual_path():
    """A kernel-only model started from a residual one predicts its kernels; its output is
    the residual model's kernel path (eq. 4 with W = 1)."""
    from burstkpn.models.warm_start import kernels_from_residual

    torch.manual_seed(0)
    src = create_model("ame_kpn", "tiny", num_frames=2).eval()
    dst = create_model("ame_kpn", "tiny", num_frames=2, residual=False).eval()
    kernels_from_residual(src, dst)
    burst = torch.rand(1, 2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    noise = torch.full((1, 3, 16, 16), 0.01)
    with torch.no_grad():
        a = src(burst, noise, return_aux=True)
        b = dst(burst, noise, return_aux=True)
    torch.testing.assert_close(b.aux["kernels"], a.aux["kernels"])
    torch.testing.assert_close(b.image, a.aux["filtered"].mean(1))
    with pytest.raises(InputError, match="needs a residual model"):
        kernels_from_residual(dst, src)
    other = create_model("ame_kpn", "tiny", num_frames=3, residual=False)
    with pytest.raises(InputError, match="differ in more"):
        kernels_from_residual(src, other)


def test_plain_float32_equals_a_whole_reorder():
    """The banded reorder of the kernel head's output gives the one-copy conversion."""
    from burstkpn.models.common import plain_float32

    x = torch.randn(2, 37, 21, 13).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got = plain_float32(x, band=4)
    assert got.is_contiguous() and got.dtype == torch.float32
    assert torch.equal(got, x.float())
    y = torch.randn(2, 3, 5, 5, requires_grad=True)
    assert plain_float32(y) is y
