"""``burstkpn export-weights``: a run's weights with a JSON card (training command, data,
steps, wall time, validation, and the scores on a test set through the one evaluation loop of
:mod:`burstkpn.evaluation`, the loop of the benches)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.data.testsets.burst import DEFAULT_LEVELS, FORMAT, TestSet
from burstkpn.evaluation import (
    degraded,
    evaluate_bursts,
    evaluate_pairs,
    evaluate_windows,
    mean,
    model_method,
    model_restore_method,
    reference,
    restore_items,
)
from burstkpn.models import load_model, save_model
from burstkpn.models.factory import trained_steps
from burstkpn.train.checkpoint import INIT_CARD, load_ema
from burstkpn.train.config import read_config


def training_seconds(run: Path, until: int | None = None, since: int = 0) -> float:
    """Training wall time of steps ``since`` .. ``until`` estimated from the logged throughput
    (validation excluded)."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return 0.0
    cfg = read_config(run)
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln]
    rows = [r for r in rows if until is None or r["step"] <= until]
    total, prev = 0.0, 0
    for r in rows:
        steps = r["step"] - max(prev, since)
        prev = r["step"]
        if r.get("images_per_s") and steps > 0:
            total += steps * cfg.batch_size / r["images_per_s"]
    return total


def _testset_options(generator: dict) -> str:
    """The ``make-testset`` options that rebuild a test set from its manifest's generator."""
    names = [lv["name"] for lv in generator.get("levels", [])]
    opts = [f"--seed {generator['seed']}"]
    if names and names != list(DEFAULT_LEVELS):
        opts.append("--noise " + ",".join(names))
    if generator.get("num_frames", 8) != 8:
        opts.append(f"--frames {generator['num_frames']}")
    if generator.get("patch_size", 128) != 128:
        opts.append(f"--patch {generator['patch_size']}")
    if generator.get("pipeline", "independent") != "independent":
        opts.append(f"--pipeline {generator['pipeline']}")
    return " ".join(opts)


def _burst_testset(testset) -> bool:
    """Whether ``testset`` was written by ``make-testset`` (bursts, or single noisy images with
    ``--frames 1``): a single-image denoiser is then scored per noise level like a burst model."""
    manifest = Path(testset) / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def _evaluate_restoration(model, task: str, testset, limit, progress: bool) -> dict:
    """Mean PSNR / SSIM of a single-image model and of its degraded input on a deblur test set
    (a folder with manifest.json) or a folder of real pairs (what ``bench restore`` scores)."""
    key = "testset" if (Path(testset) / "manifest.json").is_file() else "pairs"
    result = evaluate_pairs(
        restore_items(task, **{key: testset}, limit=limit),
        {"model": model_restore_method(model), "input": degraded},
        task=task,
        progress=progress,
    )
    means = {}
    for method in ("model", "input"):
        rows = [r for r in result["rows"] if r["method"] == method]
        for metric in ("psnr", "ssim"):
            value = mean(r[metric] for r in rows)
            means[metric if method == "model" else f"{method}_{metric}"] = round(value, 4)
    option = "--testset" if key == "testset" else "--pairs"
    return {
        "testset": str(testset),
        "pairs": result["bursts"],
        "command": f"burstkpn bench restore --task {task} {option} {testset}"
        + (f" --limit {limit}" if limit else ""),
        **means,
    }


def _per_level(rows: list[dict], levels) -> dict:
    """Mean PSNR / SSIM of ``model`` and PSNR of ``reference`` per level (4 decimals)."""
    per_level = {}
    for level in levels:
        at = [r for r in rows if r["level"] == level]
        mine = [r for r in at if r["method"] == "model"]
        per_level[level] = {
            "psnr": round(mean(r["psnr"] for r in mine), 4),
            "ssim": round(mean(r["ssim"] for r in mine), 4),
            "reference_psnr": round(mean(r["psnr"] for r in at if r["method"] == "reference"), 4),
        }
    return per_level


def _evaluate_video(model, testset, limit, progress: bool) -> dict:
    """Mean PSNR / SSIM per level of a clip model and of the noisy centre frame on a video
    test set (what ``bench video`` scores)."""
    methods = {"model": model_method(model), "reference": reference}
    result = evaluate_windows(testset, methods, limit=limit, progress=progress)
    return {
        "testset": str(testset),
        "windows": result["windows"],
        "command": f"burstkpn bench video --testset {testset}"
        + (f" --limit {limit}" if limit else ""),
        "per_level": _per_level(result["rows"], result["levels"]),
    }


