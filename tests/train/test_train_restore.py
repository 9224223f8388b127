"""``burstkpn train --task denoise|deblur`` for single-image models (dcn_lka)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from burstkpn.cli import main
from burstkpn.errors import InputError
from burstkpn.losses import restoration_loss
from burstkpn.train import TrainConfig, train


def _cfg(data, task: str, **kw) -> TrainConfig:
    base = dict(
        model="dcn_lka",
        size="tiny",
        task=task,
        data=None if data is None else str(data),
        steps=4,
        batch_size=2,
        patch_size=32,
        val_every=2,
        val_bursts=2,
        val_patch=48,
        log_every=1,
        ckpt_every=2,
        precision="fp32",
        seed=5,
    )
    return TrainConfig(**(base | kw))


@pytest.mark.parametrize(("task", "loss"), [("denoise", "gamma_l1"), ("deblur", "mse")])
def test_tiny_dcn_lka_trains_and_resumes_bit_exact(tmp_path, photo_folder, task, loss):
    ref, run = tmp_path / "ref", tmp_path / "run"
    log = train(_cfg(photo_folder, task, loss=loss), ref, progress=False)
    assert log["step"] == 4 and math.isfinite(log["loss"]) and "val_psnr" in log
    assert {"mse", "l1", "val_loss"} <= set(log) and log["loss"] == log[loss.replace("gamma_", "")]
    saved = yaml.safe_load((ref / "config.yaml").read_text())
    assert (saved["task"], saved["loss"], saved["layout"]) == (task, loss, "photos")
    assert {"loss.png", "best.safetensors", "last.optim.safetensors"} <= {
        p.name for p in ref.iterdir()
    }
    # stopped after 2 steps, then resumed from config.yaml alone: the same weights
    train(_cfg(photo_folder, task, loss=loss), run, stop_after=2, progress=False)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    a, b = load_file(ref / "last.safetensors"), load_file(run / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def _gopro(root: Path, rng: np.random.Generator) -> Path:
    for seq in ("GOPR0372_07_00", "GOPR0374_11_00"):
        for frame in ("000047.png", "000048.png"):
            sharp = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            blur = ((sharp.astype(np.float64) + np.roll(sharp, 2, axis=1)) / 2).astype(np.uint8)
            for kind, img in (("sharp", sharp), ("blur", blur)):
                (root / seq / kind).mkdir(parents=True, exist_ok=True)
                iio.imwrite(root / seq / kind / frame, img)
    return root


def test_gopro_folder_trains_deblur_from_the_cli(tmp_path, rng, capsys):
    data = _gopro(tmp_path / "GOPRO_Large" / "train", rng)
    run = tmp_path / "run"
    args = ["train", "--model", "dcn_lka", "--size", "tiny", "--task", "deblur"]
    args += ["--data", str(data), "--steps", "3", "--batch-size", "2", "--patch-size", "24"]
    args += ["--val-every", "3", "--precision", "fp32", "--out", str(run), "--quiet"]
    assert main(args) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["task"], saved["layout"], saved["loss"]) == ("deblur", "gopro", "mse")
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["step"] == 3 and math.isfinite(last["loss"]) and "val_psnr" in last
    # the same folder for denoising, and a burst model on a single-image task: one-line errors
    bad = [a if a != "deblur" else "denoise" for a in args]
    bad[bad.index(str(run))] = str(tmp_path / "run2")
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "gopro pairs, which are for --task deblur" in err and len(err.strip().splitlines()) == 1
    burst = [a if a != "dcn_lka" else "kpn" for a in args]
    burst[burst.index(str(run))] = str(tmp_path / "run3")
    assert main(burst) == 2
    assert "'kpn' is a burst model" in capsys.readouterr().err


def test_task_and_loss_checks(tmp_path, photo_folder):
    with pytest.raises(InputError, match="task must be one of"):
        train(_cfg(photo_folder, "dehaze"), tmp_path / "a", progress=False)
    with pytest.raises(InputError, match="does not fit task"):
        train(_cfg(photo_folder, "deblur", loss="annealed"), tmp_path / "b", progress=False)
    with pytest.raises(InputError, match="needs --data"):
        train(_cfg(None, "denoise", layout="sidd"), tmp_path / "c", progress=False)


def test_restoration_loss_is_mse_on_srgb_values():
    from burstkpn.data.io.images import linear_to_srgb

    pred, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    terms = restoration_loss(pred, target, "mse")
    d = linear_to_srgb(pred) - linear_to_srgb(target)
    assert torch.allclose(terms["loss"], d.square().mean())  # [DCN-LKA] eq. (7)
    assert torch.allclose(restoration_loss(pred, target, "gamma_l1")["loss"], d.abs().mean())


def test_export_weights_scores_a_deblur_run_on_a_deblur_testset(tmp_path, photo_folder):
    from burstkpn.data.testsets.deblur import make_deblur_testset
    from burstkpn.inference import resolve_model
    from burstkpn.train import export_weights

    run = tmp_path / "run"
    train(_cfg(photo_folder, "deblur", steps=2, val_every=0), run, progress=False)
    ts = tmp_path / "ts"
    make_deblur_testset(photo_folder, ts, progress=False)
    card = export_weights(run, "dcn_lka_deblur", tmp_path / "w", testset=ts, limit=2)
    ev = card["evaluation"]
    assert ev["pairs"] == 2 and ev["psnr"] > 0 and ev["input_psnr"] > 0
    assert "anneal_weight_at_last_step" not in card and card["config"]["task"] == "deblur"
    model = resolve_model(str(tmp_path / "w" / "dcn_lka_deblur.safetensors"))
    assert model.card["steps"] == 2


def test_export_weights_scores_a_denoise_run_per_level_on_a_single_image_testset(
    tmp_path, photo_folder
):
    from burstkpn.data.testsets.burst import make_testset
    from burstkpn.train import export_weights

    run = tmp_path / "run"
    train(_cfg(photo_folder, "denoise", steps=2, val_every=0), run, progress=False)
    ts = tmp_path / "ts"
    make_testset(
        photo_folder, ts, levels=["low", "high"], num_frames=1, patch_size=32, progress=False
    )
    card = export_weights(run, "dcn_lka_denoise", tmp_path / "w", testset=ts, limit=2)
    per = card["evaluation"]["per_level"]
    assert set(per) == {"low", "high"}
    assert per["high"]["reference_psnr"] < per["low"]["reference_psnr"]
    assert card["evaluation"]["command"].endswith(
        "--noise low,high --frames 1 --patch 32; first 2 images"
    )


def test_noise_ranges_reach_the_training_pairs(photo_folder):
    from burstkpn.train import make_train_dataset

    cfg = _cfg(photo_folder, "denoise", sigma_r_range=[2e-3, 2e-3], sigma_s_range=[5e-4, 1e-3])
    cfg.layout = "photos"
    data = make_train_dataset(cfg)
    for i in range(4):
        item = data[i]
        assert float(item["sigma_r"]) == pytest.approx(2e-3, rel=1e-6)
        assert 5e-4 * (1 - 1e-6) <= float(item["sigma_s"]) <= 1e-3 * (1 + 1e-6)
    cfg_default = _cfg(photo_folder, "denoise")
    cfg_default.layout = "photos"
    default = make_train_dataset(cfg_default)
    assert default.sigma_r_range != (2e-3, 2e-3)
    with pytest.raises(InputError, match="sigma_s_range must be"):
        _cfg(photo_folder, "denoise", sigma_s_range=[1e-3, 1e-4]).validate()
    for bad in ([0.0, 1e-2], "0.01", [1e-3], ["a", "b"], [1e-3, float("inf")]):
        with pytest.raises(InputError, match="sigma_r_range must be"):
            _cfg(photo_folder, "denoise", sigma_r_range=bad).validate()


def test_exposure_range_is_for_burst_training_only(photo_folder):
    from burstkpn.models import create_model
    from burstkpn.train import resolve_task

    cfg = _cfg(photo_folder, "denoise", exposure_range=[0.1, 1.0])
    with pytest.raises(InputError, match="exposure_range applies to burst training only"):
        resolve_task(cfg, create_model("dcn_lka", "tiny"))
    with pytest.raises(InputError, match="exposure_range must be"):
        _cfg(photo_folder, "denoise", exposure_range=[1.0, 0.1]).validate()
    from burstkpn.train import make_train_dataset

    burst_cfg = _cfg(photo_folder, "burst", model="kpn", exposure_range=[0.2, 0.5])
    assert make_train_dataset(burst_cfg).exposure_range == (0.2, 0.5)
    recolored = _cfg(
        photo_folder, "burst", model="kpn", channels=3, color_gains=[0.3, 1.0], channel_shuffle=True
    )
    ds = make_train_dataset(recolored)
    assert ds.color_gains == (0.3, 1.0) and ds.channel_shuffle
    with pytest.raises(InputError, match="color_gains must be"):
        _cfg(photo_folder, "burst", color_gains=[1.0, 0.3]).validate()


def test_synthetic_pairs_follow_channels_for_per_plane_models(photo_folder):
    """deform2d filters R, G and B independently: its synthetic pairs draw one plane each
    (``channels: random``, as bursts and clips) or RGB when asked; dcn_lka mixes the planes and
    always gets RGB pairs. Validation pairs stay RGB, so runs compare whatever they trained on."""
    from burstkpn.models import create_model
    from burstkpn.train import make_train_dataset, make_val_set, resolve_task

    def resolved(**kw):
        cfg = _cfg(photo_folder, "denoise", **kw)
        return resolve_task(cfg, create_model(cfg.model, "tiny"))

    plane = resolved(model="deform2d")
    assert plane.channels == "random"
    assert make_train_dataset(plane)[0]["clean"].shape[0] == 1
    assert make_val_set(plane)[0]["clean"].shape[0] == 3
    rgb = resolved(model="deform2d", channels=3)
    assert make_train_dataset(rgb)[0]["clean"].shape[0] == 3
    mixed = resolved(model="dcn_lka")
    assert mixed.channels == 3 and make_train_dataset(mixed)[0]["clean"].shape[0] == 3
    with pytest.raises(InputError, match="trains on RGB"):
        resolved(model="dcn_lka", channels=1)
