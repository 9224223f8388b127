"""``burstkpn make-testset --task deblur`` and ``burstkpn bench restore``."""

from __future__ import annotations

import json
from importlib.util import find_spec

import numpy as np
import pytest
import torch

from burstkpn.bench import restore as R
from burstkpn.cli import main
from burstkpn.data.degrade.blur import blur_image, convolve_valid, motion_blur_kernel
from burstkpn.data.io.images import write_image
from burstkpn.data.testsets.deblur import DeblurTestSet, make_deblur_testset
from burstkpn.errors import InputError
from burstkpn.models import create_model, save_model
from tests.conftest import gen


@pytest.fixture
def textured(tmp_path):
    """Three crops of embedded photos (detail that blur visibly removes)."""
    from burstkpn.data.io.images import image_to_tensor, read_image

    folder = tmp_path / "textured"
    for name, (y, x) in (("astronaut", (30, 150)), ("camera", (200, 200)), ("coffee", (60, 60))):
        arr = image_to_tensor(read_image(f"skimage:{name}"))[:, y : y + 72, x : x + 80]
        write_image(folder / f"{name}.png", arr.permute(1, 2, 0).numpy())
    return folder


@pytest.fixture
def blurset(tmp_path, textured):
    out = tmp_path / "blur"
    make_deblur_testset(textured, out, progress=False)
    return out


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    return save_model(create_model("dcn_lka", "tiny"), tmp_path / "dcn.safetensors")


def test_convolution_matches_the_training_blur():
    img = torch.rand(3, 40, 37, generator=gen(0))
    k = motion_blur_kernel(9, gen(1))
    assert torch.allclose(convolve_valid(img, k), blur_image(img, k, mode="valid"), atol=1e-6)


def test_deblur_testset_is_byte_reproducible_with_true_kernels(tmp_path, textured, blurset):
    again = tmp_path / "again"
    assert main(["make-testset", "--task", "deblur", str(textured), "--out", str(again),
                 "--seed", "0", "--quiet"]) == 0  # fmt: skip
    files = sorted(p.relative_to(blurset) for p in blurset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((blurset / f).read_bytes() == (again / f).read_bytes() for f in files)
    ts = DeblurTestSet(blurset)
    assert len(ts) == 3 and ts.levels == ["none"]
    pair = next(iter(ts))
    assert pair.kernel.shape == (15, 15) and abs(float(pair.kernel.sum()) - 1) < 1e-5
    assert pair.degraded.shape == pair.clean.shape == (1, 3, 72 - 14, 80 - 14)
    entry = ts.entries[0]
    assert entry["sha256"] and entry["size"] == [58, 66]
    other = tmp_path / "seed1"
    make_deblur_testset(textured, other, seed=1, levels=["none", "gain1"], progress=False)
    assert DeblurTestSet(other).levels == ["none", "gain1"] and len(DeblurTestSet(other)) == 6
    assert (
        json.loads((other / "manifest.json").read_text())["pairs"][0]["sha256"] != (entry["sha256"])
    )
    (blurset / entry["file"]).write_bytes(b"corrupt")
    with pytest.raises(InputError, match="sha256"):
        ts.load(entry)


def test_bench_restore_deblur(tmp_path, blurset, ckpt, capsys):
    out = tmp_path / "rep"
    args = ["bench", "restore", "--task", "deblur", "--testset", str(blurset), "--out", str(out)]
    methods = f"blurry,wiener,richardson_lucy,dcn_lka_deblur,{ckpt}"
    assert main([*args, "--methods", methods, "--limit", "2", "--quiet"]) == 0
    for name in ("results.csv", "results.json", "report.md"):
        assert (out / name).is_file()
    res = json.loads((out / "results.json").read_text())
    assert res["pairs"] == 2 and res["task"] == "deblur"
    rows = {r["method"]: r for r in res["summary"]["rows"]}
    psnr = {m: r["psnr"]["none"] for m, r in rows.items()}
    # with the true kernel and no noise, deconvolution clearly beats the blurry input
    assert psnr["wiener"] > psnr["blurry"] + 2 and psnr["richardson_lucy"] > psnr["blurry"] + 2
    assert abs(psnr[str(ckpt)] - psnr["blurry"]) < 1e-6  # an untrained dcn_lka is the identity
    from burstkpn.models.factory import weights_dir

    if not (weights_dir() / "dcn_lka_deblur.safetensors").exists():
        assert "dcn_lka_deblur" in res["summary"]["skipped"]
    report = (out / "report.md").read_text()
    assert "| wiener |" in report and "Standing" in report


def _polyu(root, n=2, size=64):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / 8.0
    for i in range(n):
        clean = np.stack([np.sin(xx + i), np.cos(yy), np.sin(xx + yy)], axis=-1) * 0.3 + 0.5
        noisy = clean + rng.normal(0, 0.06, clean.shape)
        write_image(root / f"Cam_{i}_mean.png", clean)
        write_image(root / f"Cam_{i}_real.png", noisy.clip(0, 1))
    return root


def test_bench_restore_denoise_on_real_pair_layout(tmp_path, ckpt):
    pairs = _polyu(tmp_path / "polyu")
    methods = ["reference", "nlm", str(ckpt)] + (["bm3d"] if find_spec("bm3d") else [])
    summary = R.run_restore(
        "denoise", methods, tmp_path / "rep", pairs=pairs, progress=False, command="t"
    )
    assert summary["levels"] == ["polyu"]
    psnr = {r["method"]: r["psnr"]["polyu"] for r in summary["rows"]}
    assert psnr["nlm"] > psnr["reference"] + 3  # sigma estimated from the image
    if "bm3d" in psnr:
        assert psnr["bm3d"] > psnr["reference"] + 3
    with pytest.raises(InputError, match="unknown denoise method"):
        R.resolve_restore_method("wiener", "denoise")
    with pytest.raises(InputError, match="either --testset"):
        R.evaluate_restore("denoise", ["reference"], progress=False)


def test_bench_restore_on_the_shared_polyu_pairs(tmp_path, shared_data):
    summary = R.run_restore(
        "denoise",
        ["reference", "nlm"],
        tmp_path / "rep",
        pairs=shared_data / "real" / "polyu",
        limit=1,
        progress=False,
    )
    psnr = {r["method"]: r["psnr"]["polyu"] for r in summary["rows"]}
    assert 25 < psnr["reference"] < psnr["nlm"]
