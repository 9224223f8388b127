"""Degraded / clean pair folders (``burstkpn.data.io.pairs``): SIDD, GoPro, PolyU layouts."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from burstkpn.data.io.pairs import find_pairs
from burstkpn.errors import InputError, MissingInputError


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
