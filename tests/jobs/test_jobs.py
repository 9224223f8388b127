"""burstkpn.jobs without the command line: the job chosen from inputs, output and model kind,
the default model, the output checks and what each job returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from burstkpn import jobs
from burstkpn.data.io.images import read_image, write_image
from burstkpn.errors import InputError
from burstkpn.models import create_model, save_model


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> str:
    torch.manual_seed(0)
    return str(save_model(create_model("ame_kpn", "tiny"), tmp_path / "tiny.safetensors"))


def _burst(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(folder / f"f{i}.png", rng.uniform(0.2, 0.8, (40, 48, 3)))
    return folder


def test_default_model_follows_the_input(tmp_path, monkeypatch):
    from burstkpn.models import factory

    shipped = tmp_path / "weights"
    shipped.mkdir()
    monkeypatch.setattr(factory, "weights_dir", lambda: shipped)
    assert jobs.default_denoise_model(["a.jpg"], linear=False) == jobs.LINEAR_MODEL  # none
    (shipped / f"{jobs.REAL_MODEL}.safetensors").write_bytes(b"")
    assert jobs.default_denoise_model(["a.jpg"], linear=False) == jobs.REAL_MODEL
    assert jobs.default_denoise_model(["a.jpg"], linear=True) == jobs.LINEAR_MODEL
    assert jobs.default_denoise_model(["a.DNG", "b.dng"], linear=False) == jobs.LINEAR_MODEL
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "x.nef").write_bytes(b"")
    assert jobs.default_denoise_model([str(raw)], linear=False) == jobs.LINEAR_MODEL


def test_output_checks(tmp_path):
    src = tmp_path / "in.png"
    write_image(src, np.full((8, 8, 3), 0.5))
    with pytest.raises(InputError, match="must end in one of"):
        jobs.check_output(tmp_path / "o.txt", [], False)
    with pytest.raises(InputError, match="is one of the inputs"):
        jobs.check_output(src, [str(src)], True)
    with pytest.raises(InputError, match="exists"):
        jobs.check_output(src, [], False)
    jobs.check_output(src, [], True)
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "x.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        jobs.check_sequence_target(folder, False)
    jobs.check_sequence_target(folder, True)


def test_write_new_never_overwrites(tmp_path):
    img = np.full((8, 8, 3), 0.5)
    names = [jobs.write_new(tmp_path / "d.png", img).name for _ in range(3)]
    assert names == ["d.png", "d_2.png", "d_3.png"]


def test_denoise_path_picks_the_job(tmp_path, tiny_ckpt):
    frames = _burst(tmp_path / "frames")
    r = jobs.denoise_path([str(frames)], tmp_path / "o.png", model=tiny_ckpt, progress=False)
    assert (r.kind, r.frames, r.model, r.profile) == ("burst", 3, tiny_ckpt, None)
    assert read_image(r.output).shape == (40, 48, 3) and r.sigma_r > 0
    r = jobs.denoise_path([str(frames)], tmp_path / "seq", model=tiny_ckpt, progress=False)
    assert (r.kind, r.frames, r.bits) == ("frames", 3, 8)
    assert sorted(p.name for p in r.output.iterdir())[0] == "frame_000000.png"
    r = jobs.denoise_path([str(frames)], tmp_path / "p.png", model=tiny_ckpt, profile=True)
    assert r.profile is not None and r.profile_info["frames"] == 3
    with pytest.raises(InputError, match="--profile times a burst"):
        jobs.denoise_path([str(frames)], tmp_path / "v.mkv", model=tiny_ckpt, profile=True)


def test_synth_burst_writes_its_folder(tmp_path):
    out, meta = jobs.synth_burst("astronaut", tmp_path / "s", frames=3, patch=48, noise="gain1")
    assert meta["noise"]["name"] == "gain1" and len(meta["offsets"]) == 3
    assert {"clean.png", "noise_map.png", "contact_sheet.png", "meta.json"} <= {
        p.name for p in out.iterdir()
    }
    with pytest.raises(InputError, match="at least 2 frames"):
        jobs.synth_burst("astronaut", tmp_path / "t", frames=1)
