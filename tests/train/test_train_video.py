"""``burstkpn train --model deform3d``: the video task (clips from photos and from clip folders,
eq. 11 loss, resumable bit for bit)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from safetensors.torch import load_file

from burstkpn.cli import main
from burstkpn.errors import InputError
from burstkpn.losses import anneal_weight
from burstkpn.train import TrainConfig, train
from tests.data.io.test_clips import make_clip_folder


def _cfg(**kw) -> TrainConfig:
    base = dict(
        model="deform3d",
        size="tiny",
        steps=2,
        batch_size=2,
        patch_size=24,
        val_every=2,
        val_bursts=2,
        val_patch=40,
        log_every=1,
        ckpt_every=1,
        precision="fp32",
        seed=2,
    )
    return TrainConfig(**(base | kw))


@pytest.mark.parametrize("source", ["photos", "clips"])
def test_tiny_deform3d_trains_and_resumes_bit_exact(tmp_path, photo_folder, source):
    clips = make_clip_folder(tmp_path / "clips", size=(36, 40))
    kw = {"data": str(photo_folder)} if source == "photos" else {"data": str(clips)}
    ref, run = tmp_path / "ref", tmp_path / "run"
    log = train(_cfg(**kw), ref, progress=False)
    assert log["step"] == 2 and math.isfinite(log["loss"])
    assert {"l1", "groups", "anneal_weight", "val_psnr_low", "val_psnr_high"} <= set(log)
    # eq. (11): l(Y) + eta gamma^p sum_i l(Y_i), p = 1 at the second step
    assert log["anneal_weight"] == pytest.approx(anneal_weight(1, 0.9998, 100.0), rel=1e-6)
    assert log["loss"] == pytest.approx(log["l1"] + log["anneal_weight"] * log["groups"], 1e-5)
    saved = yaml.safe_load((ref / "config.yaml").read_text())
    assert (saved["task"], saved["loss"], saved["num_frames"]) == ("video", "group_annealed", 5)
    if source == "clips":  # a clip folder as --data: clips only
        assert (saved["data"], saved["clips"], saved["clip_fraction"]) == (None, str(clips), 1.0)
    else:
        assert (saved["clips"], saved["clip_fraction"]) == (None, 0.0)
    assert (ref / "loss.png").is_file() and (ref / "best.safetensors").is_file()
    train(_cfg(**kw), run, stop_after=1, progress=False)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    a, b = load_file(ref / "last.safetensors"), load_file(run / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


def test_video_from_the_cli_mixes_photos_and_clips(tmp_path, photo_folder, capsys):
    clips = make_clip_folder(tmp_path / "clips", size=(36, 40))
    run = tmp_path / "run"
    args = ["train", "--model", "deform3d", "--size", "tiny", "--data", str(photo_folder)]
    args += ["--clips", str(clips), "--clip-fraction", "0.25", "--steps", "1", "--batch-size"]
    args += ["2", "--patch-size", "24", "--val-every", "0", "--precision", "fp32", "--quiet"]
    assert main([*args, "--loss", "gamma_l1", "--out", str(run)]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["clips"], saved["clip_fraction"], saved["loss"]) == (str(clips), 0.25, "gamma_l1")
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["loss"] == row["l1"]  # eq. (9) alone: Table 4's "w/o annealing term"


def test_video_task_checks(tmp_path, photo_folder):
    clips = make_clip_folder(tmp_path / "clips")
    with pytest.raises(InputError, match="--task video"):
        train(_cfg(task="burst"), tmp_path / "a", progress=False)
    with pytest.raises(InputError, match="not one"):
        train(_cfg(model="kpn", task="video"), tmp_path / "b", progress=False)
    with pytest.raises(InputError, match="does not fit task video"):
        train(_cfg(loss="mse"), tmp_path / "c", progress=False)
    with pytest.raises(InputError, match="give it as --clips"):
        train(_cfg(data=str(clips), clips=str(clips)), tmp_path / "d", progress=False)
    with pytest.raises(InputError, match="frames"):
        train(_cfg(clips=str(photo_folder)), tmp_path / "e", progress=False)
    with pytest.raises(InputError, match="clip_fraction"):
        train(_cfg(clips=str(clips), clip_fraction=2.0), tmp_path / "f", progress=False)


def test_export_weights_scores_a_video_run_on_a_video_testset(tmp_path, photo_folder):
    from burstkpn.data.testsets.video import make_video_testset
    from burstkpn.train import export_weights

    clips = make_clip_folder(tmp_path / "clips", frames=5, size=(36, 40))
    make_video_testset(clips, tmp_path / "ts", patch_size=32, progress=False)
    run = tmp_path / "run"
    train(_cfg(data=str(photo_folder), steps=1, val_every=0), run, progress=False)
    card = export_weights(run, "deform3d", tmp_path / "w", testset=tmp_path / "ts", progress=False)
    ev = card["evaluation"]
    assert ev["windows"] == 2 and set(ev["per_level"]) == {"low", "high"}
    assert ev["per_level"]["low"]["reference_psnr"] > ev["per_level"]["high"]["reference_psnr"]
    assert (tmp_path / "w" / "deform3d.safetensors").is_file()
