"""benchmarks/lowfreq_variants.py: the binomial pyramid it fuses with."""

from __future__ import annotations

import torch

from tests.conftest import gen, load_benchmark


def test_pyramid_of_a_constant_is_the_constant():
    mod = load_benchmark("lowfreq_variants")
    x = torch.full((1, 3, 17, 22), 0.3)
    assert mod.down(x).shape[-2:] == (9, 11)
    torch.testing.assert_close(mod.up(mod.down(x), (17, 22)), x)
    torch.testing.assert_close(mod.lowpass(x, 3), x)


def test_binomial_blur_is_the_hand_computed_filter():
    mod = load_benchmark("lowfreq_variants")
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0
    w = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    torch.testing.assert_close(mod.blur(x)[0, 0, 2:7, 2:7], w[:, None] * w[None, :])


def test_collapse_returns_the_finest_output_when_coarser_ones_agree():
    mod = load_benchmark("lowfreq_variants")
    fine = torch.rand(1, 3, 31, 40, generator=gen(0))
    coarse = mod.down(fine)
    torch.testing.assert_close(mod.collapse([fine, coarse, mod.down(coarse)]), fine)
    # a different coarse level changes only the low band of the result
    other = mod.collapse([fine, coarse + 0.1])
    torch.testing.assert_close(other - fine, mod.up(torch.full_like(coarse, 0.1), (31, 40)))


def test_robust_mean_is_the_mean_of_agreeing_frames_and_rejects_an_outlier():
    mod = load_benchmark("lowfreq_variants")
    base = torch.rand(1, 3, 16, 16, generator=gen(1))
    noise = 0.01 * torch.randn(4, 3, 16, 16, generator=gen(2))
    lows = base + noise
    robust = mod.robust_mean(lows)
    assert (robust - lows.mean(0, keepdim=True)).abs().max() < 0.01
    lows[3] += 1.0  # a neighbour that moved
    assert (mod.robust_mean(lows) - lows[:3].mean(0, keepdim=True)).abs().max() < 0.01
