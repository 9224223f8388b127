from __future__ import annotations

import numpy as np
import pytest
import torch

from burstkpn.data.degrade.camera import (
    CAMERA_MATRICES,
    CameraParams,
    camera_noisy_burst,
    demosaic_bilinear,
    encode_8bit,
    fit_noise_line,
    inverse_tone_curve,
    mosaic,
    process,
    sample_camera_params,
    tone_curve,
    unprocess,
)
from burstkpn.data.degrade.noise import add_noise
from burstkpn.data.io.images import linear_to_srgb, srgb_to_linear
from burstkpn.errors import InputError
from tests.conftest import gen


def _smooth_scene(frames: int = 8, size: int = 64, lo: float = 0.08, hi: float = 0.45):
    """A clean linear burst ``(N, 3, S, S)`` of slow colour gradients inside ``[lo, hi]``
    (away from black and white, so that nothing clips)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    planes = torch.stack([xx, yy, (xx + yy) / 2])
    return (lo + (hi - lo) * planes)[None].expand(frames, -1, -1, -1).contiguous()


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def _plain(params: CameraParams, **changes) -> CameraParams:
    d = {**params.__dict__, **changes}
    return CameraParams(**d)


def test_tone_curve_pair():
    y = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(tone_curve(inverse_tone_curve(y)), y, atol=1e-12)
    assert torch.allclose(inverse_tone_curve(tone_curve(y)), y, atol=1e-7)
    assert float(tone_curve(torch.tensor(-0.5))) == 0.0  # clamped: the cubic turns back


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_process_inverts_unprocess(seed):
    params = sample_camera_params(gen(seed))
    x = 0.02 + 0.83 * torch.rand(2, 3, 16, 16, generator=gen(seed + 10))
    raw = unprocess(x, params)
    assert raw.min() >= 0 and raw.max() <= 1
    assert (process(raw, params) - x).abs().max() < 1e-5
    # the whole range, white included, without highlight preservation
    x = torch.rand(2, 3, 16, 16, generator=gen(seed + 20))
    x[0, :, :2, :2] = 1.0
    assert (process(unprocess(x, params), params) - x).abs().max() < 1e-5
    # with it, white stays at the white level in raw (and develops to white)
    keep = _plain(params, preserve_highlights=True)
    white = torch.ones(1, 3, 4, 4)
    assert torch.allclose(unprocess(white, keep), white, atol=1e-5)
    assert torch.allclose(process(unprocess(white, keep), keep), white)
    assert not torch.allclose(unprocess(white, params), white, atol=0.1)


def test_mosaic_pattern_and_constant_demosaic():
    rgb = torch.stack([torch.full((6, 8), v) for v in (0.2, 0.5, 0.9)])
    m = mosaic(rgb)
    assert m.shape == (1, 6, 8)
    assert float(m[0, 0, 0]) == pytest.approx(0.2) and float(m[0, 1, 1]) == pytest.approx(0.9)
    assert float(m[0, 0, 1]) == pytest.approx(0.5) and float(m[0, 1, 0]) == pytest.approx(0.5)
    for h, w in ((6, 8), (7, 9), (2, 3)):
        const = rgb[:, :h, :w]
        assert torch.equal(demosaic_bilinear(mosaic(const)), const)


def test_demosaic_is_bilinear_inside():
    """Inside the image, bilinear demosaicking reproduces a linear ramp exactly (every missing
    value is the mean of samples placed symmetrically around it)."""
    yy, xx = torch.meshgrid(torch.arange(10.0), torch.arange(12.0), indexing="ij")
    rgb = torch.stack([0.1 * xx + 0.2 * yy, 0.3 * xx - 0.1 * yy, 0.05 * xx + 0.05 * yy])
    out = demosaic_bilinear(mosaic(rgb[None]))[0]
    assert torch.allclose(out[:, 1:-1, 1:-1], rgb[:, 1:-1, 1:-1], atol=1e-5)
    with pytest.raises(InputError):
        demosaic_bilinear(torch.zeros(1, 1, 5))


def test_sampled_params_are_plausible_and_seeded():
    a, b = sample_camera_params(gen(3)), sample_camera_params(gen(3))
    assert a == b and a != sample_camera_params(gen(4))
    m = np.asarray(a.rgb2cam)
    assert np.allclose(m.sum(1), 1) and (m > 0).all()
    for base in CAMERA_MATRICES:  # positive, white-preserving, and invertible
        assert np.allclose(np.sum(base, 1), 1) and np.linalg.cond(base) < 10
    assert 1.9 <= a.red_gain <= 2.4 and 1.5 <= a.blue_gain <= 1.9
    assert 70 <= a.jpeg_quality <= 95 and 0 <= a.sharpen <= 1
    assert sample_camera_params(gen(3), jpeg=None).jpeg_quality is None
    # the stream after the draw does not depend on the options
    g1, g2 = gen(5), gen(5)
    sample_camera_params(g1)
    sample_camera_params(g2, jpeg=None, sharpen=(0.0, 0.0))
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    with pytest.raises(InputError):
        CameraParams(rgb2cam=((1, 0, 0), (1, 0, 0), (0, 0, 1)))


def test_camera_burst_seeded_and_8bit():
    clean = _smooth_scene(frames=3, size=32)
    params = _plain(sample_camera_params(gen(0)), jpeg_quality=None)
    a = camera_noisy_burst(clean, 0.01, 0.002, gen(1), params)
    assert torch.equal(a, camera_noisy_burst(clean, 0.01, 0.002, gen(1), params))
    assert not torch.equal(a, camera_noisy_burst(clean, 0.01, 0.002, gen(2), params))
    assert a.shape == clean.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a * 255, torch.round(a * 255))
    assert not torch.equal(a[0], a[1])  # every frame has its own noise
    full = camera_noisy_burst(clean, 0.01, 0.002, gen(1), _plain(params, demosaic_signal=True))
    assert torch.isfinite(full).all() and not torch.equal(full, a)


def test_camera_noise_is_correlated_independent_noise_is_not():
    clean = _smooth_scene(size=96)
    params = _plain(sample_camera_params(gen(0)), jpeg_quality=None, sharpen=0.0)
    noise = srgb_to_linear(camera_noisy_burst(clean, 0.01, 0.002, gen(1), params)) - clean
    white = add_noise(clean, 0.01, 0.002, gen(1)) - clean
    for c in range(3):
        lag1 = _corr(noise[:, c, :, :-1], noise[:, c, :, 1:])
        assert lag1 > 0.2, (c, lag1)
        assert abs(_corr(white[:, c, :, :-1], white[:, c, :, 1:])) < 0.05
    # the colour correction mixes the channels' noise (negative entries of cam2rgb)
    assert abs(_corr(noise[:, 0], noise[:, 1])) > 0.1
    assert abs(_corr(white[:, 0], white[:, 1])) < 0.05
    # and JPEG with sharpening keeps it spatially correlated
    jpeg = _plain(params, jpeg_quality=80, sharpen=0.5)
    noise = srgb_to_linear(camera_noisy_burst(clean, 0.01, 0.002, gen(1), jpeg)) - clean
    assert _corr(noise[:, 1, :, :-1], noise[:, 1, :, 1:]) > 0.2


def test_clean_signal_survives_the_pipeline():
    """Without noise the developed frames are the photo up to 8-bit rounding (the target is
    the input photo; demosaicking is applied to the noise only)."""
    clean = _smooth_scene(frames=1, size=32)
    params = _plain(sample_camera_params(gen(0)), jpeg_quality=None, sharpen=0.7)
    out = camera_noisy_burst(clean, 0.0, 0.0, gen(1), params)
    assert (out - linear_to_srgb(clean)).abs().max() <= 0.5 / 255 + 1e-6


def test_jpeg_round_trip_within_quantisation():
    srgb = linear_to_srgb(_smooth_scene(frames=2, size=64, lo=0.05, hi=0.9))
    out = encode_8bit(srgb, 95)
    assert out.shape == srgb.shape and out.dtype == srgb.dtype
    assert float((out - srgb).abs().mean()) < 2 / 255
    assert float((encode_8bit(srgb) - srgb).abs().max()) <= 0.5 / 255 + 1e-6


def test_fit_noise_line_recovers_independent_noise():
    sigma_r, sigma_s = 0.02, 0.004
    ramp = torch.linspace(0, 1, 256).view(1, 1, 1, 256).expand(8, 3, 128, 256)
    fit = fit_noise_line(ramp, add_noise(ramp, sigma_r, sigma_s, gen(0)))
    assert fit.a.shape == fit.b.shape == (3,)
    assert fit.a_pooled == pytest.approx(sigma_r**2, rel=0.05)
    assert fit.b_pooled == pytest.approx(sigma_s, rel=0.05)
    assert np.allclose(fit.a, sigma_r**2, rtol=0.15) and np.allclose(fit.b, sigma_s, rtol=0.15)
    assert fit.sigma_r == pytest.approx(sigma_r, rel=0.03)
    nm = fit.noise_map(ramp[0])
    assert nm.shape == (3, 128, 256) and torch.isfinite(nm).all()


def test_fit_noise_line_is_non_negative():
    ramp = torch.linspace(0.05, 0.95, 128).view(1, 1, 1, 128).expand(4, 1, 64, 128)
    falling = ramp + (0.05 * (1 - ramp)) * torch.randn(ramp.shape, generator=gen(0))
    fit = fit_noise_line(ramp, falling)  # variance falls with intensity: slope clamped at 0
    assert fit.b_pooled == 0.0 and fit.a_pooled > 0
    assert fit_noise_line(ramp, ramp.clone()).a_pooled == 0.0
    with pytest.raises(InputError):
        fit_noise_line(ramp, ramp[:1])


def test_camera_noise_grows_with_shot_noise():
    clean = _smooth_scene(size=48)
    params = sample_camera_params(gen(0))
    levels = []
    for sigma_s in (1e-4, 1e-3, 1e-2):
        noisy = srgb_to_linear(camera_noisy_burst(clean, 2e-3, sigma_s, gen(1), params))
        fit = fit_noise_line(clean, noisy)
        levels.append((float((noisy - clean).square().mean()), fit.a_pooled + 0.3 * fit.b_pooled))
    for (mse0, line0), (mse1, line1) in zip(levels, levels[1:], strict=False):
        assert mse1 > 1.5 * mse0 and line1 > 1.5 * line0
