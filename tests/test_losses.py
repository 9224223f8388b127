from __future__ import annotations

import math

import torch

from burstkpn.data.io.images import linear_to_srgb
from burstkpn.losses import anneal_weight, annealed_loss, basic_loss
from tests.conftest import gen


def test_basic_loss_by_hand():
    g = gen(0)
    pred = torch.rand(2, 3, 8, 9, generator=g, dtype=torch.float64)
    target = torch.rand(2, 3, 8, 9, generator=g, dtype=torch.float64)
    terms = basic_loss(pred.double(), target.double())
    gp, gt = linear_to_srgb(pred), linear_to_srgb(target)
    l2 = ((gp - gt) ** 2).mean()
    dx = ((gp[..., 1:] - gp[..., :-1]) - (gt[..., 1:] - gt[..., :-1])).abs().mean()
    dy = ((gp[..., 1:, :] - gp[..., :-1, :]) - (gt[..., 1:, :] - gt[..., :-1, :])).abs().mean()
    assert torch.allclose(terms["l2"], l2) and torch.allclose(terms["grad"], (dx + dy) / 2)
    assert torch.allclose(terms["loss"], l2 + (dx + dy) / 2)
    assert basic_loss(target, target)["loss"] == 0


def test_annealed_loss_is_eq8():
    g = gen(1)
    target = torch.rand(2, 1, 10, 10, generator=g)
    frames = target.unsqueeze(1) + 0.1 * torch.randn(2, 8, 1, 10, 10, generator=g)
    image = frames.mean(1)
    step = 1234
    out = annealed_loss(image, frames, target, step)
    per_frame = sum(basic_loss(frames[:, i], target)["loss"] for i in range(8))
    w = 100 * 0.9998**step
    assert math.isclose(float(out["anneal_weight"]), w, rel_tol=1e-6)
    assert torch.allclose(out["frames"], per_frame, rtol=1e-5)
    assert torch.allclose(out["loss"], basic_loss(image, target)["loss"] + w * per_frame, rtol=1e-5)
    assert anneal_weight(0) == 100 and anneal_weight(23_000) < 1.01
    no_frames = annealed_loss(image, None, target, step)
    assert torch.equal(no_frames["loss"], no_frames["basic"])


def test_losses_pass_gradcheck():
    g = gen(2)
    frames = torch.rand(1, 3, 1, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 1, 5, 6, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: basic_loss(p, target)["loss"], (frames[:, 0],))
    assert torch.autograd.gradcheck(
        lambda f: annealed_loss(f.mean(1), f, target, 10)["loss"], (frames,)
    )
    assert annealed_loss(frames.mean(1), frames, target, 10)["loss"].dtype == torch.float64


def test_coarse_term_by_hand_and_off_by_default():
    g = gen(3)
    pred = torch.rand(2, 3, 9, 10, generator=g, dtype=torch.float64)
    target = torch.rand(2, 3, 9, 10, generator=g, dtype=torch.float64)
    plain = basic_loss(pred, target)
    assert "coarse" not in plain  # the paper's eq. (7) unless asked for
    terms = basic_loss(pred, target, coarse_weight=0.5)
    gp, gt = linear_to_srgb(pred), linear_to_srgb(target)
    # 4x4 block means by hand, the partial last row / column of blocks left out
    bp = gp[..., :8, :8].reshape(2, 3, 2, 4, 2, 4).mean((3, 5))
    bt = gt[..., :8, :8].reshape(2, 3, 2, 4, 2, 4).mean((3, 5))
    coarse = (bp - bt).abs().mean()
    assert torch.allclose(terms["coarse"], coarse)
    assert torch.allclose(terms["loss"], plain["loss"] + 0.5 * coarse)
    out = annealed_loss(pred, None, target, 0, coarse_weight=0.5)
    assert torch.allclose(out["coarse"], coarse) and torch.allclose(out["loss"], terms["loss"])


def test_coarse_term_sees_smooth_errors_not_fine_ones():
    target = torch.full((1, 1, 16, 16), 0.25, dtype=torch.float64)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    checker = ((yy + xx) % 2).double() * 2 - 1  # +-1, averages out in every 4x4 block
    fine = basic_loss(target + 0.01 * checker, target, coarse_weight=1.0)
    smooth = basic_loss(target + 0.01, target, coarse_weight=1.0)  # a flat offset
    # only the curvature of Gamma is left of the fine error: about 1 % of the flat one
    assert float(fine["coarse"]) < 0.02 * float(smooth["coarse"])
    assert float(smooth["grad"]) == 0.0 and float(fine["grad"]) > 0


def test_coarse_term_passes_gradcheck():
    g = gen(4)
    pred = torch.rand(1, 1, 8, 9, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 1, 8, 9, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda p: basic_loss(p, target, coarse_weight=2.0)["loss"], (pred,)
    )
