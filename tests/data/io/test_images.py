from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from burstkpn.data.io.files import atomic_write_bytes, default_file_mode
from burstkpn.data.io.images import (
    image_to_tensor,
    linear_to_srgb,
    list_images,
    read_image,
    srgb_to_linear,
    write_image,
)
from burstkpn.errors import InputError, MissingInputError


def test_srgb_pair_round_trips():
    x = torch.linspace(-0.2, 1.5, 10001, dtype=torch.float64)
    assert torch.allclose(srgb_to_linear(linear_to_srgb(x)), x, atol=1e-12)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)


def test_srgb_matches_eq8_by_hand():
    # [DeformKernels] eq. (8): 12.92 Y below 0.0031308, else 1.055 Y^(1/2.4) - 0.055
    for y in (0.0, 0.001, 0.0031308, 0.01, 0.18, 0.5, 1.0):
        expected = 12.92 * y if y <= 0.0031308 else 1.055 * y ** (1 / 2.4) - 0.055
        got = float(linear_to_srgb(torch.tensor(y, dtype=torch.float64)))
        assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-15)
    # continuity at the threshold
    t = torch.tensor([0.0031308 - 1e-9, 0.0031308 + 1e-9], dtype=torch.float64)
    a, b = linear_to_srgb(t)
    assert abs(float(a - b)) < 1e-6


def test_srgb_gradients_finite_and_correct():
    x = torch.tensor([-0.1, 0.0, 0.002, 0.2, 0.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(linear_to_srgb, (x,))
    assert torch.autograd.gradcheck(srgb_to_linear, (x,))
    linear_to_srgb(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_write_read_round_trip(tmp_path, rng, bits, ext):
    img = rng.random((37, 53, 3))
    path = write_image(tmp_path / f"x{ext}", img, bits=bits)
    back = read_image(path)
    assert back.dtype == (np.uint8 if bits == 8 else np.uint16)
    assert back.shape == (37, 53, 3)
    maxval = 255 if bits == 8 else 65535
    assert np.abs(back / maxval - img).max() <= 0.5 / maxval + 1e-12
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"x{ext}"]  # no temporary left


def test_grayscale_and_alpha(tmp_path, rng):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "g.png", (rng.random((10, 12)) * 255).astype(np.uint8))
    iio.imwrite(tmp_path / "rgba.png", (rng.random((10, 12, 4)) * 255).astype(np.uint8))
    assert read_image(tmp_path / "g.png").shape == (10, 12, 1)
    assert read_image(tmp_path / "rgba.png").shape == (10, 12, 3)
    t = image_to_tensor(read_image(tmp_path / "g.png"))
    assert t.shape == (1, 10, 12) and t.dtype == torch.float32 and 0 <= t.min() <= t.max() <= 1


def test_embedded_default_needs_no_download():
    refs = list_images(None)
    assert refs[0] == "skimage:astronaut"
    img = read_image("astronaut")
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    assert list_images("chelsea") == ["skimage:chelsea"]


def test_list_images_folder_and_glob(photo_folder):
    files = list_images(photo_folder)
    assert [f.split("/")[-1] for f in files] == ["gray16.png", "img0.png", "img1.png", "img2.png"]
    assert len(list_images(str(photo_folder / "img*.png"))) == 3
    assert len(list_images([str(photo_folder / "img0.png"), "coffee"])) == 2


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(MissingInputError, match="no such"):
        list_images(tmp_path / "missing.png")
    with pytest.raises(MissingInputError, match="no such image"):
        read_image(tmp_path / "missing.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images"):
        list_images(empty)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="unsupported image format"):
        list_images(tmp_path / "notes.txt")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(InputError, match="cannot read image"):
        read_image(tmp_path / "corrupt.png")
    with pytest.raises(InputError, match="no images match"):
        list_images(str(tmp_path / "*.jpg"))


def test_nan_tiff_rejected(tmp_path):
    import tifffile

    arr = np.zeros((8, 8), np.float32)
    arr[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", arr)
    with pytest.raises(InputError, match="NaN or Inf"):
        read_image(tmp_path / "nan.tif")
    with pytest.raises(InputError, match="NaN or Inf"):
        write_image(tmp_path / "out.png", np.full((4, 4, 3), np.inf))


def test_written_files_get_normal_permissions(tmp_path):
    import os

    write_image(tmp_path / "a.png", np.zeros((4, 4, 3)))
    atomic_write_bytes(tmp_path / "b.bin", b"x")
    for name in ("a.png", "b.bin"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == default_file_mode()


def test_srgb_to_linear_in_place_path_equals_the_differentiable_one():
    """Without autograd the conversion runs in place (fewer temporaries); same values."""
    from burstkpn.data.io.images import srgb_to_linear

    x = torch.linspace(-0.1, 1.1, 2001, dtype=torch.float64)
    graded = srgb_to_linear(x.clone().requires_grad_())
    assert torch.equal(srgb_to_linear(x), graded.detach())
    assert torch.equal(
        srgb_to_linear(x.float()), srgb_to_linear(x.float().requires_grad_()).detach()
    )
