"""Pair datasets (``burstkpn.data.datasets``): real pairs, synthetic noisy and blurry pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from burstkpn.data.datasets import PairedImageDataset, SyntheticBlurPairs, SyntheticNoisyPairs
from burstkpn.data.degrade.blur import blur_image
from burstkpn.data.io.images import image_to_tensor, linear_to_srgb, srgb_to_linear
from burstkpn.errors import InputError
from tests.data.io.test_pairs import _write


def test_paired_dataset_gives_aligned_seeded_patches(tmp_path: Path, rng: np.random.Generator):
    # the noisy image is the clean one plus a constant: aligned crops differ by that constant
    clean = rng.integers(20, 200, (50, 60, 3), dtype=np.uint8)
    _write(tmp_path / "s" / "0001_GT_SRGB_010.PNG", clean)
    _write(tmp_path / "s" / "0001_NOISY_SRGB_010.PNG", clean + 30)
    ds = PairedImageDataset(tmp_path, patch_size=16, length=6, seed=3)
    for i in range(len(ds)):
        item = ds[i]
        assert item["noisy"].shape == (1, 3, 16, 16) and item["clean"].shape == (3, 16, 16)
        expected = srgb_to_linear(linear_to_srgb(item["clean"]) + 30 / 255)
        assert torch.allclose(item["noisy"][0], expected, atol=1e-4)
    a, b = ds[2], PairedImageDataset(tmp_path, patch_size=16, length=6, seed=3, preload=True)[2]
    assert torch.equal(a["noisy"], b["noisy"]) and torch.equal(a["clean"], b["clean"])
    ds.set_epoch(1)
    assert not torch.equal(ds[2]["clean"], a["clean"])
    gray = PairedImageDataset(tmp_path, patch_size=16, length=2, channels="random", seed=0)[1]
    assert gray["noisy"].shape == (1, 1, 16, 16) and gray["clean"].shape == (1, 16, 16)
    whole = ds.load_pair(0)
    assert whole[1].shape == (3, 50, 60)
    assert torch.allclose(whole[1], srgb_to_linear(image_to_tensor(clean)))
    with pytest.raises(InputError, match="smaller than the patch"):
        PairedImageDataset(tmp_path, patch_size=55)
    with pytest.raises(IndexError):
        ds[6]


def test_synthetic_noisy_pairs(photo_folder: Path):
    ds = SyntheticNoisyPairs(photo_folder, patch_size=24, length=4, seed=1)
    item = ds[0]
    assert item["noisy"].shape == (1, 3, 24, 24) and item["noise_map"].shape == (3, 24, 24)
    assert torch.equal(item["noisy"], ds[0]["noisy"])  # seeded
    assert not torch.equal(item["noisy"], ds[1]["noisy"])
    residual = item["noisy"][0] - item["clean"]
    expected = (item["sigma_r"] ** 2 + item["sigma_s"] * item["clean"]).sqrt()
    assert 0.8 < float((residual / expected).std()) < 1.2  # the noise model's variance
    corr = SyntheticNoisyPairs(photo_folder, patch_size=24, length=2, correlation=(1.0, 1.0))
    assert corr[0]["noisy"].shape == (1, 3, 24, 24)
    with pytest.raises(InputError, match="smaller than"):
        SyntheticNoisyPairs(photo_folder, patch_size=190)


def test_synthetic_blur_pairs(photo_folder: Path):
    ds = SyntheticBlurPairs(photo_folder, patch_size=24, length=4, seed=2, kernel_size=9)
    item = ds[1]
    assert item["noisy"].shape == (1, 3, 24, 24) and item["clean"].shape == (3, 24, 24)
    assert item["kernel"].shape == (9, 9) and abs(float(item["kernel"].sum()) - 1) < 1e-6
    assert torch.equal(item["noisy"], ds[1]["noisy"])
    # the blurry patch is the valid convolution of the region around the sharp patch
    region, _ = ds._region(1)
    assert torch.allclose(item["clean"], region[:, 4:28, 4:28])
    assert torch.allclose(item["noisy"][0], blur_image(region, item["kernel"], "valid"))
    noisy = SyntheticBlurPairs(photo_folder, patch_size=24, length=2, kernel_size=9, noise=True)
    assert noisy[0]["noisy"].shape == (1, 3, 24, 24)
    with pytest.raises(InputError, match="odd"):
        SyntheticBlurPairs(photo_folder, kernel_size=8)
