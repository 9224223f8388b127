from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from burstkpn.data.io.images import linear_to_srgb
from burstkpn.metrics import psnr, ssim
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