def _evaluate_bursts(model, name: str, testset, limit, progress: bool) -> dict:
    """Mean PSNR / SSIM per noise level of a model and PSNR of the noisy reference on a
    ``make-testset`` test set (what ``bench quality`` scores)."""
    ts = TestSet(testset)
    methods = {"model": model_method(model), "reference": reference}
    result = evaluate_bursts(
        ts, methods, limit=limit, examples=0, desc=f"evaluate {name}", progress=progress
    )
    rows = result["rows"]
    return {
        "testset": str(testset),
        "bursts": result["bursts"],
        "command": f"burstkpn make-testset {Path(ts.manifest['bursts'][0]['source']).parent}"
        f" --out DIR {_testset_options(ts.manifest['generator'])}"
        + (f"; first {limit} images" if limit else ""),
        "per_level": _per_level(rows, dict.fromkeys(r["level"] for r in rows)),
    }


def export_weights(
    run: str | os.PathLike,
    name: str,
    out_dir: str | os.PathLike,
    *,
    testset: str | os.PathLike | None = None,
    limit: int | None = None,
    progress: bool = True,
    half: bool = True,
) -> dict:
    """Copy a run's ``last`` checkpoint to ``out_dir/NAME.safetensors`` with a JSON card beside
    it: training command, data, steps, wall time, last validation, and (with ``testset``) PSNR /
    SSIM per noise level next to the noisy reference's; for denoise / deblur runs ``testset``
    is a deblur test set or a folder of real pairs, scored next to the degraded input.
    ``half``: store the weights in float16 (models still compute in float32; the scores are
    those of the rounded weights), else float32."""
    run = Path(run)
    cfg = read_config(run)
    model = load_model(run / "last.safetensors")
    step = trained_steps(model.card) or 0  # the checkpoint's step (logs may run past it)
    averaged = cfg.ema_decay > 0 and load_ema(run / "last.safetensors", model)
    if half:
        # shipped weights are stored in float16 (half the bytes: the working tree stays small
        # enough to travel); rounded first, so that the card scores what is stored
        model.half().float()
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln]
    rows = [r for r in rows if r["step"] <= step]
    last_val = next((r for r in reversed(rows) if "val_psnr" in r), None)
    init = json.loads((run / INIT_CARD).read_text()) if (run / INIT_CARD).is_file() else None
    init_hours = float(init.get("training_hours") or 0.0) if init else 0.0
    init_step = (trained_steps(init) or 0) if init else 0  # hours before it are init_hours
    card = {
        "name": name,
        "architecture": model.config,
        # the run's resolved config.yaml holds every option (model, data, schedule, seed)
        "training_command": f"burstkpn train --config runs/{run.name}/config.yaml "
        + (f"--init {init.get('name') or 'WEIGHTS'} " if init is not None else "")
        + f"--out runs/{run.name}",
        "config": dataclasses.asdict(cfg),
        "data": cfg.data or "embedded scikit-image photos",
        "steps": step,
        "planned_steps": cfg.steps,
        "anneal_weight_at_last_step": cfg.beta * cfg.alpha**step,
        "training_hours": round(training_seconds(run, step, init_step) / 3600 + init_hours, 2),
        "precision": cfg.precision,
        "weights": f"exponential moving average, decay {cfg.ema_decay}" if averaged else "last",
        "storage": {"dtype": "float16" if half else "float32"},
        "validation": {k: v for k, v in (last_val or {}).items() if k.startswith("val_")},
        "validation_step": last_val["step"] if last_val else None,
    }
    if init is not None:  # training_hours above includes the earlier training
        card["continued_from"] = {
            "steps": trained_steps(init),
            "training_hours": init.get("training_hours"),
            "training_command": init.get("training_command"),
        }
    if cfg.task in ("denoise", "deblur"):  # no annealed loss
        card.pop("anneal_weight_at_last_step")
    if testset is not None and cfg.task in ("denoise", "deblur") and not _burst_testset(testset):
        card["evaluation"] = _evaluate_restoration(model, cfg.task, testset, limit, progress)
    elif testset is not None and cfg.task == "video":
        card["evaluation"] = _evaluate_video(model, testset, limit, progress)
    elif testset is not None:
        card["evaluation"] = _evaluate_bursts(model, name, testset, limit, progress)
    out = Path(out_dir)
    save_model(model.half() if half else model, out / f"{name}.safetensors", **card)
    atomic_write_bytes(out / f"{name}.json", (json.dumps(card, indent=1) + "\n").encode())
    return card
