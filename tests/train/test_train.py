from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from burstkpn.cli import main
from burstkpn.errors import InputError
from burstkpn.train import TrainConfig, learning_rate, train

TINY = [
    "--model",
    "ame_kpn",
    "--size",
    "tiny",
    "--batch-size",
    "4",
    "--patch-size",
    "24",
    "--val-every",
    "0",
    "--precision",
    "fp32",
    "--seed",
    "3",
    "--quiet",
]


def _cli(*args):
    return [sys.executable, "-m", "burstkpn.cli", "train", *args]


def _weights(run):
    return load_file(run / "last.safetensors")


def test_learning_rate_schedule():
    cfg = TrainConfig(epoch_steps=100)
    assert learning_rate(cfg, 0) == learning_rate(cfg, 99) == 1e-4
    assert abs(learning_rate(cfg, 100) - 1e-4 * 10**-0.05) < 1e-15
    assert learning_rate(cfg, 10**6) == 5e-6


def test_run_folder_and_bad_options(tmp_path, photo_folder):
    run = tmp_path / "run"
    cfg = TrainConfig(
        model="kpn",
        size="tiny",
        data=str(photo_folder),
        steps=4,
        batch_size=2,
        patch_size=24,
        val_every=2,
        val_bursts=4,
        val_patch=48,
        log_every=1,
        ckpt_every=2,
        precision="bf16",
    )
    log = train(cfg, run, progress=False)
    assert log["step"] == 4 and "val_psnr_gain4" in log
    names = {p.name for p in run.iterdir()}
    assert {
        "config.yaml",
        "metrics.jsonl",
        "last.safetensors",
        "last.optim.safetensors",
        "best.safetensors",
        "loss.png",
    } <= names
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for key in ("loss", "basic", "l2", "grad", "frames", "anneal_weight", "lr", "images_per_s"):
        assert key in rows[0]
    with pytest.raises(InputError, match="already holds a run"):
        train(cfg, run, progress=False)
    # export-weights: weights + a card that names the run's config, steps and test-set scores
    from burstkpn.data.testsets.burst import make_testset
    from burstkpn.models import load_model
    from burstkpn.train import export_weights

    ts = tmp_path / "ts"
    make_testset(photo_folder, ts, levels=["gain2"], patch_size=48, progress=False)
    card = export_weights(run, "mine", tmp_path / "w", testset=ts, progress=False)
    assert card["steps"] == 4 and card["config"]["model"] == "kpn"
    assert card["training_command"] == "burstkpn train --config runs/run/config.yaml --out runs/run"
    level = card["evaluation"]["per_level"]["gain2"]
    assert level["psnr"] > 0 and level["reference_psnr"] > 0
    assert json.loads((tmp_path / "w" / "mine.json").read_text())["steps"] == 4
    assert load_model(tmp_path / "w" / "mine.safetensors").card["steps"] == 4
    # stored in float16, loaded into float32 parameters, equal to the rounded averaged weights
    from burstkpn.train.checkpoint import load_ema

    stored = load_file(str(tmp_path / "w" / "mine.safetensors"))
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    assert card["storage"] == {"dtype": "float16"}
    shipped, ema = (
        load_model(tmp_path / "w" / "mine.safetensors"),
        load_model(run / "last.safetensors"),
    )
    load_ema(run / "last.safetensors", ema)  # the averaged weights, where the run has them
    for (k, a), b in zip(shipped.state_dict().items(), ema.state_dict().values(), strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b.half().to(b.dtype)), k
    card32 = export_weights(run, "mine32", tmp_path / "w", progress=False, half=False)
    assert card32["storage"] == {"dtype": "float32"}
    assert load_file(str(tmp_path / "w" / "mine32.safetensors"))[k].dtype == torch.float32
    with pytest.raises(InputError, match="unknown training option"):
        TrainConfig.from_dict({"stepz": 3})
    assert (
        main(["train", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "x")]) == 2
    )
    # a resumed run may change its precision (bf16 is slow on CPUs without it): recorded
    assert (
        main(["train", "--resume", str(run), "--steps", "5", "--precision", "fp32", "--quiet"]) == 0
    )
    assert "precision: fp32" in (run / "config.yaml").read_text()
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 5


