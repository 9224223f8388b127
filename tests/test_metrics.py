from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from burstkpn.data.io.images import linear_to_srgb
from burstkpn.metrics import dark_bias, psnr, ssim
from tests.conftest import gen


def _pair(c: int, h: int = 70, w: int = 90, seed: int = 0):
    g = gen(seed)
    clean = torch.rand(2, c, h, w, generator=g, dtype=torch.float64) ** 2  # linear light
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=g, dtype=torch.float64)
    return noisy, clean


def _skimage_reference(pred, target, fn, **kw):
    out = []
    for p, t in zip(pred, target, strict=True):
        p = linear_to_srgb(p).clamp(0, 1)[:, 8:-8, 8:-8].permute(1, 2, 0).numpy()
        t = linear_to_srgb(t).clamp(0, 1)[:, 8:-8, 8:-8].permute(1, 2, 0).numpy()
        out.append(fn(t, p, **kw))
    return np.array(out)


@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_matches_skimage(channels):
    noisy, clean = _pair(channels)
    ref = _skimage_reference(noisy, clean, peak_signal_noise_ratio, data_range=1.0)
    np.testing.assert_allclose(psnr(noisy, clean).numpy(), ref, atol=1e-4)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_skimage(channels):
    noisy, clean = _pair(channels, seed=1)
    ref = _skimage_reference(
        noisy,
        clean,
        structural_similarity,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=2,
    )
    np.testing.assert_allclose(ssim(noisy, clean).numpy(), ref, atol=1e-4)


def test_per_image_not_pooled():
    noisy, clean = _pair(3, seed=2)
    noisy[1] = clean[1] + 0.001  # a much better second image
    both = psnr(noisy, clean)
    assert torch.allclose(both[0], psnr(noisy[:1], clean[:1])[0])
    assert torch.allclose(both[1], psnr(noisy[1:], clean[1:])[0])
    pooled = 10 * torch.log10(
        1
        / torch.cat(
            [
                (linear_to_srgb(noisy[i]).clamp(0, 1) - linear_to_srgb(clean[i]).clamp(0, 1))[
                    :, 8:-8, 8:-8
                ]
                .pow(2)
                .flatten()
                for i in range(2)
            ]
        ).mean()
    )
    assert abs(both.mean() - pooled) > 1  # the mean of per-image PSNRs is not the pooled PSNR


def test_identical_and_border():
    _, clean = _pair(3)
    assert torch.allclose(ssim(clean, clean), torch.ones(2, dtype=torch.float64))
    damaged = clean.clone()
    damaged[..., :8, :] = 0  # damage only inside the ignored border
    assert torch.isinf(psnr(damaged, clean)).all()
    assert psnr(damaged, clean, border=0).isfinite().all()


def test_dark_bias_matches_a_numpy_reference():
    """Mean signed sRGB error over the clean values below 0.15, per image, with its count."""
    noisy, clean = _pair(3)
    bias, count = dark_bias(noisy, clean)
    for i in range(2):
        p = linear_to_srgb(noisy[i]).clamp(0, 1)[:, 8:-8, 8:-8].numpy()
        t = linear_to_srgb(clean[i]).clamp(0, 1)[:, 8:-8, 8:-8].numpy()
        mask = t < 0.15
        assert int(count[i]) == int(mask.sum()) > 0
        assert float(bias[i]) == pytest.approx(float((p - t)[mask].mean()), abs=1e-12)


def test_dark_bias_sign_and_no_dark_pixels():
    clean = torch.full((1, 3, 40, 40), 0.005, dtype=torch.float64)  # sRGB about 0.065: dark
    bias, count = dark_bias(clean + 0.001, clean)
    assert float(bias[0]) > 0 and int(count[0]) == 3 * 24 * 24  # brighter: positive
    assert float(dark_bias(clean - 0.001, clean)[0][0]) < 0
    assert float(dark_bias(clean, clean)[0][0]) == 0.0
    bright = torch.full((1, 3, 40, 40), 0.5, dtype=torch.float64)
    bias, count = dark_bias(bright, bright)
    assert int(count[0]) == 0 and torch.isnan(bias[0])


def test_dark_region_bias_keeps_the_inside_of_dark_regions():
    """``reach``: only values dark within the whole neighbourhood count, so a smoothed edge
    (a denoiser's regression to the mean) does not, while a shift of the dark inside does."""
    clean = torch.full((1, 1, 60, 60), 0.5, dtype=torch.float64)
    clean[..., 10:50, 10:50] = 0.002  # a dark square, sRGB about 0.026
    out = clean.clone()
    out[..., 10:12, 10:50] = 0.5  # its top edge smoothed into the bright side
    edge, _ = dark_bias(out, clean, border=0)
    inside, count = dark_bias(out, clean, reach=3, border=0)
    assert float(edge[0]) > 0.01 and float(inside[0]) == 0.0
    assert int(count[0]) == 34 * 34  # 40 - 2 * 3 per side
    shifted, _ = dark_bias(clean + 0.001, clean, reach=3, border=0)
    assert float(shifted[0]) > 0
