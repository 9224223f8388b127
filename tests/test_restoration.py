"""Single-image restoration: ``burstkpn deblur``, ``burstkpn denoise IMAGE`` with a single-image
model, tiled inference of dcn_lka."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from burstkpn.cli import main
from burstkpn.data.io.images import linear_to_srgb, load_linear, read_image, write_image
from burstkpn.inference import weights_name
from burstkpn.metrics import psnr
from burstkpn.models import create_model, save_model
from burstkpn.restoration import is_single_image, restore, restore_image
from tests.conftest import gen


def _perturbed(size: str = "tiny") -> torch.nn.Module:
    """dcn_lka with its zero-initialised layers (offsets, masks, output) made random, so the
    model is not the identity and its deformable offsets depend on the image."""
    torch.manual_seed(0)
    model = create_model("dcn_lka", size)
    with torch.no_grad():
        model.tail.weight.copy_(torch.randn(model.tail.weight.shape, generator=gen(1)) * 0.05)
        om = model.deform.deform.offset_mask
        om.weight.copy_(torch.randn(om.weight.shape, generator=gen(2)) * 0.1)
    return model.eval()


@pytest.fixture
def ckpt(tmp_path):
    return save_model(_perturbed(), tmp_path / "dcn.safetensors")


def _photo(path, bits=8, size=(40, 52), channels=3):
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]] / 7.0
    base = 0.5 + 0.3 * np.sin(xx) * np.cos(yy)
    img = np.repeat(base[:, :, None], channels, 2)
    img += np.random.default_rng(0).normal(0, 0.03, img.shape)
    return write_image(path, img.clip(0, 1), bits=bits)


def test_single_image_attribute():
    assert is_single_image(create_model("dcn_lka", "tiny"))
    assert not is_single_image(create_model("kpn", "tiny"))
    assert weights_name("dcn_lka", "deblur") == "dcn_lka_deblur"
    assert weights_name("kpn", "denoise") == "kpn"  # shipped burst weights keep their name


@pytest.mark.parametrize("bits", [8, 16])
def test_deblur_cli_keeps_bit_depth_and_never_overwrites(tmp_path, ckpt, bits, capsys):
    src = _photo(tmp_path / "in.png", bits)
    before = src.read_bytes()
    out = tmp_path / "out.png"
    args = ["deblur", str(src), "-o", str(out), "--model", str(ckpt), "--quiet"]
    assert main(args) == 0
    img = read_image(out)
    assert img.shape == (40, 52, 3) and img.dtype == (np.uint8 if bits == 8 else np.uint16)
    assert "deblurred" in capsys.readouterr().out
    assert main(args) == 2 and "exists (use --force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert main(["deblur", str(src), "-o", str(src), "--model", str(ckpt)]) == 2
    assert "is one of the inputs" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_missing_shipped_weights_and_burst_models_one_line_errors(tmp_path, capsys):
    src = _photo(tmp_path / "in.png")
    out = str(tmp_path / "out.png")
    from burstkpn.models.factory import weights_dir

    if not (weights_dir() / "dcn_lka_deblur.safetensors").exists():  # until they ship
        assert main(["deblur", str(src), "-o", out]) == 2
        err = capsys.readouterr().err
        assert "no shipped weights for 'dcn_lka_deblur'" in err
        assert len(err.strip().splitlines()) == 1
    kpn = save_model(create_model("kpn", "tiny"), tmp_path / "kpn.safetensors")
    assert main(["deblur", str(src), "-o", out, "--model", str(kpn)]) == 2
    assert "is a burst model" in capsys.readouterr().err
    # burst models keep refusing single frames
    assert main(["denoise", str(src), "-o", out, "--model", str(kpn)]) == 2
    assert "at least 2 frames" in capsys.readouterr().err


def test_denoise_one_image_with_a_single_image_model(tmp_path, ckpt, capsys):
    src = _photo(tmp_path / "in.png", 16, channels=1)
    out = tmp_path / "out.tif"
    assert main(["denoise", str(src), "-o", str(out), "--model", str(ckpt), "--quiet"]) == 0
    img = read_image(out)
    assert img.shape == (40, 52, 1) and img.dtype == np.uint16
    assert "denoised" in capsys.readouterr().out
    two = [str(src), str(_photo(tmp_path / "b.png"))]
    assert main(["denoise", *two, "-o", str(tmp_path / "o.png"), "--model", str(ckpt)]) == 2
    assert "single-image model: give one image, got 2" in capsys.readouterr().err
    arr = restore(str(src), str(ckpt), task="denoise")  # Python API
    assert arr.shape == (40, 52, 1) and 0 <= arr.min() <= arr.max() <= 1


def test_tiled_dcn_lka_is_close_to_whole_image():
    """dcn_lka's reach is data-dependent (deformable offsets) and wide (every LKA block adds
    48 px), so tiles with a 32 px margin are approximate; measured here on a perturbed cpu-size
    model: max |tiled - whole| ~ 5e-5 (sRGB), PSNR ~ 110 dB; 64 px: ~ 5e-7. In float32, so
    that the tiling is measured: on a CPU with native bfloat16 ("auto" precision) the two
    passes also round differently (max difference ~ 4e-3)."""
    model = _perturbed("cpu")
    img = linear_to_srgb(load_linear("skimage:astronaut"))[:, 100:260, 150:310]
    whole = restore_image(img, model, tile=0, precision="fp32")
    assert (whole - img).abs().mean() > 1e-3  # the model does change the image
    tiled = restore_image(img, model, tile=64, margin=32, precision="fp32")
    diff = (tiled - whole).abs()
    assert diff.max() < 2e-3 and psnr(tiled[None], whole[None], linear=False) > 60
    # one tile covering the image is the whole-image pass
    assert torch.equal(restore_image(img, model, tile=160, precision="fp32"), whole)
