from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from burstkpn.data.images import image_to_tensor, linear_to_srgb, srgb_to_linear
from burstkpn.data.paired import (
    PairedImageDataset,
    SyntheticBlurPairs,
    SyntheticNoisyPairs,
    blur_image,
    correlated_noise,
    find_pairs,
    motion_blur_kernel,
)
from burstkpn.errors import InputError, MissingInputError
from tests.conftest import gen


def _img(rng: np.random.Generator, h: int = 40, w: int = 48) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, arr, extension=path.suffix.lower())


@pytest.fixture
def sidd(tmp_path: Path, rng: np.random.Generator) -> Path:
    root = tmp_path / "SIDD_Medium_Srgb" / "Data"
    for scene in ("0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N"):
        sid = scene[:4]
        for k in ("010", "011"):
            clean = _img(rng)
            noisy = np.clip(clean.astype(int) + rng.integers(-9, 10, clean.shape), 0, 255)
            _write(root / scene / f"{sid}_GT_SRGB_{k}.PNG", clean)
            _write(root / scene / f"{sid}_NOISY_SRGB_{k}.PNG", noisy.astype(np.uint8))
    return tmp_path / "SIDD_Medium_Srgb"


@pytest.fixture
def gopro(tmp_path: Path, rng: np.random.Generator) -> Path:
    root = tmp_path / "GOPRO_Large" / "train"
    for seq in ("GOPR0372_07_00", "GOPR0374_11_00"):
        for frame in ("000047.png", "000048.png"):
            _write(root / seq / "sharp" / frame, _img(rng))
            _write(root / seq / "blur" / frame, _img(rng))
            _write(root / seq / "blur_gamma" / frame, _img(rng))  # ignored, as in GoPro
    return root


def test_sidd_layout(sidd: Path):
    pairs = find_pairs(sidd)
    assert len(pairs) == 4
    for noisy, gt in pairs:
        assert "NOISY" in noisy.name and gt.name == noisy.name.replace("NOISY", "GT")
        assert gt.parent == noisy.parent
    assert find_pairs(sidd, "sidd") == pairs


def test_gopro_layout(gopro: Path):
    pairs = find_pairs(gopro)
    assert len(pairs) == 4
    for blur, sharp in pairs:
        assert blur.parent.name == "blur" and sharp.parent.name == "sharp"
        assert blur.name == sharp.name and blur.parent.parent == sharp.parent.parent


def test_polyu_layout(tmp_path: Path, rng: np.random.Generator):
    for name in (
        "Canon5D2_bag_Real",
        "Canon5D2_bag_mean",
        "Nikon_5_chair_real",
        "Nikon_5_chair_mean",
    ):
        _write(tmp_path / f"{name}.JPG", _img(rng))
    pairs = find_pairs(tmp_path)
    assert [(a.name, b.name) for a, b in pairs] == [
        ("Canon5D2_bag_Real.JPG", "Canon5D2_bag_mean.JPG"),
        ("Nikon_5_chair_real.JPG", "Nikon_5_chair_mean.JPG"),
    ]


def test_polyu_shared_folder(shared_data: Path):
    folder = shared_data / "real" / "polyu"
    if not folder.is_dir():
        pytest.skip("no PolyU folder")
    pairs = find_pairs(folder)
    assert len(pairs) >= 1 and all(a.stem.lower().endswith("_real") for a, _ in pairs)


