from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from burstkpn.errors import InputError
from burstkpn.models import count_parameters, create_model, load_model, save_model
from burstkpn.models.dcn_lka import PAPER_PARAMETERS
from burstkpn.models.lka import (
    DeformableBlock,
    DeformableConv2d,
    LargeKernelAttention,
    LKAResidualBlock,
    ResidualBlock,
    dilated_depthwise_conv2d,
    lka_receptive_field,
    modulated_deform_conv2d,
)
from tests.conftest import gen


def _support(grad: torch.Tensor) -> tuple[int, int]:
    """Height and width of the bounding box of the non-zero entries of a ``(H, W)`` map."""
    ys, xs = torch.nonzero(grad, as_tuple=True)
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def test_lka_receptive_field_is_23x23():
    # 5x5 spans 5 pixels, the 7x7 kernel of dilation 3 spans 6*3 + 1 = 19; chained: 5 + 19 - 1
    assert lka_receptive_field() == 5 + 6 * 3 == 23
    torch.manual_seed(0)
    lka = LargeKernelAttention(4)
    assert lka.receptive_field == 23
    with torch.no_grad():  # random positive weights: no accidental cancellations
        for p in lka.parameters():
            p.copy_(torch.rand(p.shape, generator=gen(1)) + 0.1)
    x = (torch.rand(1, 4, 41, 41, generator=gen(2)) + 0.1).requires_grad_()
    lka(x)[0, 1, 20, 20].backward()
    grad = x.grad[0].abs().sum(0)
    assert _support(grad) == (23, 23)
    assert (grad[9:32, 9:32] > 0).all()  # every pixel of the 23x23 square contributes
    assert grad.count_nonzero() == 23 * 23


def test_lka_is_the_papers_formula():
    torch.manual_seed(3)
    lka = LargeKernelAttention(6)
    assert lka.dw.kernel_size == (5, 5) and lka.dw.groups == 6
    assert lka.dw_dilated.kernel_size == (7, 7) and lka.dw_dilated.dilation == (3, 3)
    assert lka.dw_dilated.groups == 6 and lka.pointwise.kernel_size == (1, 1)
    x = torch.randn(2, 6, 20, 23, generator=gen(3))
    d = lka.dw_dilated
    attention = lka.pointwise(
        F.conv2d(lka.dw(x), d.weight, d.bias, padding=9, dilation=3, groups=6)
    )
    assert torch.allclose(lka(x), attention * x, atol=1e-5)


@pytest.mark.parametrize("size", [(16, 16), (17, 20), (5, 4), (1, 2)])
def test_polyphase_dilated_conv_equals_dilated_conv(size):
    x = torch.randn(2, 3, *size, generator=gen(4))
    w = torch.randn(3, 1, 7, 7, generator=gen(5))
    b = torch.randn(3, generator=gen(6))
    ref = F.conv2d(x, w, b, padding=9, dilation=3, groups=3)
    assert torch.allclose(dilated_depthwise_conv2d(x, w, b, 3), ref, atol=1e-5)


@pytest.mark.parametrize("k", [3, 4])
@pytest.mark.parametrize("backend", ["grid_sample", "torchvision"])
def test_deformable_conv_with_zero_offsets_and_unit_masks_is_a_plain_conv(k, backend):
    torch.manual_seed(7)
    conv = DeformableConv2d(5, 6, k, bias=True, backend=backend)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 5, 13, 11, generator=gen(7))
    y, offset, mask = conv(x, return_offsets=True)
    assert offset.abs().max() == 0 and torch.allclose(mask, torch.ones_like(mask))
    before, after = (k - 1) // 2, k // 2
    ref = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, conv.bias)
    assert y.shape == (2, 6, 13, 11)
    assert torch.allclose(y, ref, atol=1e-5)


def test_deformable_backends_agree_with_offsets_and_masks():
    x = torch.randn(2, 4, 12, 15, generator=gen(8), requires_grad=True)
    offset = (3 * torch.randn(2, 18, 12, 15, generator=gen(9))).requires_grad_()
    mask = (2 * torch.rand(2, 9, 12, 15, generator=gen(10))).requires_grad_()
    w = torch.randn(3, 4, 3, 3, generator=gen(11), requires_grad=True)
    outs, grads = [], []
    for backend in ("grid_sample", "torchvision"):
        y = modulated_deform_conv2d(x, offset, mask, w, backend=backend)
        outs.append(y)
        grads.append(torch.autograd.grad(y.square().sum(), [x, offset, mask, w]))
    assert torch.allclose(outs[0], outs[1], atol=1e-4)
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-3 * b.abs().max())
    # an integer offset of +1 row on every tap reads the pixel one row down
    one = torch.zeros(1, 18, 12, 15)
    one[:, 0::2] = 1.0
    xs = x[:1].detach()
    y = modulated_deform_conv2d(xs, one, torch.ones(1, 9, 12, 15), w.detach())
    shifted = F.pad(xs[:, :, 1:], (0, 0, 0, 1))
    ref = F.conv2d(shifted, w.detach(), padding=1)
    # (row 0 differs: its top taps read image row 0, where the shifted copy has padding)
    assert torch.allclose(y[..., 1:, :], ref[..., 1:, :], atol=1e-4)


def test_deformable_conv_errors():
    with pytest.raises(InputError, match="backend"):
        DeformableConv2d(2, 2, backend="cuda-magic")
    with pytest.raises(InputError, match="square"):
        modulated_deform_conv2d(
            torch.zeros(1, 1, 4, 4), torch.zeros(1, 12, 4, 4), torch.ones(1, 6, 4, 4),
            torch.zeros(1, 1, 2, 3),
        )  # fmt: skip


