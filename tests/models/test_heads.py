"""The heads M_kr and M_w (eq. 2-3) and the spatial attention's channel maximum (eq. 6): the
bfloat16 inference paths against the plain computations they replace."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from burstkpn.models import create_model
from burstkpn.models.blocks import channel_max
from burstkpn.models.heads import head_outputs, plain_layout_head
from burstkpn.runtime import prepare_model


def _reference(feat, model):
    """The heads as separate convolutions of the model's own modules (no fusion, no layout
    choice): kernels, residuals, logits."""
    n = model.planes * model.num_frames * model.taps
    kr = model.kr_head(feat).float()
    logits = model.w_head(feat).float() if model.w_head is not None else None
    if kr.shape[1] == n:
        return kr, None, None
    return kr[:, :n], kr[:, n:], logits


@pytest.mark.parametrize("residual", [True, False])
def test_head_outputs_equal_the_separate_convolutions(residual):
    """Computed in float64, handed on in float32 as the heads always did."""
    torch.manual_seed(0)
    model = create_model("ame_kpn", "tiny", num_frames=3, residual=residual).double()
    feat = torch.randn(2, model.kr_head.in_channels, 9, 7, dtype=torch.float64)
    with torch.no_grad():
        got = head_outputs(feat, model.kr_head, model.w_head, model.kernel_sizes, 3)
        want = _reference(feat, model)
    assert got.kernels.is_contiguous()
    torch.testing.assert_close(got.kernels, want[0])
    if residual:
        torch.testing.assert_close(got.residuals, want[1])
        torch.testing.assert_close(got.logits, want[2])
    else:
        assert got.residuals is None and got.logits is None


@pytest.mark.parametrize("color", [False, True])
def test_plain_layout_head_in_bfloat16_matches_the_channels_last_path(color, monkeypatch):
    """The one plain-layout convolution (bfloat16 inference on CPU) gives the kernels,
    residuals and logits of the three channels_last convolutions, up to bfloat16 rounding."""
    import burstkpn.models.heads as heads

    torch.manual_seed(1)
    model = prepare_model(create_model("ame_kpn", "tiny", num_frames=2, color=color), "cpu", "fp32")
    feat = torch.randn(1, model.kr_head.in_channels, 13, 11).to(torch.bfloat16)
    feat = feat.contiguous(memory_format=torch.channels_last)
    kernels = model.planes * model.num_frames
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert plain_layout_head(feat)
        plain = head_outputs(feat, model.kr_head, model.w_head, model.kernel_sizes, kernels)
        monkeypatch.setattr(heads, "plain_layout_head", lambda f: False)
        other = head_outputs(feat, model.kr_head, model.w_head, model.kernel_sizes, kernels)
    assert plain.kernels.is_contiguous() and plain.kernels.dtype == torch.float32
    for a, b in zip(plain, other, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-2)


def test_plain_layout_head_only_for_bfloat16_inference():
    x = torch.zeros(1, 4, 3, 3)
    with torch.no_grad():
        assert not plain_layout_head(x)  # float32
        assert plain_layout_head(x.bfloat16())
    assert not plain_layout_head(x.bfloat16())  # autograd on: training keeps its path


def test_mkpn_head_outputs_fuse_the_sizes():
    """Several kernel sizes come out as one Kmax x Kmax kernel per frame, as _predict_kernels."""
    torch.manual_seed(2)
    model = create_model("mkpn", "tiny", num_frames=2).double()
    feat = torch.randn(1, model.kr_head.in_channels, 6, 5, dtype=torch.float64)
    with torch.no_grad():
        got = head_outputs(feat, model.kr_head, model.w_head, model.kernel_sizes, 2)
        want = model._predict_kernels(feat).float()
    assert got.kernels.shape[1] == 2 * 81
    torch.testing.assert_close(got.kernels, want)


def test_channel_max_in_bfloat16_is_the_exact_maximum():
    torch.manual_seed(3)
    x = torch.randn(2, 19, 7, 9).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got = channel_max(x)
    assert got.dtype == torch.bfloat16 and got.shape == (2, 1, 7, 9)
    assert torch.equal(got, x.amax(1, keepdim=True))
    assert torch.equal(got.float(), F.max_pool3d(x.float()[:, None], (19, 1, 1))[:, 0])