def test_sigkill_and_resume_matches_uninterrupted(tmp_path, photo_folder):
    from safetensors import safe_open

    common = [*TINY, "--data", str(photo_folder), "--steps", "30", "--ckpt-every", "2"]
    ref = tmp_path / "ref"
    subprocess.run(_cli(*common, "--out", str(ref)), check=True)
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli(*common, "--out", str(run)))
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "last.optim.safetensors").exists():
        time.sleep(0.02)  # kill it as soon as a mid-run checkpoint exists
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    with safe_open(str(run / "last.optim.safetensors"), framework="pt") as f:
        killed_at = int(f.metadata()["step"])
    assert killed_at < 30, "the run finished before it could be killed"
    subprocess.run(_cli("--resume", str(run), "--quiet"), check=True)
    a, b = _weights(ref), _weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_single_process(tmp_path, photo_folder):
    common = [*TINY, "--data", str(photo_folder), "--steps", "3", "--ckpt-every", "3"]
    single = tmp_path / "single"
    subprocess.run(_cli(*common, "--out", str(single)), check=True)
    ddp = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "burstkpn.cli",
        "train",
        *common,
        "--out",
        str(ddp),
    ]
    subprocess.run(cmd, check=True, env=env, timeout=300)
    a, b = _weights(single), _weights(ddp)
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert diff < 1e-5, diff


def test_resume_from_weights_only(tmp_path, photo_folder):
    common = [*TINY, "--data", str(photo_folder), "--steps", "6", "--ckpt-every", "3"]
    run = tmp_path / "run"
    subprocess.run(_cli(*common, "--out", str(run), "--stop-after", "3"), check=True)
    (run / "last.optim.safetensors").unlink()  # as committed: config, metrics and weights
    res = subprocess.run(
        _cli("--resume", str(run), "--quiet"), check=True, capture_output=True, text=True
    )
    assert "continuing from the weights at step 3" in res.stdout
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 6


def test_resume_from_exported_weights(tmp_path, photo_folder):
    """training/README.md: a run folder's config and metrics plus the shipped (exported) weights
    as last.safetensors continue at the exported step, not at step 0."""
    from burstkpn.train import export_weights

    common = [*TINY, "--data", str(photo_folder), "--steps", "6", "--ckpt-every", "3"]
    run = tmp_path / "run"
    subprocess.run(_cli(*common, "--out", str(run), "--stop-after", "3"), check=True)
    export_weights(run, "tiny", tmp_path / "weights", progress=False)
    for name in ("last.safetensors", "last.optim.safetensors"):
        (run / name).unlink()
    shutil.copy(tmp_path / "weights" / "tiny.safetensors", run / "last.safetensors")
    res = subprocess.run(
        _cli("--resume", str(run), "--quiet"), check=True, capture_output=True, text=True
    )
    assert "continuing from the weights at step 3" in res.stdout
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 6


