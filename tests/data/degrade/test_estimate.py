from __future__ import annotations

import math

import pytest
import torch

from burstkpn.data.degrade.estimate import estimate_noise_params
from burstkpn.data.degrade.noise import NOISE_LEVELS
from burstkpn.data.degrade.synth import synthesize_burst
from tests.conftest import gen


def _clean_scene(h: int = 200, w: int = 220) -> torch.Tensor:
    """A noise-free linear image with smooth structure covering intensities 0.02-0.9."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = 0.02 + 0.88 * xx  # a ramp through the intensity range
    detail = 0.03 * torch.sin(20 * yy) * torch.cos(13 * xx)
    return (base + detail).clamp(0, 1).expand(3, h, w).contiguous()


@pytest.mark.parametrize("level", ["gain1", "gain2", "gain3", "gain4"])
def test_estimate_recovers_the_noise_of_a_synthetic_burst(level):
    lv = NOISE_LEVELS[level]
    burst = synthesize_burst(_clean_scene(), gen(1), patch_size=128, noise=level)
    sr, ss = estimate_noise_params(burst.noisy[0])
    for y in (0.05, 0.3, 0.7):
        true = math.sqrt(lv.sigma_r**2 + lv.sigma_s * y)
        est = math.sqrt(sr**2 + ss * y)
        assert abs(est / true - 1) < 0.1, (y, est, true)
