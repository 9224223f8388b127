"""ONNX export of the burst models and the onnxruntime backend (issue 25 item 4): the exported
graph runs alone and matches PyTorch in float32 at sizes other than the traced one, tiled
inference stays exact, and the command line gives one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from burstkpn.cli import main  # noqa: E402
from burstkpn.data.io.images import read_image, write_image  # noqa: E402
from burstkpn.denoising import denoise_burst, load_frames  # noqa: E402
from burstkpn.errors import InputError  # noqa: E402
from burstkpn.export import (  # noqa: E402
    OnnxModel,
    cached_export,
    export_onnx,
    read_onnx_metadata,
)
from burstkpn.inference.tiling import tiled_forward  # noqa: E402
from burstkpn.models import create_model, save_model  # noqa: E402
from burstkpn.models.factory import load_pretrained  # noqa: E402

TOL = 1e-4  # max abs difference, float32


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch) -> None:
    """On-the-fly exports go to a folder of this test, not the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _inputs(b: int, c: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(b, 8, c, h, w, generator=g), 0.02 + 0.05 * torch.rand(b, c, h, w, generator=g)


@pytest.mark.parametrize("name", ["kpn", "mkpn", "ame_kpn"])
def test_exported_file_runs_alone_and_matches_torch(name, tmp_path):
    """Shipped cpu-size weights, traced at 64x64 with one plane; run by plain onnxruntime on
    a batch of two colour bursts of 48x40 (dynamic batch, channels, height and width)."""
    model = load_pretrained(name)
    path = export_onnx(name, tmp_path / f"{name}.onnx")
    onnx.checker.check_model(str(path))
    meta = read_onnx_metadata(path)
    assert meta["architecture"] == name and meta["source"] == name
    assert (meta["num_frames"], meta["input_frames"], meta["multiple"]) == ("8", "8", "8")
    assert int(meta["tile_margin"]) > 0 and meta["blind"] == "false"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()][:2] == ["burst", "noise_map"]
    burst, nmap = _inputs(2, 3, 48, 40)
    (image,) = session.run(["image"], {"burst": burst.numpy(), "noise_map": nmap.numpy()})
    with torch.no_grad():
        reference = model(burst, nmap).image
    assert image.shape == (2, 3, 48, 40)
    assert np.abs(image - reference.numpy()).max() < TOL


def test_onnx_model_pads_sizes_off_the_multiple_and_tiles_exactly():
    """OnnxModel pads like the model; tiled inference with several tiles gives the untiled
    image, channel attention's whole-image statistics included ([AME-KPN] eq. 5)."""
    model = load_pretrained("ame_kpn")  # trained attention: per-tile statistics differ
    runner = OnnxModel(model)
    assert (runner.num_frames, runner.multiple, len(runner.attention_slots)) == (8, 8, 3)
    burst, nmap = _inputs(1, 2, 45, 38)
    with torch.no_grad():
        whole = model(burst, nmap).image
    assert (runner(burst, nmap).image - whole).abs().max() < TOL
    tiled = tiled_forward(runner, burst, nmap, tile=16, margin=16)  # the staged graphs
    # the single graph, a statistics pass per attention module (what an exported file runs)
    passes = tiled_forward(runner, burst, nmap, tile=16, margin=16, staged=False)
    torch_tiled = tiled_forward(model, burst, nmap, tile=16, margin=16, staged=False)
    per_tile = tiled_forward(runner, burst, nmap, tile=16, margin=16, exact_attention=False)
    assert (tiled - whole).abs().max() < TOL
    assert (passes - torch_tiled).abs().max() < TOL
    assert (per_tile - torch_tiled).abs().max() > 10 * TOL  # the statistics do matter
    assert all(slot.global_stats is None for slot in runner.attention_slots)


