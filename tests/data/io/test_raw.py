"""Camera raw input (rawpy): DNG files written here with tifffile (a CFA mosaic plus the DNG
tags LibRaw needs), so the test knows the scene the raw file encodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from burstkpn.cli import main
from burstkpn.data.io.images import list_images, read_image, srgb_to_linear
from burstkpn.errors import InputError
from burstkpn.models import create_model, save_model

rawpy = pytest.importorskip("rawpy")
tifffile = pytest.importorskip("tifffile")

BLACK, WHITE = 256, 4095


@pytest.fixture
def tiny_ckpt(tmp_path):
    torch.manual_seed(0)
    return save_model(create_model("ame_kpn", "tiny"), tmp_path / "tiny.safetensors")


def write_dng(path, linear: np.ndarray, seed: int = 0, noise: float = 0.0) -> None:
    """A Bayer (RGGB) DNG of a linear ``(H, W, 3)`` scene in [0, 1], with black level 256,
    white level 4095, identity colour matrix and neutral white balance."""
    h, w, _ = linear.shape
    rng = np.random.default_rng(seed)
    plane = np.empty((h, w))
    plane[0::2, 0::2] = linear[0::2, 0::2, 0]
    plane[0::2, 1::2] = linear[0::2, 1::2, 1]
    plane[1::2, 0::2] = linear[1::2, 0::2, 1]
    plane[1::2, 1::2] = linear[1::2, 1::2, 2]
    plane = plane + rng.normal(0, noise, plane.shape)
    cfa = np.round(BLACK + plane.clip(0, 1) * (WHITE - BLACK)).astype(np.uint16)
    tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "burstkpn test camera", True),  # UniqueCameraModel
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: R G / G B
        (50714, "H", 1, BLACK, True),  # BlackLevel
        (50717, "H", 1, WHITE, True),  # WhiteLevel
        (50721, "2i", 9, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1), True),
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral
    ]
    tifffile.imwrite(path, cfa, photometric=32803, extratags=tags, subfiletype=0)


def test_uniform_grey_raw_develops_to_grey(tmp_path):
    path = tmp_path / "grey.dng"
    write_dng(path, np.full((48, 64, 3), 0.25))
    img = read_image(path)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint16
    lin = srgb_to_linear(torch.from_numpy(img / 65535.0)).numpy()
    centre = lin[8:-8, 8:-8]
    # black / white levels applied: 0.25 of the range comes back as 0.25 in linear light
    assert np.allclose(centre.mean(axis=(0, 1)), 0.25, atol=0.02), centre.mean(axis=(0, 1))
    assert centre.std() < 0.01


def test_denoise_a_raw_burst_writes_16_bit_srgb(tmp_path, tiny_ckpt, capsys):
    folder = tmp_path / "raw"
    folder.mkdir()
    yy, xx = np.mgrid[0:48, 0:64] / 7.0
    scene = np.repeat((0.3 + 0.2 * np.sin(xx) * np.cos(yy))[:, :, None], 3, 2)
    for i in range(4):
        write_dng(folder / f"IMG_{i}.dng", scene, seed=i, noise=0.01)
    assert len(list_images(folder)) == 4
    out = tmp_path / "out.png"
    assert main(["denoise", str(folder), "-o", str(out), "--model", str(tiny_ckpt), "--quiet"]) == 0
    img = read_image(out)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint16
    args = ["denoise", str(folder), "-o", str(tmp_path / "b.png"), "--linear", "--quiet"]
    assert main(args) == 2
    assert "drop --linear" in capsys.readouterr().err


def test_corrupt_raw_is_a_one_line_error(tmp_path):
    bad = tmp_path / "broken.nef"
    bad.write_bytes(b"not a raw file at all" * 10)
    with pytest.raises(InputError, match="cannot read raw file") as info:
        read_image(bad)
    assert "\n" not in str(info.value)


def test_missing_rawpy_is_explained(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_rawpy(name, *args, **kwargs):
        if name == "rawpy":
            raise ImportError("no rawpy")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rawpy)
    path = tmp_path / "x.dng"
    path.write_bytes(b"x")
    with pytest.raises(InputError, match=r"burstkpn\[raw\]"):
        read_image(path)
