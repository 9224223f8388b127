from __future__ import annotations

import math

import pytest
import torch

from burstkpn.data.degrade.noise import (
    NOISE_LEVELS,
    TRAIN_SIGMA_R,
    TRAIN_SIGMA_S,
    add_noise,
    correlated_noise,
    estimate_noise_map,
    parse_noise,
    sample_noise_params,
)
from burstkpn.errors import InputError
from tests.conftest import gen


@pytest.mark.parametrize("level", ["gain1", "gain3", "gain4", "low"])
@pytest.mark.parametrize("y", [0.0, 0.05, 0.5, 1.0])
def test_empirical_variance_of_constant_image(level, y):
    lv = NOISE_LEVELS[level]
    clean = torch.full((1, 2, 1000, 1000), y, dtype=torch.float64)
    noisy = add_noise(clean, lv.sigma_r, lv.sigma_s, gen(1))
    expected = lv.sigma_r**2 + lv.sigma_s * y
    assert abs(noisy.var().item() / expected - 1) < 0.02
    assert abs(noisy.mean().item() - y) < 4 * math.sqrt(expected / noisy.numel())


def test_per_batch_parameters_and_noise_map():
    clean = torch.full((2, 3, 1, 200, 200), 0.25, dtype=torch.float64)
    sr = torch.tensor([0.01, 0.05])
    ss = torch.tensor([0.001, 0.02])
    noisy = add_noise(clean, sr, ss, gen(2))
    for b in range(2):
        expected = sr[b].item() ** 2 + ss[b].item() * 0.25
        assert abs(noisy[b].var().item() / expected - 1) < 0.03
    x = torch.tensor([[-0.5, 0.0, 0.3]], dtype=torch.float64)
    nm = estimate_noise_map(x, 0.02, 0.01)
    ref = torch.sqrt(0.02**2 + 0.01 * torch.tensor([[0.0, 0.0, 0.3]], dtype=torch.float64))
    assert torch.allclose(nm, ref)


def test_seeded():
    clean = torch.rand(1, 8, 3, 16, 16)
    a = add_noise(clean, 0.02, 0.01, gen(5))
    b = add_noise(clean, 0.02, 0.01, gen(5))
    c = add_noise(clean, 0.02, 0.01, gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_named_levels_are_the_papers():
    assert (NOISE_LEVELS["gain4"].sigma_r, NOISE_LEVELS["gain4"].sigma_s) == (8e-2, 2.3e-2)
    assert (NOISE_LEVELS["gain1"].sigma_r, NOISE_LEVELS["gain1"].sigma_s) == (5e-3, 1e-3)
    assert (NOISE_LEVELS["high"].sigma_r, NOISE_LEVELS["high"].sigma_s) == (2e-2, 6.4e-3)
    assert parse_noise("GAIN2") == NOISE_LEVELS["gain2"]
    custom = parse_noise("0.03,0.002")
    assert (custom.sigma_r, custom.sigma_s) == (0.03, 0.002)
    for bad in ("gain9", "0.1", "a,b", "-1,0.1", "nan,0.1"):
        with pytest.raises(InputError, match="unknown noise level"):
            parse_noise(bad)


@pytest.mark.parametrize("log_uniform", [True, False])
def test_training_ranges(log_uniform):
    sr, ss = sample_noise_params(200_000, gen(3), log_uniform=log_uniform)
    assert sr.min() >= TRAIN_SIGMA_R[0] and sr.max() <= TRAIN_SIGMA_R[1] * (1 + 1e-6)
    assert ss.min() >= TRAIN_SIGMA_S[0] and ss.max() <= TRAIN_SIGMA_S[1] * (1 + 1e-6)
    if log_uniform:
        mid = (math.log10(TRAIN_SIGMA_R[0]) + math.log10(TRAIN_SIGMA_R[1])) / 2
        assert abs(sr.double().log10().mean().item() - mid) < 0.01
    else:
        assert abs(ss.double().mean().item() - sum(TRAIN_SIGMA_S) / 2) < 1e-4


def test_correlated_noise_has_unit_variance():
    white = correlated_noise((2, 3, 64, 64), 0.0, gen(0))
    corr = correlated_noise((2, 3, 64, 64), 1.0, gen(0))
    assert abs(float(white.std()) - 1) < 0.03 and abs(float(corr.std()) - 1) < 0.1
    lag1 = float((corr[..., 1:] * corr[..., :-1]).mean())
    assert lag1 > 0.5 and abs(float((white[..., 1:] * white[..., :-1]).mean())) < 0.05