def test_staged_graphs_run_each_stage_once_per_tile_and_equal_the_whole_image(tmp_path):
    """A model with channel attention gets one graph per stage of the staged tiled path
    (exported once into the cache); tiled inference runs each once per tile of its stage and
    gives the untiled image; an exported file alone keeps the single graph."""
    from burstkpn.export.stages import stage_onnx_bytes
    from burstkpn.inference.staged import _grid, _stage_tiles, staged_margins

    torch.manual_seed(0)
    model = create_model("ame_kpn", "tiny").eval()
    for p in model.parameters():  # attention statistics that matter
        p.data.add_(0.05 * torch.randn_like(p))
    runner = OnnxModel(model)
    blocks = len(model.backbone.decoder)
    names = ["first", *(f"middle{k}" for k in range(1, blocks)), "last"]
    assert list(runner.stages.sessions) == names
    assert sorted(stage_onnx_bytes(model)) == sorted(names)
    files = sorted((tmp_path / "cache").rglob("*-last.onnx"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    assert OnnxModel(model).stages is not None and files[0].stat().st_mtime_ns == stamp
    calls: dict[str, int] = {}
    for name, session in runner.stages.sessions.items():

        class Counted:
            def __init__(self, inner, name):
                self.inner, self.name = inner, name

            def run(self, *args):
                calls[self.name] = calls.get(self.name, 0) + 1
                return self.inner.run(*args)

        runner.stages.sessions[name] = Counted(session, name)
    burst, nmap = _inputs(1, 2, 61, 50)
    with torch.no_grad():
        whole = model(burst, nmap).image
    tiled = tiled_forward(runner, burst, nmap, tile=24)
    assert (tiled - whole).abs().max() < TOL
    m = model.backbone.multiple
    hp, wp = 61 + (-61) % m, 50 + (-50) % m
    grids = _stage_tiles(m, 24, staged_margins(model))
    # two colour planes, and once more on a small crop: the dry run that plans the buffers'
    # memory (burstkpn/inference/arena.py)
    tiles = [len(_grid(hp, wp, t, r)) * 2 + 1 for t, r in grids]
    assert [calls[n] for n in names] == tiles and tiles[0] > 3
    path = tmp_path / "alone.onnx"
    export_onnx(model, path)
    assert OnnxModel(path).stages is None  # a file alone: the single graph, by passes
    assert (tiled_forward(OnnxModel(path), burst, nmap, tile=24) - whole).abs().max() < TOL


def test_colour_variant_exports_and_tiles_exactly(tmp_path):
    """The colour variant (R, G and B in one pass): its graph takes RGB bursts of any batch
    and size and matches torch; OnnxModel repeats a grey burst to three planes and averages
    back, as the torch model does; exact tiling keeps the planes together."""
    torch.manual_seed(0)
    model = create_model("ame_kpn", "tiny", color=True).eval()
    for p in model.parameters():  # attention statistics and colour mixing that matter
        p.data.add_(0.05 * torch.randn_like(p))
    path = export_onnx(model, tmp_path / "color.onnx")
    meta = read_onnx_metadata(path)
    assert meta["color"] == "true" and meta["channels"].startswith("3")
    runner = OnnxModel(path)
    assert runner.independent_channels is False and runner.traits.independent_channels is False
    for c, (h, w) in ((3, (32, 40)), (1, (24, 16))):
        burst, nmap = _inputs(2, c, h, w)
        with torch.no_grad():
            reference = model(burst, nmap).image
        got = runner(burst, nmap).image
        assert got.shape == (2, c, h, w) and (got - reference).abs().max() < TOL
    burst, nmap = _inputs(1, 3, 45, 38)
    with torch.no_grad():
        whole = model(burst, nmap).image
    tiled = tiled_forward(runner, burst, nmap, tile=16, margin=16)
    assert (tiled - whole).abs().max() < TOL
    with pytest.raises(InputError, match="RGB or grey"):
        runner(*_inputs(1, 2, 16, 16))


def test_on_the_fly_export_is_cached_by_weights():
    torch.manual_seed(0)
    model = create_model("kpn", "tiny").eval()
    first = cached_export(model)
    assert first.name.startswith("kpn-") and first.is_file()
    stamp = first.stat().st_mtime_ns
    assert cached_export(model) == first and first.stat().st_mtime_ns == stamp
    with torch.no_grad():
        model.kr_head.bias.add_(0.01)
    assert cached_export(model) != first


def test_denoise_burst_with_onnxruntime_equals_torch_float32():
    torch.manual_seed(0)
    model = create_model("ame_kpn", "tiny").eval()
    frames = torch.rand(3, 3, 40, 48)
    ours = denoise_burst(frames, OnnxModel(model), noise="gain1", tile=16, precision="fp32")
    theirs = denoise_burst(frames, model, noise="gain1", tile=16, precision="fp32")
    assert (ours.image - theirs.image).abs().max() < TOL


def test_only_kernel_prediction_models_export(tmp_path):
    with pytest.raises(InputError, match="kernel-prediction burst models"):
        export_onnx(create_model("deform2d", "cpu"), tmp_path / "x.onnx")
    with pytest.raises(InputError, match="bursts of 8 frames"):
        export_onnx(create_model("kpn", "tiny"), tmp_path / "x.onnx", frames=5)
    assert not (tmp_path / "x.onnx").exists()


# ------------------------------------------------------------------------ command line
def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_export_onnx_writes_a_checked_file(tmp_path, capsys):
    ckpt = save_model(create_model("mkpn", "tiny"), tmp_path / "m.safetensors")
    out = tmp_path / "sub" / "m.onnx"
    code, printed, _ = _run(capsys, "export-onnx", ckpt, out, "--opset", "18")
    assert code == 0 and out.is_file() and "m.onnx" in printed
    onnx.checker.check_model(str(out))
    assert read_onnx_metadata(out)["opset"] == "18"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["kpn", "{tmp}/x.txt"], "must end in .onnx"),
        (["kpn", "{tmp}/x.onnx", "--opset", "9"], "--opset must be 13..20"),
        (["nosuchmodel", "{tmp}/x.onnx"], "no shipped weights"),
        (["{tmp}/missing.safetensors", "{tmp}/x.onnx"], "no such checkpoint file"),
        (["deform2d", "{tmp}/x.onnx"], "kernel-prediction burst models"),
        (["kpn", "{tmp}/taken.onnx"], "exists (use --force"),
    ],
)
def test_cli_export_onnx_errors_are_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "taken.onnx").write_bytes(b"keep")
    code, _, err = _run(capsys, "export-onnx", *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2 and _one_line(err) and message in err, err
    assert not (tmp_path / "x.onnx").exists()
    assert (tmp_path / "taken.onnx").read_bytes() == b"keep"


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_cli_without_onnx_says_how_to_install(tmp_path, capsys, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if not installed
    code, _, err = _run(capsys, "export-onnx", "kpn", tmp_path / "x.onnx")
    assert code == 2 and _one_line(err) and "pip install 'burstkpn[export]'" in err
    frames = tmp_path / "frames"
    frames.mkdir()
    code, _, err = _run(
        capsys, "denoise", frames, "-o", tmp_path / "o.png", "--backend", "onnxruntime"
    )
    assert code == 2 and _one_line(err) and "pip install 'burstkpn[export]'" in err


def _burst_folder(folder: Path) -> Path:
    folder.mkdir()
    yy, xx = np.mgrid[0:40, 0:48] / 5.0
    rng = np.random.default_rng(0)
    for i in range(3):
        img = (0.5 + 0.3 * np.sin(xx) * np.cos(yy))[:, :, None].repeat(3, 2)
        write_image(folder / f"f{i}.png", (img + rng.normal(0, 0.03, img.shape)).clip(0, 1))
    return folder


def test_cli_denoise_backend_onnxruntime_equals_torch_float32(tmp_path, capsys):
    torch.manual_seed(0)
    model = create_model("ame_kpn", "tiny").eval()
    ckpt = save_model(model, tmp_path / "tiny.safetensors")
    frames = _burst_folder(tmp_path / "frames")
    out = tmp_path / "o.png"
    argv = ["denoise", frames, "-o", out, "--model", ckpt, "--noise", "gain1", "--tile", "16"]
    code, _, err = _run(capsys, *argv, "--bits", "16", "--backend", "onnxruntime", "--quiet")
    assert code == 0, err
    burst, _ = load_frames(str(frames))
    expected = denoise_burst(burst, model, noise="gain1", tile=16, precision="fp32").image
    got = torch.from_numpy(read_image(out).astype(np.float32) / 65535).permute(2, 0, 1)
    assert (got - expected).abs().max() < TOL  # 16-bit rounding is 8e-6


def test_cli_denoise_backend_onnxruntime_refuses_videos(tmp_path, capsys):
    frames = _burst_folder(tmp_path / "frames")
    code, _, err = _run(
        capsys, "denoise", frames, "-o", tmp_path / "out.mkv", "--backend", "onnxruntime"
    )
    assert code == 2 and _one_line(err) and "videos and frame folders run on torch" in err


def test_speed_table_names_the_backend():
    from burstkpn.bench.speed import format_table

    row = {
        "model": "ame_kpn",
        "size": "cpu",
        "params": 1,
        "gmac_per_mp": 2.0,
        "precision": "fp32",
        "backend": "onnxruntime",
        "height": 64,
        "width": 64,
        "seconds": 0.5,
        "mp_per_s": 0.008,
        "peak_rss_mb": 10.0,
    }
    assert "| fp32 (onnxruntime) |" in format_table([row])
    assert "| fp32 |" in format_table([row | {"backend": "torch"}])