def test_bad_folders(tmp_path: Path, rng: np.random.Generator):
    with pytest.raises(MissingInputError, match="no such folder"):
        find_pairs(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images"):
        find_pairs(empty)
    other = tmp_path / "other"
    _write(other / "cat.png", _img(rng))
    with pytest.raises(InputError, match="no SIDD .* GoPro .* PolyU"):
        find_pairs(other)
    with pytest.raises(InputError, match="unknown pair layout"):
        find_pairs(other, "div2k")
    lonely = tmp_path / "lonely" / "scene"
    _write(lonely / "0001_NOISY_SRGB_010.PNG", _img(rng))
    with pytest.raises(InputError, match=r"no ground truth .*0001_NOISY_SRGB_010.PNG"):
        find_pairs(lonely.parent)
    gt_only = tmp_path / "gt_only"
    _write(gt_only / "a" / "0001_NOISY_SRGB_010.PNG", _img(rng))
    _write(gt_only / "a" / "0001_GT_SRGB_010.PNG", _img(rng))
    _write(gt_only / "a" / "0001_GT_SRGB_011.PNG", _img(rng))
    with pytest.raises(InputError, match="no noisy image .*0001_GT_SRGB_011"):
        find_pairs(gt_only, "sidd")
    unsharp = tmp_path / "unsharp" / "seq"
    _write(unsharp / "blur" / "000001.png", _img(rng))
    _write(unsharp / "sharp" / "000002.png", _img(rng))
    with pytest.raises(InputError, match="no sharp/ image for .*000001.png"):
        find_pairs(unsharp.parent)
    sizes = tmp_path / "sizes"
    _write(sizes / "x_real.png", _img(rng, 40, 48))
    _write(sizes / "x_mean.png", _img(rng, 40, 50))
    with pytest.raises(
        InputError, match="size mismatch: 'x_real.png' is 48x40 but 'x_mean.png' is 50x40"
    ):
        find_pairs(sizes)


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


@pytest.mark.parametrize("size", [1, 3, 15, 31])
def test_motion_blur_kernels(size: int):
    for seed in range(5):
        k = motion_blur_kernel(size, gen(seed))
        assert k.shape == (size, size) and k.dtype == torch.float32
        assert (k >= 0).all() and abs(float(k.sum()) - 1) < 1e-6
        # centroid on the centre pixel, so blurring does not shift the image
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        c = (size - 1) / 2
        assert abs(float((k * ys).sum()) - c) < 1e-4 and abs(float((k * xs).sum()) - c) < 1e-4
        assert torch.equal(k, motion_blur_kernel(size, gen(seed)))  # seeded, reproducible
    if size > 1:
        assert not torch.equal(motion_blur_kernel(size, gen(0)), motion_blur_kernel(size, gen(1)))


def test_motion_blur_kernel_extent_and_shape():
    delta = motion_blur_kernel(9, gen(0), extent=0)
    assert delta[4, 4] == 1 and delta.sum() == 1
    k = motion_blur_kernel(21, gen(1), extent=3.0)
    rows, cols = torch.nonzero(k, as_tuple=True)
    assert rows.min() >= 10 - 4 and rows.max() <= 10 + 4 and cols.min() >= 6 and cols.max() <= 14
    big = motion_blur_kernel(21, gen(1), extent=10.0)
    assert (big > 0).sum() > (k > 0).sum()  # a longer path covers more pixels
    # constant velocity (momentum 1, no jitter): a uniform straight stroke through the centre
    straight = motion_blur_kernel(31, gen(2), extent=15.0, momentum=1.0, jitter=0.0)
    rows, cols = torch.nonzero(straight, as_tuple=True)
    pts = torch.stack([rows, cols], 1).double() - 15
    _, _, vh = torch.linalg.svd(pts, full_matrices=False)
    along, across = pts @ vh[0], pts @ vh[1]
    assert across.abs().max() <= 1.5 and along.max() - along.min() >= 28
    with pytest.raises(InputError, match="odd"):
        motion_blur_kernel(4, gen(0))
    with pytest.raises(InputError, match="extent"):
        motion_blur_kernel(5, gen(0), extent=3.0)


def test_blur_image_is_a_convolution():
    img = torch.rand(2, 20, 24, generator=gen(0))
    k = torch.zeros(5, 5)
    k[2, 4] = 1.0  # a point spreads two pixels to the right
    out = blur_image(img, k, mode="valid")
    assert out.shape == (2, 16, 20)
    assert torch.allclose(out, img[:, 2:-2, :-4])
    k = motion_blur_kernel(7, gen(1))
    same = blur_image(img[None], k)
    assert same.shape == (1, 2, 20, 24)
    assert torch.allclose(same[0, :, 3:-3, 3:-3], blur_image(img, k, mode="valid"), atol=1e-6)
    flat = torch.full((1, 12, 12), 0.3)
    assert torch.allclose(blur_image(flat, k), flat, atol=1e-6)  # sums to 1
    ref = F.conv2d(img[:, None], k.flip(0, 1)[None, None])[:, 0]
    assert torch.allclose(blur_image(img, k, mode="valid"), ref, atol=1e-6)
    with pytest.raises(InputError, match="odd"):
        blur_image(img, torch.ones(4, 4) / 16)


def test_correlated_noise_has_unit_variance():
    white = correlated_noise((2, 3, 64, 64), 0.0, gen(0))
    corr = correlated_noise((2, 3, 64, 64), 1.0, gen(0))
    assert abs(float(white.std()) - 1) < 0.03 and abs(float(corr.std()) - 1) < 0.1
    lag1 = float((corr[..., 1:] * corr[..., :-1]).mean())
    assert lag1 > 0.5 and abs(float((white[..., 1:] * white[..., :-1]).mean())) < 0.05


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
