"""The training loop: :func:`train` (one process or DDP ranks), the learning-rate schedule and
the validation of the fixed validation set."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.errors import InputError
from burstkpn.inference import Runner
from burstkpn.losses import annealed_loss, basic_loss, group_annealed_loss, restoration_loss
from burstkpn.metrics import psnr
from burstkpn.models import count_parameters, create_model, read_metadata, save_model
from burstkpn.models.kpn import KernelPredictionNet
from burstkpn.runtime import autocast, cpu_count, prepare_model, resolve_precision, tune_allocator
from burstkpn.train.checkpoint import (
    INIT_CARD,
    _init_path,
    _trim_metrics,
    load_ema,
    load_state,
    save_state,
    start_from_weights,
    update_ema,
)
from burstkpn.train.config import TrainConfig, resolve_task, write_config
from burstkpn.train.data import _StepSampler, make_train_dataset, make_val_set, prefetched
from burstkpn.train.plots import plot_metrics

RUN_FILES = ("config.yaml", "metrics.jsonl", "last.safetensors")  # a run folder holds a run


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """``step``: lr * decay^epoch, floored at lr_min ([AME-KPN] section 3.2). ``cosine``:
    linear warm-up to lr over ``warmup_steps``, then half a cosine from lr down to lr_min at
    step ``steps`` (lr_min after it)."""
    if cfg.lr_schedule == "cosine":
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        span = max(cfg.steps - cfg.warmup_steps, 1)
        t = min((step - cfg.warmup_steps) / span, 1.0)
        return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * t))
    return max(cfg.lr * cfg.lr_decay ** (step // cfg.epoch_steps), cfg.lr_min)


@torch.no_grad()
def validate(
    model, val_set: list[dict], precision: str, device: torch.device, loss: str = "annealed"
) -> dict:
    runner = Runner(model, device=device, precision=precision)  # eval mode, autocast
    per_level: dict[str, list[float]] = {}
    losses = []
    # kernel models: watch the eq. (4) balance (mean kernel sum per frame, mean weight W), whose
    # drift (sums far from 1 balanced by small W) shifts brightness
    kernel_model = isinstance(model, KernelPredictionNet) and not model.direct
    sums, weights = [], []
    for item in val_set:
        noisy = item["noisy"].to(device)
        nmap = item["noise_map"].to(device) if "noise_map" in item else None
        if noisy.ndim == 4:  # a pair: (1, C, P, P) -> a batch of one
            noisy, nmap = noisy[None], None if nmap is None else nmap[None]
        out = (
            runner.forward(noisy, nmap, return_aux=True)
            if kernel_model
            else runner.forward(noisy, nmap)
        )
        if kernel_model:
            sums.append(float(out.aux["kernels"].float().sum(3).mean()))
            if "weights" in out.aux:
                weights.append(float(out.aux["weights"].float().mean()))
        clean = item["clean"].to(device)
        clean = clean[None] if clean.ndim == 3 else clean
        if loss == "annealed":
            losses.append(float(basic_loss(out.image.float(), clean)["loss"]))
        else:  # eq. (9) alone for the video task's validation
            kind = "gamma_l1" if loss == "group_annealed" else loss
            losses.append(float(restoration_loss(out.image.float(), clean, kind)["loss"]))
        per_level.setdefault(item["level"], []).append(float(psnr(out.image, clean).mean()))
    model.train()
    if list(per_level) == [None]:  # denoise / deblur: one PSNR
        res = {"val_psnr": sum(per_level[None]) / len(per_level[None])}
    else:
        res = {f"val_psnr_{k}": sum(v) / len(v) for k, v in per_level.items()}
        res["val_psnr"] = sum(res.values()) / len(res)
    res["val_loss"] = sum(losses) / len(losses)
    if sums:
        res["val_kernel_sum"] = sum(sums) / len(sums)
    if weights:
        res["val_weight"] = sum(weights) / len(weights)
    return res


def _check_not_packed(run: Path) -> None:
    """A run committed to the repository keeps its state gzip-compressed (training/README.md);
    resuming it unpacked would silently restart (no weights) or lose Adam's state (no
    ``last.optim.safetensors``), so say what to do instead."""
    packed = [
        f"{name}.gz"
        for name in ("last.safetensors", "last.optim.safetensors")
        if not (run / name).exists() and (run / f"{name}.gz").exists()
    ]
    if packed:
        raise InputError(
            f"'{run}' holds its state compressed ({', '.join(packed)}): run "
            f"'gunzip {run}/*.gz' first, then resume"
        )


def _dist_info() -> tuple[int, int]:
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return 0, 1


def train(
    cfg: TrainConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    init: str | os.PathLike | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume) a run in ``out``; returns the last logged metrics. ``init`` starts a
    new run from trained weights (a shipped name such as ``"kpn"`` or a checkpoint path) with a
    new Adam state, counting steps on from theirs so that the learning-rate schedule and the
    anneal ([AME-KPN] eq. 8) continue. ``stop_after`` ends the process after that many steps
    of this call (for tests and chunked runs)."""
    tune_allocator()
    cfg.validate()
    rank, world = _dist_info()
    distributed = world > 1
    device = (
        torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if (torch.cuda.is_available())
        else torch.device("cpu")
    )
    if distributed:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if cfg.batch_size % world:
            raise InputError(f"batch size {cfg.batch_size} is not divisible by {world} ranks")
    cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device))
    if device.type == "cpu":  # the whole machine for one run (shared among local DDP ranks)
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        torch.set_num_threads(cfg.threads or max(cpu_count() // max(local, 1), 1))
    run = Path(out)
    is_main = rank == 0
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, cfg.size, **cfg.model_kwargs)
    cfg = resolve_task(cfg, model)
    if is_main and not resume and any((run / name).exists() for name in RUN_FILES):
        raise InputError(f"run folder '{run}' already holds a run (use --resume to continue it)")
    if resume:
        _check_not_packed(run)

    # everything that can fail on the user's input (--init weights, --data) is checked before
    # the run folder is written, so that a failed start leaves nothing behind
    init_path = None if (init is None or resume) else _init_path(init, model)
    model = prepare_model(model, device, cfg.precision).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, best = 0, -math.inf
    keep_in = run if is_main else None
    if init_path is not None:
        step = start_from_weights(init_path, model)
        if step >= cfg.steps:
            raise InputError(
                f"the weights in '{init_path}' were trained for {step} steps: give --steps "
                f"above {step} (steps count on from the weights)"
            )
    if resume and (run / "last.safetensors").exists():
        step, best = load_state(run / "last.safetensors", model, optimizer, keep_in)
        if is_main:
            _trim_metrics(run / "metrics.jsonl", step)
    ema = None
    if cfg.ema_decay > 0:
        ema = copy.deepcopy(model).eval().requires_grad_(False)
        if resume:
            load_ema(run / "last.safetensors", ema)  # else it starts from the current weights
    net = model
    if distributed:
        net = DistributedDataParallel(model)
    if cfg.compile:
        # the same weights: checkpoints, EMA and validation keep using the eager ``model``
        net = torch.compile(net)

    dataset = make_train_dataset(cfg)
    stop = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    loader = DataLoader(
        dataset,
        batch_sampler=_StepSampler(step, stop, cfg.batch_size, rank, world),
        num_workers=cfg.workers,
        persistent_workers=False,
    )
    val_set = make_val_set(cfg) if is_main and cfg.val_every > 0 else []
    if is_main:
        run.mkdir(parents=True, exist_ok=True)
        # a resumed run rewrites its config too: an extended run (--steps) says so there
        write_config(run, cfg)
        if init_path is not None:  # its exported card adds the earlier training to its own
            text = json.dumps(read_metadata(init_path)["card"], indent=1) + "\n"
            atomic_write_bytes(run / INIT_CARD, text.encode())
    card = {
        "run": run.name,
        "config": dataclasses.asdict(cfg),
        "parameters": count_parameters(model),
    }
    log: dict = {}
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        desc=f"train {cfg.model}",
        unit="step",
        disable=not (progress and is_main),
    )
    t_last, n_since = time.perf_counter(), 0
    metrics_path = run / "metrics.jsonl"
    for batch in prefetched(loader, cfg.prefetch if cfg.workers == 0 else 0):
        lr = learning_rate(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        noisy, clean = batch["noisy"].to(device), batch["clean"].to(device)
        nmap = batch["noise_map"].to(device) if "noise_map" in batch else None
        with autocast(device, cfg.precision):
            output = net(noisy, nmap)
        if cfg.task == "burst":
            terms = annealed_loss(
                output.image,
                output.frames,
                clean,
                step,
                alpha=cfg.alpha,
                beta=cfg.beta,
                grad_weight=cfg.grad_weight,
                coarse_weight=cfg.coarse_weight,
            )
        elif cfg.loss == "group_annealed":  # [DeformKernels] eq. (11)
            terms = group_annealed_loss(
                output.image, output.frames, clean, step, eta=cfg.beta, gamma=cfg.alpha
            )
        else:  # [DCN-LKA] eq. (7) on sRGB values, or gamma L1 (eq. 9)
            terms = restoration_loss(output.image, clean, cfg.loss)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        if ema is not None:
            update_ema(ema, model, cfg.ema_decay)
        step += 1
        n_since += noisy.shape[0] * world
        bar.update(1)
        loss_value = float(terms["loss"].detach())
        if not math.isfinite(loss_value):
            raise RuntimeError(f"loss became {loss_value} at step {step}")
        if is_main and (step % cfg.log_every == 0 or step == stop):
            now = time.perf_counter()
            log = {"step": step, "lr": lr, "images_per_s": n_since / max(now - t_last, 1e-9)}
            log.update({k: float(v.detach()) for k, v in terms.items()})
            t_last, n_since = now, 0
            if cfg.val_every > 0 and (step % cfg.val_every == 0 or step == cfg.steps):
                evaluated = model if ema is None else ema
                log.update(validate(evaluated, val_set, cfg.precision, device, cfg.loss))
                if log["val_psnr"] > best:
                    best = log["val_psnr"]
                    save_model(evaluated, run / "best.safetensors", **card, step=step, val=log)
            with open(metrics_path, "a") as f:
                f.write(json.dumps(log) + "\n")
            bar.set_postfix(loss=f"{log['loss']:.4f}", lr=f"{lr:.1e}")
        if is_main and (step % cfg.ckpt_every == 0 or step == stop):
            save_state(
                run / "last.safetensors",
                model,
                optimizer,
                step,
                best,
                {**card, "step": step},
                ema,
            )
            plot_metrics(run)
    bar.close()
    if distributed:
        dist.barrier()
    return log