def test_table1_per_block_parameters():
    # Table 1: the main convolutions of each block at the paper's widths
    deform = DeformableBlock(32, 3)
    assert deform.deform.weight.numel() + deform.conv.weight.numel() == 18_432
    assert ResidualBlock(64, 128, stride=2).conv1.weight.numel() == 73_728
    assert LKAResidualBlock(128).conv.weight.numel() == 147_456


def test_paper_size_parameter_count():
    model = create_model("dcn_lka", "paper")
    n = count_parameters(model)
    assert n == 3_233_190  # docs/models.md's number; 9.5 % below the paper's
    assert abs(n - PAPER_PARAMETERS) / PAPER_PARAMETERS < 0.1
    assert len(model.body) == 9 and model.deform.deform.kernel_size == 3
    twelve = create_model("dcn_lka", "paper", num_blocks=12, kernel_size=4)
    assert len(twelve.body) == 12 and twelve.deform.deform.kernel_size == 4
    assert count_parameters(create_model("dcn_lka", "cpu")) < count_parameters(model) / 5


@pytest.mark.parametrize("size", ["tiny", "cpu", "paper"])
def test_builds_at_every_size(size):
    model = create_model("dcn_lka", size)
    assert model.config == {
        "name": "dcn_lka",
        "kwargs": {"size": size, "num_blocks": None, "kernel_size": 3, "channel_attention": True},
    }


@pytest.mark.parametrize("kernel_size", [3, 4])
@pytest.mark.parametrize("shape", [(2, 1, 3, 64, 64), (1, 1, 3, 37, 45)])
def test_forward_backward(shape, kernel_size):
    torch.manual_seed(0)
    model = create_model("dcn_lka", "tiny", kernel_size=kernel_size)
    burst = torch.rand(shape, generator=gen(1))
    out = model(burst, return_aux=True)
    b, _, c, h, w = shape
    k2 = kernel_size * kernel_size
    assert out.image.shape == (b, c, h, w) and out.frames is None
    assert out.aux["offsets"].shape == (b, 2 * k2, h, w)
    assert out.aux["masks"].shape == (b, k2, h, w)
    (out.image - 0.5).square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_untrained_model_is_the_identity_and_uses_the_reference_frame():
    model = create_model("dcn_lka", "tiny").eval()
    burst = torch.rand(2, 3, 3, 20, 24, generator=gen(2))
    with torch.no_grad():
        out = model(burst, torch.ones(2, 3, 20, 24)).image  # noise map accepted, unused
    assert torch.allclose(out, burst[:, 0], atol=1e-5)  # zero-initialised last conv


def test_input_is_clipped_to_the_sRGB_range_the_paper_trains_on():
    """Unclipped synthetic noise (values < 0 or > 1) is clipped before the network: the LKA
    product is quadratic in its input, and out-of-range inputs blew up to 1e19 in eval mode."""
    torch.manual_seed(4)
    model = create_model("dcn_lka", "tiny")
    torch.nn.init.normal_(model.tail.weight, std=0.1)  # not the identity
    model.eval()
    burst = torch.rand(1, 1, 3, 24, 24, generator=gen(4)) * 1.6 - 0.3
    with torch.no_grad():
        out = model(burst).image
        ref = model(burst.clamp(0, 1)).image
    assert (burst < 0).any() and (burst > 1).any()
    assert torch.allclose(out, ref, atol=1e-6)  # srgb(1.0) rounds to 1 - 6e-8 in float32


def test_grayscale_is_replicated_and_averaged():
    torch.manual_seed(3)
    model = create_model("dcn_lka", "tiny").eval()
    with torch.no_grad():
        model.tail.weight.normal_(0, 0.1)
    gray = torch.rand(1, 1, 1, 24, 20, generator=gen(3))
    with torch.no_grad():
        out = model(gray).image
        colour = model(gray.expand(1, 1, 3, 24, 20)).image
    assert out.shape == (1, 1, 24, 20)
    assert torch.allclose(out, colour.mean(1, keepdim=True), atol=1e-6)
    assert not torch.allclose(out, gray[:, 0], atol=1e-3)


def test_bad_inputs():
    model = create_model("dcn_lka", "tiny")
    with pytest.raises(InputError, match="expected a burst"):
        model(torch.zeros(1, 3, 8, 8))
    with pytest.raises(InputError, match="1- or 3-channel"):
        model(torch.zeros(1, 1, 2, 8, 8))
    with pytest.raises(InputError, match="kernel size must be 3 or 4"):
        create_model("dcn_lka", kernel_size=5)
    with pytest.raises(InputError, match="unknown model size"):
        create_model("dcn_lka", "huge")


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(4)
    model = create_model("dcn_lka", "tiny", num_blocks=2, kernel_size=4)
    model.train()
    model(torch.rand(2, 1, 3, 16, 16, generator=gen(4)))  # move the batch-norm statistics
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen(5)))
    model.eval()
    path = save_model(model, tmp_path / "dcn.safetensors", task="deblur")
    loaded = load_model(path)
    assert loaded.config == model.config and loaded.card == {"task": "deblur"}
    assert len(loaded.body) == 2 and loaded.kernel_size == 4
    x = torch.rand(1, 1, 3, 21, 19, generator=gen(6))
    with torch.no_grad():
        assert torch.equal(model(x).image, loaded(x).image)


def test_bfloat16_autocast_and_channels_last_close_to_float32():
    torch.manual_seed(5)
    model = create_model("dcn_lka", "tiny").eval()
    with torch.no_grad():
        model.tail.weight.normal_(0, 0.1)
    x = torch.rand(1, 1, 3, 32, 32, generator=gen(5))
    with torch.no_grad():
        ref = model(x).image
        model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(x).image
    assert fast.dtype == torch.float32
    assert (fast - ref).abs().mean() < 1e-2