def test_init_starts_a_new_run_from_trained_weights(tmp_path, photo_folder):
    """--init: a new run starts from exported weights with a new Adam state, counts steps on
    from theirs, and its exported card adds the earlier training."""
    from burstkpn.models import load_model
    from burstkpn.train import export_weights

    common = [*TINY, "--data", str(photo_folder), "--ckpt-every", "3"]
    first = tmp_path / "first"
    subprocess.run(_cli(*common, "--steps", "3", "--out", str(first)), check=True)
    card0 = export_weights(first, "tiny", tmp_path / "w", progress=False)
    weights = tmp_path / "w" / "tiny.safetensors"
    start = load_model(weights).state_dict()

    run = tmp_path / "run"
    subprocess.run(
        _cli(
            *common, "--steps", "6", "--init", str(weights), "--out", str(run), "--stop-after", "1"
        ),
        check=True,
    )
    # one step of Adam moved the weights from the exported ones, not from a fresh init
    after = _weights(run)
    delta = max(float((after[k] - start[k]).abs().max()) for k in start)
    assert 0 < delta < 0.05
    subprocess.run(_cli("--resume", str(run), "--quiet"), check=True)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 4 and rows[-1]["step"] == 6
    assert json.loads((run / "init_card.json").read_text())["steps"] == 3
    card = export_weights(run, "tiny2", tmp_path / "w", progress=False)
    assert card["steps"] == 6 and card["continued_from"]["steps"] == 3
    assert "--init tiny --out" in card["training_command"]
    assert card["training_hours"] >= card0["training_hours"]

    bad = [*TINY, "--data", str(photo_folder)]
    for extra, message in (
        (["--steps", "3"], "give --steps above 3"),
        (["--steps", "6", "--model", "kpn"], "this run builds kpn"),
    ):
        res = subprocess.run(
            _cli(*bad, *extra, "--init", str(weights), "--out", str(tmp_path / "x")),
            capture_output=True,
            text=True,
        )
        assert res.returncode != 0 and message in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run(
        _cli(*bad, "--init", "no_such_model", "--out", str(tmp_path / "y")),
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and "no shipped weights 'no_such_model'" in res.stderr
    # a failed start leaves no run folder behind (issue 21, item 9)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_failed_start_leaves_nothing_and_a_run_folder_is_not_reused(tmp_path, photo_folder):
    run = tmp_path / "run"
    res = subprocess.run(
        _cli(*TINY, "--data", str(tmp_path / "no_photos"), "--steps", "2", "--out", str(run)),
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert not run.exists()
    ok = _cli(*TINY, "--data", str(photo_folder), "--steps", "1", "--out", str(run))
    subprocess.run(ok, check=True)
    res = subprocess.run(ok, capture_output=True, text=True)
    assert res.returncode == 2 and "already holds a run" in res.stderr


def test_init_accepts_weights_saved_before_an_option_existed(tmp_path):
    """Weights whose metadata lacks a newer constructor option (here ``unit_kernels``) fit a
    model built with that option's default."""
    from burstkpn.models import create_model, save_model
    from burstkpn.train import _init_path

    model = create_model("ame_kpn", "tiny", num_frames=2)
    del model.config["kwargs"]["unit_kernels"]  # as the shipped files written before it
    path = save_model(model, tmp_path / "old.safetensors", steps=1)
    assert _init_path(path, create_model("ame_kpn", "tiny", num_frames=2)) == path
    with pytest.raises(InputError, match="this run builds"):
        _init_path(path, create_model("ame_kpn", "tiny", num_frames=2, kernel_size=3))


def test_init_may_drop_the_residual_path_and_change_the_kernel_projection(tmp_path):
    """--init from an AME-KPN with eq. (4)'s residual path into a kernel-only one with
    burst-unit kernels: the kernel rows and the backbone carry over, so the new model predicts
    the old one's kernels (before its projection)."""
    from burstkpn.models import create_model, save_model
    from burstkpn.train import _init_path
    from burstkpn.train.checkpoint import start_from_weights

    torch.manual_seed(0)
    src = create_model("ame_kpn", "tiny", num_frames=2, color=True).eval()
    path = save_model(src, tmp_path / "src.safetensors", steps=7)
    dst = create_model(
        "ame_kpn", "tiny", num_frames=2, color=True, residual=False, burst_unit_kernels=True
    ).eval()
    assert _init_path(path, dst) == path
    assert start_from_weights(path, dst) == 7
    assert dst.w_head is None
    burst = torch.rand(1, 2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    noise = torch.full((1, 3, 16, 16), 0.01)
    with torch.no_grad():
        feat_src = src.backbone(src.network_input(burst, noise))
        feat_dst = dst.backbone(dst.network_input(burst, noise))
        torch.testing.assert_close(feat_dst, feat_src)
        torch.testing.assert_close(dst._predict_kernels(feat_dst), src._predict_kernels(feat_src))


def test_training_seconds_counts_only_the_steps_in_its_range(tmp_path):
    """Wall time from the logged throughput: rows of 10 steps at 16 images/s, batch 16, are
    10 s each; ``since`` leaves out the steps before it (those of an --init card's hours)."""
    from burstkpn.train import training_seconds, write_config

    write_config(tmp_path, TrainConfig(batch_size=16))
    rows = [{"step": s, "images_per_s": 16.0} for s in (10, 20, 30, 40)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert training_seconds(tmp_path) == pytest.approx(40.0)
    assert training_seconds(tmp_path, until=30) == pytest.approx(30.0)
    assert training_seconds(tmp_path, since=20) == pytest.approx(20.0)
    assert training_seconds(tmp_path, since=25) == pytest.approx(15.0)


def test_ema_weights_resume_exactly_and_are_exported(tmp_path, photo_folder):
    """--ema-decay: the averaged weights live in last.optim.safetensors (keys ema.*), continue
    bit-exactly across a resume, and are what export-weights ships."""
    from burstkpn.models import load_model
    from burstkpn.train import export_weights, update_ema

    common = [*TINY, "--data", str(photo_folder), "--steps", "6", "--ckpt-every", "3"]
    common += ["--ema-decay", "0.9"]
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run(_cli(*common, "--out", str(ref)), check=True)
    subprocess.run(_cli(*common, "--out", str(run), "--stop-after", "3"), check=True)
    subprocess.run(_cli("--resume", str(run), "--quiet"), check=True)
    a = load_file(ref / "last.optim.safetensors")
    b = load_file(run / "last.optim.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ema = {k[4:]: v for k, v in a.items() if k.startswith("ema.")}
    raw = _weights(ref)
    assert ema.keys() == raw.keys() and any(not torch.equal(ema[k], raw[k]) for k in raw)
    card = export_weights(ref, "avg", tmp_path / "w", progress=False)
    assert card["weights"].startswith("exponential moving average")
    shipped = load_model(tmp_path / "w" / "avg.safetensors").state_dict()
    # stored in float16: the averaged weights, rounded
    assert all(torch.equal(shipped[k], ema[k].half().to(ema[k].dtype)) for k in ema)

    # the update itself: ema <- d * ema + (1 - d) * w
    e, m = torch.nn.Linear(3, 2).double(), torch.nn.Linear(3, 2).double()
    expected = 0.75 * e.weight.detach().clone() + 0.25 * m.weight.detach()
    update_ema(e, m, 0.75)
    assert torch.allclose(e.weight, expected, atol=1e-15)
    with pytest.raises(InputError, match="ema_decay must be"):
        TrainConfig(ema_decay=1.0).validate()


def test_cosine_schedule_warms_up_then_reaches_lr_min_at_the_last_step():
    cfg = TrainConfig(lr=1e-3, lr_min=1e-6, steps=1000, lr_schedule="cosine", warmup_steps=100)
    assert learning_rate(cfg, 0) == pytest.approx(1e-5)
    assert learning_rate(cfg, 99) == pytest.approx(1e-3)
    assert learning_rate(cfg, 550) == pytest.approx(0.5 * (1e-3 + 1e-6))  # half-way down
    assert learning_rate(cfg, 1000) == pytest.approx(1e-6)
    assert learning_rate(cfg, 5000) == pytest.approx(1e-6)  # an extended run stays at lr_min
    rates = [learning_rate(cfg, s) for s in range(100, 1001)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    with pytest.raises(InputError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear").validate()


def test_prefetched_yields_the_same_items_and_raises_the_producers_error():
    from burstkpn.train import prefetched

    assert list(prefetched(range(50), 3)) == list(range(50))
    assert list(prefetched(range(5), 0)) == list(range(5))

    def broken():
        yield 1
        raise ValueError("bad burst")

    it = prefetched(broken(), 2)
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad burst"):
        next(it)
    # stopping early ends the producer thread
    gen = prefetched(iter(range(10**6)), 2)
    assert next(gen) == 0
    gen.close()


def test_prefetch_and_threads_do_not_change_the_run(tmp_path, photo_folder):
    """Speed options change speed only: a run with a prefetching thread and one torch thread
    ends with the same weights as the default run."""
    base = dict(
        model="kpn",
        size="tiny",
        data=str(photo_folder),
        steps=3,
        batch_size=2,
        patch_size=24,
        val_every=0,
        precision="fp32",
        seed=1,
    )
    threads = torch.get_num_threads()
    try:
        train(TrainConfig(**base), tmp_path / "a", progress=False)
        train(TrainConfig(**base, prefetch=2, threads=1), tmp_path / "b", progress=False)
    finally:
        torch.set_num_threads(threads)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_init_weights_that_do_not_fit_leave_no_run_folder(tmp_path, photo_folder, capsys):
    """--init weights whose tensors do not fit the model their metadata names, or that were
    trained for --steps already: a one-line error, and no run folder left behind (issue 21,
    items 3 and 9)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from burstkpn.models import create_model, save_model

    torch.manual_seed(0)
    good = save_model(create_model("ame_kpn", "tiny"), tmp_path / "good.safetensors", steps=3)
    with safe_open(str(good), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(good))
    key = sorted(state)[0]
    state[key] = torch.zeros([d + 1 for d in state[key].shape])
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata=meta)

    common = [*TINY, "--data", str(photo_folder)]
    for weights, steps, message in (
        (bad, "6", "does not fit"),
        (good, "3", "give --steps above 3"),
    ):
        run = tmp_path / f"run_{weights.stem}"
        code = main(["train", *common, "--steps", steps, "--init", str(weights), "--out", str(run)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
        assert not run.exists()


def test_camera_fraction_reaches_the_burst_dataset(photo_folder):
    """camera_fraction / camera_jpeg (config file only) are passed to the burst dataset; an
    old config without them gives the defaults (no camera bursts)."""
    from burstkpn.train import make_train_dataset

    base = dict(data=str(photo_folder), task="burst", steps=2, batch_size=2, patch_size=32)
    ds = make_train_dataset(TrainConfig.from_dict(base))
    assert ds.camera_fraction == 0.0 and ds.camera_jpeg == (70, 95)
    cfg = TrainConfig.from_dict({**base, "camera_fraction": 0.25, "camera_jpeg": None})
    ds = make_train_dataset(cfg)
    assert ds.camera_fraction == 0.25 and ds.camera_jpeg is None


def test_colour_variant_trains_on_rgb_bursts(tmp_path, photo_folder):
    """A color=true model resolves the default one-plane bursts to RGB, refuses grey ones, and
    trains and validates like the per-plane models."""
    run = tmp_path / "run"
    kw = ["--model-kwargs", '{"color": true}', "--data", str(photo_folder)]
    main(["train", *TINY, *kw, "--steps", "2", "--val-every", "2", "--out", str(run)])
    cfg = TrainConfig.from_dict(__import__("yaml").safe_load((run / "config.yaml").read_text()))
    assert cfg.channels == 3 and cfg.model_kwargs == {"color": True}
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_psnr" in r for r in rows)
    assert all(torch.isfinite(v).all() for v in _weights(run).values())
    grey = TrainConfig.from_dict({"model_kwargs": {"color": True}, "channels": 1, "steps": 1})
    with pytest.raises(InputError, match="RGB bursts"):
        train(grey, tmp_path / "grey", progress=False)


def test_prealign_trains_on_aligned_motion_and_starts_from_unaligned_weights(
    tmp_path, photo_folder
):
    """A prealign model trains on bursts whose neighbours are within half a pixel
    (ALIGNED_MOTION; the large offsets kept), validates on the usual bursts aligned by whole
    pixels, and --init may start it from weights trained without it (same weights' shapes)."""
    from burstkpn.data.degrade.synth import ALIGNED_MOTION, DEFAULT_MOTION
    from burstkpn.models import read_metadata
    from burstkpn.ops.align import align_whole_pixels
    from burstkpn.train import make_train_dataset
    from burstkpn.train.data import make_val_set

    base = dict(data=str(photo_folder), task="burst", steps=2, batch_size=2, patch_size=32)
    assert make_train_dataset(TrainConfig.from_dict(base)).motion == DEFAULT_MOTION
    cfg = TrainConfig.from_dict({**base, "model_kwargs": {"prealign": True}})
    assert make_train_dataset(cfg).motion == ALIGNED_MOTION
    assert ALIGNED_MOTION.max_small == 2 and ALIGNED_MOTION.max_large == DEFAULT_MOTION.max_large
    val = dict(val_data=str(photo_folder), val_bursts=2, val_patch=32)
    plain = make_val_set(TrainConfig.from_dict({**base, **val}))
    aligned = make_val_set(TrainConfig.from_dict({**base, **val, "model_kwargs": cfg.model_kwargs}))
    for p, a in zip(plain, aligned, strict=True):
        assert torch.equal(a["noisy"], align_whole_pixels(p["noisy"])[0])
        assert torch.equal(a["clean"], p["clean"])

    common = [*TINY, "--data", str(photo_folder), "--ckpt-every", "2"]
    first = tmp_path / "first"
    main(["train", *common, "--steps", "2", "--out", str(first), "--quiet"])
    run = tmp_path / "run"
    main(
        ["train", *common, "--steps", "3", "--model-kwargs", '{"prealign": true}']
        + ["--init", str(first / "last.safetensors"), "--out", str(run), "--quiet"]
    )
    assert read_metadata(run / "last.safetensors")["kwargs"]["prealign"] is True


def test_burst_prefilter_reaches_the_burst_dataset(photo_folder):
    from burstkpn.train import make_train_dataset

    base = dict(data=str(photo_folder), task="burst", steps=2, batch_size=2, patch_size=32)
    assert make_train_dataset(TrainConfig.from_dict(base)).prefilter == 0.0
    cfg = TrainConfig.from_dict({**base, "burst_prefilter": 2.0})
    assert make_train_dataset(cfg).prefilter == 2.0
    with pytest.raises(InputError, match="burst_prefilter"):
        TrainConfig.from_dict({**base, "burst_prefilter": -1}).validate()


def test_large_motion_lambda_sets_the_rate_of_far_off_neighbours(photo_folder):
    """large_motion_lambda replaces the Poisson mean of far-off neighbours (the rest of the
    motion model kept); 0 gives bursts whose every neighbour is within max_small."""
    from burstkpn.data.degrade.synth import ALIGNED_MOTION, sample_offsets
    from burstkpn.train import make_train_dataset

    base = dict(data=str(photo_folder), task="burst", steps=2, batch_size=2, patch_size=32)
    cfg = TrainConfig.from_dict(
        {**base, "model_kwargs": {"prealign": True}, "large_motion_lambda": 0.5}
    )
    motion = make_train_dataset(cfg).motion
    assert motion.poisson_lambda == 0.5
    assert motion.max_small == ALIGNED_MOTION.max_small
    assert motion.max_large == ALIGNED_MOTION.max_large
    none = make_train_dataset(TrainConfig.from_dict({**base, "large_motion_lambda": 0.0})).motion
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        offsets, large = sample_offsets(8, g, none)
        assert not large.any() and offsets.abs().max() <= none.max_small
    with pytest.raises(InputError, match="large_motion_lambda"):
        TrainConfig.from_dict({**base, "large_motion_lambda": -1}).validate()
    local = TrainConfig.from_dict({**cfg.__dict__, "local_motion_prob": 0.25})
    dataset = make_train_dataset(local)
    assert dataset.motion.local_prob == 0.25 and dataset.motion.poisson_lambda == 0.5
    assert dataset[0]["noisy"].shape == make_train_dataset(cfg)[0]["noisy"].shape
    with pytest.raises(InputError, match="local_motion_prob"):
        TrainConfig.from_dict({**base, "local_motion_prob": 1.5}).validate()
    static = TrainConfig.from_dict({**cfg.__dict__, "static_burst_prob": 0.25})
    assert make_train_dataset(static).motion.static_prob == 0.25
    assert make_train_dataset(cfg).motion.static_prob == 0.0
    with pytest.raises(InputError, match="static_burst_prob"):
        TrainConfig.from_dict({**base, "static_burst_prob": -0.1}).validate()


def test_packed_state_is_refused_then_resumes_exactly(tmp_path, photo_folder):
    """training/README.md: a committed run keeps its state gzip-compressed. Resuming the packed
    folder is refused with one line (it would otherwise restart or lose Adam's state); once
    unpacked it resumes bit-exactly."""
    common = [*TINY, "--data", str(photo_folder), "--steps", "6", "--ckpt-every", "3"]
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run(_cli(*common, "--out", str(ref)), check=True)
    subprocess.run(_cli(*common, "--out", str(run), "--stop-after", "3"), check=True)
    for name in ("last.safetensors", "last.optim.safetensors"):
        path = run / name
        (run / f"{name}.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    before = (run / "metrics.jsonl").read_text()
    res = subprocess.run(_cli("--resume", str(run), "--quiet"), capture_output=True, text=True)
    assert res.returncode != 0
    assert "gunzip" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert (run / "metrics.jsonl").read_text() == before  # nothing written
    for name in ("last.safetensors", "last.optim.safetensors"):
        packed = run / f"{name}.gz"
        (run / name).write_bytes(gzip.decompress(packed.read_bytes()))
        packed.unlink()
    subprocess.run(_cli("--resume", str(run), "--quiet"), check=True)
    a, b = _weights(ref), _weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
