"""``burstkpn bench real``: split-half pseudo ground truth of static bursts, real pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from burstkpn.bench import real as R
from burstkpn.cli import main
from burstkpn.data.io.images import image_to_tensor, linear_to_srgb, read_image, write_image
from burstkpn.errors import InputError
from burstkpn.models import create_model, save_model
from burstkpn.ops.align import estimate_shifts

SHIFTS = ((0, 0), (1, 0), (0, -1), (1, 1), (-1, 0), (0, 1))  # (dy, dx) px of each frame


def _scene(size: int = 96, pad: int = 4) -> np.ndarray:
    """A textured sRGB crop of an embedded photo, ``pad`` px larger on every side."""
    arr = image_to_tensor(read_image("skimage:astronaut")).permute(1, 2, 0).numpy()
    return arr[40 : 40 + size + 2 * pad, 180 : 180 + size + 2 * pad].astype(np.float64)


def _frames(sigma: float, size: int = 96, pad: int = 4, seed: int = 0) -> list[np.ndarray]:
    """The scene seen through a window moved by :data:`SHIFTS`, with independent noise."""
    scene, rng = _scene(size, pad), np.random.default_rng(seed)
    out = []
    for dy, dx in SHIFTS:
        crop = scene[pad + dy : pad + dy + size, pad + dx : pad + dx + size]
        out.append((crop + rng.normal(0, sigma, crop.shape)).clip(0, 1))
    return out


@pytest.fixture
def burst_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "burst"
    for i, frame in enumerate(_frames(0.04)):
        write_image(folder / f"frame-{i:03d}.png", frame)
    return folder


@pytest.fixture
def tiny_kpn(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(create_model("kpn", "tiny"), tmp_path / "tiny_kpn.safetensors")


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_split_is_the_documented_halves():
    assert R.split_burst(7) == R.Split((0, 1, 2, 3), (4, 5, 6))
    assert R.split_burst(6) == R.Split((0, 1, 2), (3, 4, 5))
    assert R.split_burst(3) == R.Split((0, 1), (2,))
    with pytest.raises(InputError, match="at least 3 frames"):
        R.split_burst(2)


def test_center_crop():
    x = torch.arange(6 * 8.0).reshape(1, 6, 8)
    assert torch.equal(R.center_crop(x, 4), x[:, 1:5, 2:6])
    assert torch.equal(R.center_crop(x, 100), x) and R.center_crop(x, None) is x


def test_pseudo_ground_truth_of_a_noiseless_burst_is_the_reference():
    from burstkpn.data.io.images import srgb_to_linear

    frames = torch.stack([torch.from_numpy(f).permute(2, 0, 1) for f in _frames(0.0)]).float()
    linear = srgb_to_linear(frames)
    shifts = np.array(SHIFTS, dtype=np.float64)  # frame i at p shows the reference at p + d_i
    assert np.allclose(estimate_shifts(linear), shifts, atol=0.25)  # what the bench finds
    split = R.split_burst(len(SHIFTS))
    truth = R.pseudo_ground_truth(linear[list(split.truth)], shifts[list(split.truth)])
    b = R.alignment_border(shifts)
    assert b == R.BURST_BORDER
    inner = (truth - frames[0])[:, b:-b, b:-b].abs()
    assert float(inner.max()) < 2e-3
    # identical frames: the mean of copies is the frame itself
    same = linear[:1].repeat(3, 1, 1, 1)
    assert torch.allclose(R.pseudo_ground_truth(same, np.zeros((3, 2))), frames[0], atol=1e-5)


def test_align_mean_beats_the_noisy_reference(burst_dir, tmp_path):
    payload = R.run_real_burst(
        burst_dir, ["reference", "align_mean"], tmp_path / "rep", progress=False
    )
    by = {r["method"]: r for r in payload["rows"]}
    assert by["align_mean"]["psnr"] > by["reference"]["psnr"] + 1.5
    assert by["align_mean"]["ssim"] > by["reference"]["ssim"]
    case = payload["cases"][0]
    assert case["denoised"] == ["frame-000.png", "frame-001.png", "frame-002.png"]
    assert case["pseudo_ground_truth"] == ["frame-003.png", "frame-004.png", "frame-005.png"]
    assert case["noise"]["sigma_r"] > 0 or case["noise"]["sigma_s"] > 0


def test_every_method_gets_the_measured_noise_level(burst_dir, monkeypatch):
    frames = torch.stack([image_to_tensor(read_image(p)) for p in sorted(burst_dir.iterdir())])
    measured = object()  # the estimator's own result, per-channel levels and all
    level = R.Level(0.01, 0.002, "stub", measured)
    monkeypatch.setattr(R, "measure_burst_noise", lambda burst: level)
    case = R.burst_case(frames, "b")
    assert case.frames.shape[0] == 3 and (case.sigma_r, case.sigma_s) == (0.01, 0.002)
    item = case.item()  # what the classical methods read: the pooled level
    assert (item.sigma_r, item.sigma_s) == (0.01, 0.002)
    seen = {}

    def fake(frames, model, *, noise, tile):
        seen["noise"] = noise
        return type("R", (), {"image": frames[0]})

    monkeypatch.setattr(R, "denoise_burst", fake)
    R.burst_model_method(create_model("kpn", "tiny"))(case)
    assert seen["noise"] is measured  # the models: the measurement, as burstkpn denoise
    assert R.Level(0.01, 0.002, "spatial").for_models() == (0.01, 0.002)


def test_cli_writes_json_markdown_png_and_html(burst_dir, tiny_kpn, tmp_path, capsys):
    out = tmp_path / "rep"
    methods = f"reference,align_mean,nlm,{tiny_kpn}"
    code, printed, err = _run(
        capsys, "bench", "real", burst_dir, "--methods", methods, "--crop", 80, "--out", out,
        "--quiet",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in data["summary"]["rows"]] == [
        "reference", "align_mean", "nlm", str(tiny_kpn)
    ]  # fmt: skip
    assert data["cases"][0]["size"] == [80, 80] and data["cases"][0]["border"] == 16
    md = (out / "report.md").read_text()
    assert "| Method | burst PSNR | burst SSIM | s / MP |" in md
    assert "lower bounds" in md and "![burst](crops.png)" in md
    with Image.open(out / "crops.png") as im:
        assert im.width > 4 * 80 and im.height > 2 * 80  # panels side by side, crop + detail
    assert "<table" in (out / "real.html").read_text()
    assert "noise sigma_r=" in printed


@pytest.mark.parametrize("frames", [None, 1])
def test_missing_or_one_frame_folder_is_a_one_line_error(tmp_path, capsys, frames):
    folder = tmp_path / "burst"
    if frames is not None:
        write_image(folder / "only.png", _frames(0.02)[0])
    code, _, err = _run(capsys, "bench", "real", folder, "--out", tmp_path / "rep")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ("no such file" in err) if frames is None else ("at least 3 frames" in err)
    assert not (tmp_path / "rep").exists()


def test_folder_and_pairs_are_exclusive(tmp_path, capsys):
    code, _, err = _run(capsys, "bench", "real", "--out", tmp_path / "rep")
    assert code == 2 and "FOLDER or --pairs" in err
    code, _, err = _run(capsys, "bench", "real", tmp_path, "--pairs", tmp_path)
    assert code == 2 and "FOLDER or --pairs" in err


def _pairs(folder: Path, names: dict[str, str]) -> Path:
    """PolyU-style pairs: ``noisy file name -> mean file name``."""
    clean = _frames(0.0, size=64)[0]
    rng = np.random.default_rng(3)
    for noisy, mean in names.items():
        write_image(folder / mean, clean)
        write_image(folder / noisy, (clean + rng.normal(0, 0.03, clean.shape)).clip(0, 1))
    return folder


def test_pairs_are_matched_case_insensitively_and_burst_models_see_one_frame(tmp_path, tiny_kpn):
    folder = _pairs(tmp_path / "polyu", {"A_real.JPG": "A_mean.JPG", "b_Real.JPG": "b_mean.JPG"})
    loaders, layout = R.pair_loaders(folder)
    assert layout == "polyu" and [load().name for load in loaders] == ["A", "b"]
    methods = ["reference", "nlm", str(tiny_kpn)]
    payload = R.run_real_pairs(folder, methods, tmp_path / "rep", progress=False)
    # burst models get the one image in every frame slot (a spatial filter, no averaging)
    assert {r["method"] for r in payload["rows"]} == {"reference", "nlm", str(tiny_kpn)}
    assert payload["per_image"]["levels"] == ["A", "b"]
    by = {r["method"]: r for r in payload["summary"]["rows"]}
    assert by["nlm"]["psnr"]["polyu"] > by["reference"]["psnr"]["polyu"]
    assert (tmp_path / "rep" / "crops_A.png").is_file()
    (folder / "C_real.JPG").write_bytes((folder / "A_real.JPG").read_bytes())
    with pytest.raises(InputError, match="no _mean image"):
        R.pair_loaders(folder)


def test_missing_shipped_weights_are_skipped_and_unknown_names_refused(monkeypatch, tmp_path):
    monkeypatch.setattr("burstkpn.models.factory.weights_dir", lambda: tmp_path)
    fn, note = R.resolve_real_method("ame_kpn_real")
    assert fn is None and "no shipped weights" in note
    with pytest.raises(InputError, match="unknown method"):
        R.resolve_real_method("nlmm")


def test_parser_defaults_match_the_library():
    from burstkpn.cli import bench as cli

    assert cli.DEFAULT_REAL_METHODS == R.DEFAULT_BURST_METHODS
    assert cli.DEFAULT_PAIR_METHODS == R.DEFAULT_PAIR_METHODS


def test_the_hdrplus_burst_averages_above_its_reference(shared_data, tmp_path):
    folder = shared_data / "real" / "hdrplus_static"
    if not folder.is_dir():
        pytest.skip(f"{folder} not available")
    payload = R.run_real_burst(
        folder, ["reference", "align_mean"], tmp_path / "rep", crop=128, progress=False
    )
    by = {r["method"]: r["psnr"] for r in payload["rows"]}
    assert by["align_mean"] > by["reference"]
    assert payload["cases"][0]["denoised"][0] == "frame-000.jpg"


def test_grid_panel_outlines_the_detail_window():
    img = linear_to_srgb(torch.rand(3, 40, 50))
    crop, detail = R.grid_boxes(img)
    assert crop == (0, 5, 40) and detail[2] == 40
    panel = R.grid_panel(img, crop, detail)
    assert panel.shape == (80, 40, 3) and panel.dtype == np.uint8


def test_noise_falls_back_to_the_single_image_estimator(monkeypatch):
    from burstkpn.data.degrade import estimate
    from burstkpn.data.io.images import srgb_to_linear

    frames = torch.stack([torch.from_numpy(f).permute(2, 0, 1) for f in _frames(0.03)])
    burst = srgb_to_linear(frames.float())[:3]
    level = R.measure_burst_noise(burst)
    assert level.estimator == "estimate_burst_noise" and level.measured is not None
    assert R.measure_burst_noise(burst[:2]).estimator == "estimate_or_floor"  # 2 frames
    monkeypatch.delattr(estimate, "estimate_burst_noise", raising=False)
    level = R.measure_burst_noise(burst)
    assert level.estimator == "estimate_or_floor" and level.measured is None
    assert (level.sigma_r, level.sigma_s) == estimate.estimate_or_floor(burst)
