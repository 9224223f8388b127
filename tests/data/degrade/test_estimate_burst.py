"""Temporal noise estimation from a burst (issue 23 item 1): the level of the reference within
10 % of the truth on synthetic bursts, with and without local motion, and its use by
``--noise auto``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from burstkpn.data.degrade import camera
from burstkpn.data.degrade.estimate import (
    BurstNoiseEstimate,
    NothingToEstimate,
    estimate_burst_noise,
    estimate_or_floor,
    integer_overlap,
)
from burstkpn.data.degrade.noise import NOISE_LEVELS, add_noise
from burstkpn.data.degrade.synth import synthesize_burst
from burstkpn.data.io.images import image_to_tensor, linear_to_srgb, read_image, srgb_to_linear
from burstkpn.errors import InputError


def _clean_burst(name: str, seed: int = 0, size: int = 224) -> torch.Tensor:
    """A clean 8-frame burst with quarter-pixel offsets (sub-pixel residuals after the
    whole-pixel alignment the estimator uses)."""
    img = srgb_to_linear(image_to_tensor(read_image(name)))
    g = torch.Generator().manual_seed(seed)
    return synthesize_burst(img, g, num_frames=8, patch_size=size, noise=(0.0, 0.0)).noisy[0]


def _level(variance: np.ndarray | torch.Tensor) -> float:
    """The reference's noise level: RMS standard deviation over its pixels."""
    return float(np.sqrt(np.mean(np.asarray(variance, dtype=np.float64))))


def _check(est: BurstNoiseEstimate, clean_ref: torch.Tensor, sigma_r, sigma_s, tol=0.10):
    y = clean_ref.clamp_min(0).numpy()
    truth = _level(sigma_r**2 + sigma_s * y)
    got = _level(est.variance(y))
    assert abs(got / truth - 1) < tol, (got, truth)


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
@pytest.mark.parametrize("level", ["gain1", "gain4"])
def test_independent_noise_within_ten_percent(name, level):
    clean = _clean_burst(name)
    lv = NOISE_LEVELS[level]
    noisy = add_noise(clean, lv.sigma_r, lv.sigma_s, torch.Generator().manual_seed(1))
    est = estimate_burst_noise(noisy)
    assert est.frames == 8 and len(est.per_channel) == 3
    _check(est, clean[0], lv.sigma_r, lv.sigma_s)


def test_per_channel_levels_are_told_apart():
    clean = _clean_burst("coffee")
    scale = torch.tensor([0.5, 1.0, 2.0]).view(1, 3, 1, 1)
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(clean.shape, generator=g) * 0.02 * scale
    est = estimate_burst_noise(clean + noise)
    got = np.array([sr for sr, _ in est.per_channel])
    # sigma_s picks up little of a pure read noise; compare the level at mid-grey
    level = np.sqrt([est.variance(0.3, c) for c in range(3)])
    assert np.allclose(level, [0.01, 0.02, 0.04], rtol=0.15), (level, got)
    assert np.allclose(level[1:] / level[:-1], 2.0, rtol=0.1)
    m = est.noise_map(torch.full((3, 4, 4), 0.3))
    assert m.shape == (3, 4, 4) and torch.allclose(m[:, 0, 0], torch.tensor(level).float())


@pytest.mark.parametrize("level", ["gain1", "gain2"])
def test_local_motion_does_not_inflate(level):
    clean = _clean_burst("astronaut", seed=1)
    for k in range(1, 8):  # a 90x90 object moving by (2.5 k, 3 k) px
        clean[k, :, 60 + 5 * k // 2 : 150 + 5 * k // 2, 40 + 3 * k : 130 + 3 * k] = clean[
            0, :, 60:150, 60:150
        ]
    lv = NOISE_LEVELS[level]
    noisy = add_noise(clean, lv.sigma_r, lv.sigma_s, torch.Generator().manual_seed(3))
    est = estimate_burst_noise(noisy)
    assert est.rejected > 0.05  # the moving object was seen and left out
    _check(est, clean[0], lv.sigma_r, lv.sigma_s)


def test_clipped_eight_bit_frames():
    """Quantised to 8-bit sRGB and clipped like a developed file: still within 10 %."""
    clean = _clean_burst("chelsea", size=192) * 1.3  # some highlights clip
    lv = NOISE_LEVELS["gain2"]
    noisy = add_noise(clean, lv.sigma_r, lv.sigma_s, torch.Generator().manual_seed(4))
    codes = torch.round(linear_to_srgb(noisy.clamp(0, 1)) * 255) / 255
    est = estimate_burst_noise(srgb_to_linear(codes))
    # truth: the noise the file holds, measured against the clean frames where nothing clips
    ref_noisy = srgb_to_linear(codes[0])
    keep = (clean[0] > 0.05) & (clean[0] < 0.8)
    truth = float((ref_noisy - clean[0])[keep].square().mean().sqrt())
    got = _level(est.variance(clean[0][keep].numpy()))
    assert abs(got / truth - 1) < 0.1, (got, truth)


def test_integer_overlap_moves_whole_pixels():
    base = torch.arange(20 * 24, dtype=torch.float32).view(1, 1, 20, 24)
    # frame 1 shows the scene moved: x_1[q] = x_0[q - (2, -3)], so shift (2, -3) aligns it
    f1 = torch.roll(base, shifts=(-2, 3), dims=(-2, -1))
    frames = torch.cat([base, f1])
    out = integer_overlap(frames, np.array([[0.0, 0.0], [2.2, -2.9]]))
    assert torch.equal(out[0], out[1])
    assert out.shape[-2:] == (18, 21)


def test_errors_are_one_line():
    with pytest.raises(InputError):
        estimate_burst_noise(torch.rand(1, 3, 64, 64))
    with pytest.raises(NothingToEstimate):
        estimate_burst_noise(torch.ones(4, 3, 64, 64), np.zeros((4, 2)))


def test_denoise_auto_uses_the_burst_estimate():
    from burstkpn.denoising import denoise_burst
    from burstkpn.models.factory import create_model

    torch.manual_seed(0)
    model = create_model("kpn")
    clean = _clean_burst("chelsea", size=128)[:4]
    lv = NOISE_LEVELS["gain2"]
    noisy = add_noise(clean, lv.sigma_r, lv.sigma_s, torch.Generator().manual_seed(5))
    frames = linear_to_srgb(noisy.clamp(0, 1))
    res = denoise_burst(frames, model, noise="auto", tile=0, precision="fp32")
    assert res.noise_source == "burst"
    assert isinstance(res.noise_estimate, BurstNoiseEstimate)
    res2 = denoise_burst(frames[:2], model, noise="auto", tile=0, precision="fp32")
    assert res2.noise_source == "image"
    res3 = denoise_burst(frames, model, noise="gain1", tile=0, precision="fp32")
    assert res3.noise_source == "given"


@pytest.mark.parametrize(
    ("raw", "jpeg"), [((1e-3, 1e-4), None), ((5e-3, 1e-3), None), ((5e-3, 1e-3), 90)]
)
def test_camera_pipeline_noise_within_ten_percent(raw, jpeg):
    """Spatially and cross-channel correlated noise (demosaicking, colour correction, tone
    curve, sharpening, optionally JPEG): the truth is the random part of the reference's
    error, its difference from the reference developed without noise."""
    clean = _clean_burst("coffee", seed=2)
    g = torch.Generator().manual_seed(6)
    params = camera.sample_camera_params(g)
    params = camera.CameraParams(**{**params.__dict__, "jpeg_quality": jpeg})
    noisy = camera.camera_noisy_linear(clean, *raw, g, params)
    base = camera.camera_noisy_linear(clean[:1], 0.0, 0.0, g, params)[0]
    keep = (clean[0] > 0.02) & (clean[0] < 0.9)
    truth = float((noisy[0] - base)[keep].square().mean().sqrt())
    est = estimate_burst_noise(noisy)
    y = clean[0].clamp_min(0)
    got = float(np.sqrt(np.mean([est.variance(y[c][keep[c]].numpy(), c).mean() for c in range(3)])))
    assert abs(got / truth - 1) < 0.1, (got, truth)
    # the single-image estimator, which assumes white noise, is far off on such noise
    sr, ss = estimate_or_floor(noisy)
    single = float((sr * sr + ss * y[keep]).mean().sqrt())
    assert abs(single / truth - 1) > 0.2
