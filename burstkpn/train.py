"""Training: ``burstkpn train`` for every model, resumable and distributed.

Schedule and loss follow ame_kpn.md section 3.2 and eq. (8): Adam at 1e-4, multiplied by
10^-0.05 every epoch (``epoch_steps`` steps) down to 5e-6; the annealed loss with
alpha = 0.9998, beta = 100 and the step counter t carried across resumes.

Reproducibility: the burst of global sample index i is generated from a generator seeded by
``(seed, i)`` (see :class:`~burstkpn.data.datasets.SyntheticBurstDataset`), and step s uses the
samples ``[s * batch, (s + 1) * batch)``; so a run is the same with any number of DataLoader
workers, after a resume, and split over DDP ranks (rank r takes its slice of the global batch).

Tasks: ``burst`` (the default for burst models) trains on synthetic bursts as above;
``denoise`` and ``deblur`` train single-image models (dcn_lka.md) on degraded / clean pairs
(:mod:`burstkpn.data.datasets`): synthetic pairs made from a folder of clean photos (our noise
model; random motion blur), or a paired folder in SIDD / GoPro / PolyU layout (detected), with
dcn_lka.md's MSE loss, eq. (7), on sRGB values (or ``loss: gamma_l1``), and validation PSNR on
fixed synthetic pairs from the validation photos. ``video`` (the default for clip models,
``deform3d``) trains on clips of ``2 tau + 1`` frames (:mod:`burstkpn.data.degrade.video`):
photos with synthetic camera motion and / or clean clips from ``clips`` (a folder of frame
folders), with deformable_kernels.md eq. (11) (eq. 9 plus the group-annealed term of eq. 10;
``loss: gamma_l1`` gives eq. 9 alone, Table 4's "w/o annealing term"), validated at the
paper's Low / High levels. The task, the loss and the data layout are resolved when a run
starts and stored in ``config.yaml``, so ``--resume`` continues the same.

Run folder::

    config.yaml        resolved configuration
    metrics.jsonl      one JSON line per logged step / validation
    last.safetensors   model (with card) + last.optim.safetensors (Adam state, step)
    best.safetensors   best validation PSNR so far
    loss.png           loss and validation curves
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from burstkpn.data.datasets import SyntheticBurstDataset
from burstkpn.data.degrade.synth import synthesize_burst
from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.data.io.images import list_images, load_linear
from burstkpn.data.sampling import match_channels
from burstkpn.errors import InputError
from burstkpn.inference import Runner
from burstkpn.losses import (
    RESTORATION_LOSSES,
    annealed_loss,
    basic_loss,
    group_annealed_loss,
    restoration_loss,
)
from burstkpn.metrics import psnr
from burstkpn.models import count_parameters, create_model, load_model, read_metadata, save_model
from burstkpn.models.factory import trained_steps
from burstkpn.models.kpn import KernelPredictionNet
from burstkpn.models.traits import model_traits
from burstkpn.runtime import (
    autocast,
    cpu_count,
    prepare_model,
    resolve_precision,
    tune_allocator,
)

RUN_FILES = ("config.yaml", "metrics.jsonl", "last.safetensors")  # a run folder holds a run
INIT_CARD = "init_card.json"  # card of the weights a run was continued from (weights only)
VAL_LEVELS = ("gain1", "gain2", "gain3", "gain4")
VIDEO_VAL_LEVELS = ("low", "high")  # deformable_kernels.md Tables 2-3
TASKS = ("auto", "burst", "denoise", "deblur", "video")
LOSSES = ("auto", "annealed", "group_annealed", *RESTORATION_LOSSES)
LR_SCHEDULES = ("step", "cosine")
DATA_LAYOUTS = ("auto", "photos", "sidd", "gopro", "polyu")  # photos: clean photos, synthetic


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``config.yaml`` in the run folder."""

    model: str = "ame_kpn"
    size: str = "cpu"
    model_kwargs: dict = field(default_factory=dict)
    data: str | None = None  # folder / glob of clean photos; None: the embedded photos
    val_data: str | None = None  # None: the embedded photos
    patch_size: int = 64
    batch_size: int = 16
    num_frames: int = 8
    channels: str = "random"  # one colour plane per burst (the model is per-channel)
    steps: int = 10_000
    epoch_steps: int = 1_000
    lr: float = 1e-4
    lr_decay: float = 10**-0.05
    lr_min: float = 5e-6
    alpha: float = 0.9998
    beta: float = 100.0
    grad_weight: float = 1.0
    # "auto": bf16 autocast where the hardware runs it natively, else fp32 (runtime.py);
    # a new run stores the resolved value so a resume elsewhere computes the same way
    precision: str = "auto"
    seed: int = 0
    workers: int = 0
    # speed, not results: torch intra-op threads (0: every core this process may use), batches
    # synthesised ahead in a background thread (0: in the loop), torch.compile of the model
    threads: int = 0
    prefetch: int = 0
    compile: bool = False
    # learning-rate schedule: "step" (ame_kpn.md section 3.2: lr * lr_decay per epoch, floored at
    # lr_min) or "cosine" (linear warm-up over warmup_steps, then cosine from lr to lr_min at
    # step ``steps``: a schedule fitted to the planned run length)
    lr_schedule: str = "step"
    warmup_steps: int = 0
    log_every: int = 10
    val_every: int = 500
    val_bursts: int = 16
    val_patch: int = 128
    ckpt_every: int = 100
    # task "auto": burst for burst models, denoise for single-image models; loss "auto":
    # annealed (ame_kpn.md eq. 8) for bursts, mse (dcn_lka.md eq. 7) for denoise / deblur;
    # layout "auto": a paired folder's layout if --data holds one, else photos (synthetic pairs)
    task: str = "auto"
    loss: str = "auto"
    layout: str = "auto"
    blur_size: int = 15  # deblur, synthetic pairs: motion-blur kernel size (odd)
    blur_noise: bool = False  # deblur, synthetic pairs: add a little noise to the blurry image
    noise_correlation: list = field(default_factory=lambda: [0.0, 0.0])  # denoise, synthetic
    # synthetic noise: ranges of sigma_r and sigma_s, drawn log-uniformly; None: the training
    # ranges of ame_kpn.md section 3.1 (data/degrade/noise.py TRAIN_SIGMA_R / TRAIN_SIGMA_S)
    sigma_r_range: list | None = None
    sigma_s_range: list | None = None
    # exponential moving average of the weights (decay per step; 0: off). With it, validation,
    # best.safetensors and export-weights use the averaged weights; the raw ones keep training
    ema_decay: float = 0.0
    # bursts: scale each clean burst (linear light) by a factor drawn log-uniformly from
    # [lo, hi] before the noise, for darker scenes than the training photos; None: off
    exposure_range: list | None = None
    # bursts: the share of training bursts whose noise goes through the camera pipeline of
    # data/degrade/camera.py (raw mosaic, demosaicking, colour, tone curve, sharpening, 8 bits,
    # JPEG of a quality drawn from camera_jpeg; None: no JPEG); 0: independent noise only
    camera_fraction: float = 0.0
    camera_jpeg: list | None = field(default_factory=lambda: [70, 95])
    camera_noise_scale: float = 1 / 3  # raw noise of camera items (development amplifies ~3x)
    # video: a folder of clean clips (frame folders) mixed with the photos of --data; each
    # training clip comes from it with probability clip_fraction (1: clips only)
    clips: str | None = None
    clip_fraction: float = 0.5

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**d)

    def validate(self) -> None:
        if self.batch_size < 1 or self.steps < 0 or self.epoch_steps < 1:
            raise InputError("batch_size and epoch_steps must be positive, steps non-negative")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got '{self.lr_schedule}'"
            )
        if self.threads < 0 or self.prefetch < 0 or self.warmup_steps < 0:
            raise InputError("threads, prefetch and warmup_steps must be non-negative")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise InputError(f"precision must be auto, bf16 or fp32, got '{self.precision}'")
        if not 0.0 <= float(self.ema_decay) < 1.0:
            raise InputError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for name, rng in (
            ("sigma_r_range", self.sigma_r_range),
            ("sigma_s_range", self.sigma_s_range),
            ("exposure_range", self.exposure_range),
        ):
            if rng is not None and not _is_range(rng):
                raise InputError(f"{name} must be [lo, hi] with 0 < lo <= hi, got {rng}")
        for name, value, allowed in (
            ("task", self.task, TASKS),
            ("loss", self.loss, LOSSES),
            ("layout", self.layout, DATA_LAYOUTS),
        ):
            if value not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, got '{value}'")


def _is_range(value) -> bool:
    """Whether ``value`` is ``[lo, hi]`` with finite numbers ``0 < lo <= hi``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(hi) and 0 < lo <= hi


def resolve_task(cfg: TrainConfig, model: torch.nn.Module) -> TrainConfig:
    """``cfg`` with ``task``, ``loss`` and ``layout`` resolved for ``model`` (see the fields),
    after checking that they fit together and that ``data`` exists; one-line errors."""
    traits = model_traits(model)
    single = traits.kind == "single"
    if traits.kind == "clip" or cfg.task == "video":
        return _resolve_video(cfg, model)
    task = cfg.task if cfg.task != "auto" else ("denoise" if single else "burst")
    if task != "burst" and not single:
        raise InputError(
            f"--task {task} trains single-image models (such as dcn_lka); "
            f"'{cfg.model}' is a burst model"
        )
    loss = cfg.loss if cfg.loss != "auto" else ("annealed" if task == "burst" else "mse")
    if (task == "burst") != (loss == "annealed"):
        raise InputError(
            f"loss '{loss}' does not fit task '{task}' (burst: annealed; denoise / deblur: "
            f"{', '.join(RESTORATION_LOSSES)})"
        )
    layout = cfg.layout
    if task != "burst" and cfg.exposure_range is not None:
        raise InputError(f"exposure_range applies to burst training only, not to task '{task}'")
    if task != "burst" and cfg.camera_fraction:
        raise InputError(f"camera_fraction applies to burst training only, not to task '{task}'")
    if task == "burst" and layout not in ("auto", "photos"):
        raise InputError(f"burst training makes bursts from photos; layout '{layout}' is paired")
    if layout == "auto":
        layout = "photos"
        if task != "burst" and cfg.data is not None and Path(cfg.data).is_dir():
            from burstkpn.data.io.pairs import _image_files, detect_layout

            layout = detect_layout(_image_files(Path(cfg.data))) or "photos"
    if layout == "photos":
        if cfg.data is not None:
            list_images(cfg.data)  # fail early on a bad folder
    else:
        from burstkpn.data.io.pairs import find_pairs

        if cfg.data is None:
            raise InputError(f"layout '{layout}' needs --data, a folder of {layout} pairs")
        find_pairs(cfg.data, layout)
        made_for = "deblur" if layout == "gopro" else "denoise"
        if task != made_for:
            raise InputError(f"'{cfg.data}' holds {layout} pairs, which are for --task {made_for}")
    if task != "burst" and not traits.blind:
        if task == "deblur" or layout != "photos":
            raise InputError(
                f"'{cfg.model}' needs a noise map, which {layout} {task} pairs do not give; "
                "train it blind (--model-kwargs '{\"blind\": true}')"
            )
    if task == "deblur" and (cfg.blur_size < 1 or cfg.blur_size % 2 == 0):
        raise InputError(f"blur_size must be odd and positive, got {cfg.blur_size}")
    return dataclasses.replace(cfg, task=task, loss=loss, layout=layout)


def _resolve_video(cfg: TrainConfig, model: torch.nn.Module) -> TrainConfig:
    """The video task: clip models only; loss eq. (11) (``group_annealed``) or eq. (9)
    (``gamma_l1``); ``--data`` photos, or a clip folder (then ``clips`` with fraction 1);
    ``num_frames`` the model's clip length."""
    from burstkpn.data.io.clips import find_clips, is_clip_folder

    task = "video" if cfg.task == "auto" else cfg.task
    if task != "video" or model_traits(model).kind != "clip":
        raise InputError(
            f"'{cfg.model}' takes clips: train it with --task video"
            if task != "video"
            else f"--task video trains clip models (deform3d); '{cfg.model}' is not one"
        )
    loss = "group_annealed" if cfg.loss == "auto" else cfg.loss
    if loss not in ("group_annealed", "gamma_l1"):
        raise InputError(f"loss '{loss}' does not fit task video (group_annealed, gamma_l1)")
    if cfg.layout not in ("auto", "photos"):
        raise InputError(f"video training makes clips from photos; layout '{cfg.layout}' is paired")
    if not 0.0 <= cfg.clip_fraction <= 1.0:
        raise InputError(f"clip_fraction must be in [0, 1], got {cfg.clip_fraction}")
    data, clips, fraction = cfg.data, cfg.clips, cfg.clip_fraction
    n = int(model.num_frames)
    if is_clip_folder(data, n):
        if clips is not None:
            raise InputError(f"'{data}' holds video clips: give it as --clips, photos as --data")
        data, clips, fraction = None, data, 1.0
    if clips is not None:
        find_clips(clips, n)  # fail early on a bad folder
    else:
        fraction = 0.0
    if data is not None and fraction < 1.0:
        list_images(data)
    return dataclasses.replace(
        cfg,
        task="video",
        loss=loss,
        layout="photos",
        data=data,
        clips=clips,
        clip_fraction=fraction,
        num_frames=n,
    )


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """``step``: lr * decay^epoch, floored at lr_min (ame_kpn.md section 3.2). ``cosine``:
    linear warm-up to lr over ``warmup_steps``, then half a cosine from lr down to lr_min at
    step ``steps`` (lr_min after it)."""
    if cfg.lr_schedule == "cosine":
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        span = max(cfg.steps - cfg.warmup_steps, 1)
        t = min((step - cfg.warmup_steps) / span, 1.0)
        return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * t))
    return max(cfg.lr * cfg.lr_decay ** (step // cfg.epoch_steps), cfg.lr_min)


def prefetched(iterable, depth: int):
    """Iterate ``iterable`` in a background thread, ``depth`` items ahead, so that burst
    synthesis (numpy / torch ops that release the GIL) overlaps the model step. ``depth`` 0:
    plain iteration. Exceptions of the producer are raised in the consumer; stopping early
    (break, exception) ends the thread at its next item."""
    if depth <= 0:
        yield from iterable
        return
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put((done, None))
        except BaseException as exc:  # handed to the consumer
            items.put((done, exc))

    thread = threading.Thread(target=produce, name="burstkpn-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = items.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


# --------------------------------------------------------------------------- data
class _StepSampler(Sampler[list[int]]):
    """Yields, for steps ``start .. stop-1``, this rank's slice of the global batch indices."""

    def __init__(self, start: int, stop: int, batch: int, rank: int, world: int) -> None:
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world
        self.local = batch // world

    def __iter__(self):
        for step in range(self.start, self.stop):
            base = step * self.batch + self.rank * self.local
            yield list(range(base, base + self.local))

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)


def _noise_ranges(cfg: TrainConfig) -> dict:
    """The dataset keyword arguments for the configured noise ranges (empty: defaults)."""
    out = {}
    if cfg.sigma_r_range is not None:
        out["sigma_r_range"] = tuple(float(v) for v in cfg.sigma_r_range)
    if cfg.sigma_s_range is not None:
        out["sigma_s_range"] = tuple(float(v) for v in cfg.sigma_s_range)
    return out


def make_train_dataset(cfg: TrainConfig) -> Dataset:
    """Item ``i`` is the ``i``-th sample of the run (step s uses ``[s * batch, (s + 1) *
    batch)``), each drawn from its own seeded generator."""
    length = max(cfg.steps, 1) * cfg.batch_size
    if cfg.task == "video":
        from burstkpn.data.datasets import SyntheticClipDataset

        return SyntheticClipDataset(
            cfg.data,
            cfg.clips,
            clip_fraction=cfg.clip_fraction,
            patch_size=cfg.patch_size,
            tau=cfg.num_frames // 2,
            length=length,
            seed=cfg.seed,
            channels=cfg.channels,
            **_noise_ranges(cfg),
        )
    if cfg.task in ("denoise", "deblur"):
        from burstkpn.data.datasets import PairedImageDataset

        if cfg.layout != "photos":
            return PairedImageDataset(
                cfg.data,
                layout=cfg.layout,
                patch_size=cfg.patch_size,
                length=length,
                seed=cfg.seed,
                channels=3,
            )
        return _synthetic_pairs(cfg, cfg.data, cfg.patch_size, length, cfg.seed, augment=True)
    return SyntheticBurstDataset(
        cfg.data,
        patch_size=cfg.patch_size,
        num_frames=cfg.num_frames,
        length=max(cfg.steps, 1) * cfg.batch_size,
        seed=cfg.seed,
        channels=cfg.channels,
        **_noise_ranges(cfg),
        exposure_range=None
        if cfg.exposure_range is None
        else tuple(float(v) for v in cfg.exposure_range),
        camera_fraction=float(cfg.camera_fraction),
        camera_jpeg=None if cfg.camera_jpeg is None else tuple(int(q) for q in cfg.camera_jpeg),
        camera_noise_scale=float(cfg.camera_noise_scale),
    )


def _synthetic_pairs(
    cfg: TrainConfig, source, patch: int, length: int, seed: int, *, augment: bool
) -> Dataset:
    """Synthetic noisy / clean (denoise) or blurry / sharp (deblur) pairs from clean photos."""
    from burstkpn.data.datasets import SyntheticBlurPairs, SyntheticNoisyPairs

    common = {"patch_size": patch, "length": length, "seed": seed, "channels": 3}
    if cfg.task == "deblur":
        return SyntheticBlurPairs(
            source, **common, augment=augment, kernel_size=cfg.blur_size, noise=cfg.blur_noise
        )
    return SyntheticNoisyPairs(
        source,
        **common,
        augment=augment,
        correlation=tuple(cfg.noise_correlation),
        **_noise_ranges(cfg),
    )


def make_val_set(cfg: TrainConfig) -> list[dict]:
    """A small fixed validation set: ``val_bursts`` bursts from the validation photos, cycling
    through Gain 1-4, seeded independently of the training seed. For the denoise / deblur tasks:
    ``val_bursts`` fixed synthetic pairs (``val_patch`` px) from the validation photos, whatever
    the training data, scored as one PSNR."""
    if cfg.task in ("denoise", "deblur"):
        pairs = _synthetic_pairs(
            cfg, cfg.val_data, cfg.val_patch, cfg.val_bursts, 10_000, augment=False
        )
        return [{"level": None, **pairs[i]} for i in range(cfg.val_bursts)]
    if cfg.task == "video":
        return _video_val_set(cfg)
    refs = list_images(cfg.val_data)
    images = [match_channels(load_linear(r), 3) for r in refs]
    out = []
    for i in range(cfg.val_bursts):
        level = VAL_LEVELS[i % len(VAL_LEVELS)]
        g = torch.Generator().manual_seed(10_000 + i)
        burst = synthesize_burst(
            images[(i // len(VAL_LEVELS)) % len(images)],
            g,
            num_frames=cfg.num_frames,
            patch_size=cfg.val_patch,
            noise=level,
        )
        out.append(
            {
                "level": level,
                "noisy": burst.noisy,
                "noise_map": burst.noise_map,
                "clean": burst.clean,
            }
        )
    return out


def _video_val_set(cfg: TrainConfig) -> list[dict]:
    """``val_bursts`` fixed clips with synthetic motion from the validation photos, cycling
    through the paper's Low / High levels (deformable_kernels.md Tables 2-3)."""
    from burstkpn.data.degrade.noise import add_noise, estimate_noise_map, parse_noise
    from burstkpn.data.degrade.video import burst_order, synthesize_clip

    images = [match_channels(load_linear(r), 3) for r in list_images(cfg.val_data)]
    out = []
    for i in range(cfg.val_bursts):
        level = parse_noise(VIDEO_VAL_LEVELS[i % len(VIDEO_VAL_LEVELS)])
        g = torch.Generator().manual_seed(10_000 + i)
        image = images[(i // len(VIDEO_VAL_LEVELS)) % len(images)]
        clip, _ = synthesize_clip(image, g, cfg.num_frames // 2, cfg.val_patch)
        burst = clip[burst_order(clip.shape[0])][None]
        noisy = add_noise(burst, level.sigma_r, level.sigma_s, g)
        nmap = estimate_noise_map(noisy[:, 0], level.sigma_r, level.sigma_s)
        out.append({"level": level.name, "noisy": noisy, "noise_map": nmap, "clean": burst[:, 0]})
    return out


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


# --------------------------------------------------------------------------- state files
def _optim_path(ckpt: Path) -> Path:
    return ckpt.with_name(ckpt.name.replace(".safetensors", ".optim.safetensors"))


def save_state(path: Path, model, optimizer, step: int, best: float, card: dict, ema=None) -> None:
    """Model checkpoint plus a safetensors file with Adam's state (and the averaged weights,
    keys ``ema.NAME``), both atomic."""
    from safetensors.torch import save

    save_model(model, path, **card)
    tensors = {}
    for pid, st in optimizer.state_dict()["state"].items():
        for k, v in st.items():
            tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
    if ema is not None:
        for k, v in ema.state_dict().items():
            tensors[f"ema.{k}"] = v.detach().cpu().contiguous()
    meta = {
        "step": str(step),
        "best": repr(best),
        "param_groups": json.dumps(optimizer.state_dict()["param_groups"]),
    }
    atomic_write_bytes(_optim_path(path), save(tensors, metadata=meta))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for the parameters; buffers are copied."""
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm.detach(), 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(bm)


def load_ema(path: Path, ema: torch.nn.Module) -> bool:
    """Load the averaged weights saved beside checkpoint ``path`` into ``ema``; False when the
    run has none yet (EMA newly switched on, or a weights-only continuation)."""
    from safetensors.torch import load_file

    opath = _optim_path(path)
    if not opath.is_file():
        return False
    saved = {k[4:]: v for k, v in load_file(str(opath)).items() if k.startswith("ema.")}
    if not saved:
        return False
    ema.load_state_dict(saved)
    return True


def start_from_weights(path: Path, model, keep_in: Path | None = None) -> int:
    """Load trained weights without an Adam state (``--init``, or a run folder holding only
    committed weights) into ``model`` and return their step, the card's, so that the schedule
    and the anneal continue. ``keep_in``: a run folder that keeps their card as
    ``init_card.json``, so that its exported card adds the earlier training (steps, hours) to
    its own."""
    loaded = load_model(path)
    model.load_state_dict(loaded.state_dict())
    if keep_in is not None:
        text = json.dumps(loaded.card, indent=1) + "\n"
        atomic_write_bytes(keep_in / INIT_CARD, text.encode())
    return trained_steps(loaded.card) or 0


def load_state(path: Path, model, optimizer, keep_in: Path | None = None) -> tuple[int, float]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    opath = _optim_path(path)
    if not opath.is_file():
        # weights only (e.g. a run continued from committed weights): Adam starts afresh at the
        # step recorded in the card; not bit-exact
        step = start_from_weights(path, model, keep_in)
        print(
            f"train: no {opath.name}; continuing from the weights at step {step} with a new "
            "Adam state"
        )
        return step, -math.inf
    model.load_state_dict(load_model(path).state_dict())
    with safe_open(str(opath), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(opath))
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("ema."):
            continue
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    return int(meta["step"]), float(meta["best"])


def read_config(run: Path) -> TrainConfig:
    import yaml

    path = run / "config.yaml"
    if not path.is_file():
        raise InputError(f"'{run}' is not a run folder (no config.yaml)")
    return TrainConfig.from_dict(yaml.safe_load(path.read_text()) or {})


def write_config(run: Path, cfg: TrainConfig) -> None:
    import yaml

    atomic_write_bytes(run / "config.yaml", yaml.safe_dump(dataclasses.asdict(cfg)).encode())


def _trim_metrics(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
    atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


# --------------------------------------------------------------------------- loop
def _with_defaults(name: str, kwargs: dict) -> dict:
    """Constructor kwargs with the constructor's defaults filled in (JSON-normalised), so that
    weights saved before an option existed match a model built with that option's default."""
    from burstkpn.models.factory import MODELS

    params = inspect.signature(MODELS[name]).parameters.values() if name in MODELS else []
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return json.loads(json.dumps({**defaults, **kwargs}))


def _init_path(init: str | os.PathLike, model: torch.nn.Module) -> Path:
    """The checkpoint behind ``--init`` (a shipped name or a path), checked against ``model``."""
    from burstkpn.models.factory import weights_dir

    path = Path(init)
    if not path.suffix and not path.exists():
        path = weights_dir() / f"{init}.safetensors"
        if not path.is_file():
            raise InputError(f"--init: no shipped weights '{init}' and no such file")
    meta = read_metadata(path)  # a clear error for a missing or foreign file
    built = model.config
    if meta["name"] != built["name"] or _with_defaults(meta["name"], meta["kwargs"]) != (
        _with_defaults(built["name"], built["kwargs"])
    ):
        raise InputError(
            f"--init: '{path}' holds {meta['name']} {meta['kwargs']}, but this run builds "
            f"{built['name']} {built['kwargs']} (set --model / --size / --model-kwargs to match)"
        )
    return path


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
    anneal (ame_kpn.md eq. 8) continue. ``stop_after`` ends the process after that many steps
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
        import torch.distributed as dist

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
        from torch.nn.parallel import DistributedDataParallel

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
            )
        elif cfg.loss == "group_annealed":  # deformable_kernels.md eq. (11)
            terms = group_annealed_loss(
                output.image, output.frames, clean, step, eta=cfg.beta, gamma=cfg.alpha
            )
        else:  # dcn_lka.md eq. (7) on sRGB values, or gamma L1 (eq. 9)
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
        import torch.distributed as dist

        dist.barrier()
    return log


def plot_metrics(run: Path) -> Path | None:
    """``loss.png``: training loss (and its basic term) and validation PSNR per step."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return None
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in rows]
    if "basic" in rows[0]:  # burst task
        a.semilogy(steps, [r["loss"] for r in rows], label="total (eq. 8)", lw=0.8)
        a.semilogy(steps, [r["basic"] for r in rows], label="basic (eq. 7)", lw=0.8)
    elif "groups" in rows[0]:  # video task, deformable_kernels.md
        a.semilogy(steps, [r["loss"] for r in rows], label="total (eq. 11)", lw=0.8)
        a.semilogy(steps, [r["l1"] for r in rows], label="gamma L1 (eq. 9)", lw=0.8)
    else:  # denoise / deblur
        a.semilogy(steps, [r["mse"] for r in rows], label="MSE, sRGB (dcn_lka eq. 7)", lw=0.8)
        a.semilogy(steps, [r["l1"] for r in rows], label="L1, sRGB", lw=0.8)
    a.set_xlabel("step")
    a.set_title("training loss")
    a.legend()
    val = [r for r in rows if "val_psnr" in r]
    for key in ["val_psnr"] + [f"val_psnr_{lv}" for lv in VAL_LEVELS + VIDEO_VAL_LEVELS]:
        pts = [(r["step"], r[key]) for r in val if key in r]
        if pts:
            b.plot(
                *zip(*pts, strict=True),
                marker="o",
                ms=3,
                label=key.replace("val_psnr_", "").replace("val_psnr", "mean"),
            )
    b.set_xlabel("step")
    b.set_ylabel("PSNR (dB)")
    b.set_title("validation")
    if val:
        b.legend()
    fig.tight_layout()
    tmp = run / ".loss.png.tmp.png"
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, run / "loss.png")
    return run / "loss.png"


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
    from burstkpn.data.testsets.burst import DEFAULT_LEVELS

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
    from burstkpn.data.testsets.burst import FORMAT

    manifest = Path(testset) / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def _evaluate_restoration(model, task: str, testset, limit, progress: bool) -> dict:
    """Mean PSNR / SSIM of a single-image model and of its degraded input on a deblur test set
    (a folder with manifest.json) or a folder of real pairs (``bench restore``)."""
    from burstkpn.bench.restore import degraded, evaluate_restore, model_restore_method

    key = "testset" if (Path(testset) / "manifest.json").is_file() else "pairs"
    result = evaluate_restore(
        task,
        {"model": model_restore_method(model), "input": degraded},
        **{key: testset},
        limit=limit,
        progress=progress,
    )
    mean = {}
    for method in ("model", "input"):
        rows = [r for r in result["rows"] if r["method"] == method]
        for metric in ("psnr", "ssim"):
            value = sum(r[metric] for r in rows) / len(rows)
            mean[metric if method == "model" else f"{method}_{metric}"] = round(value, 4)
    option = "--testset" if key == "testset" else "--pairs"
    return {
        "testset": str(testset),
        "pairs": result["bursts"],
        "command": f"burstkpn bench restore --task {task} {option} {testset}"
        + (f" --limit {limit}" if limit else ""),
        **mean,
    }


def _evaluate_video(model, testset, limit, progress: bool) -> dict:
    """Mean PSNR / SSIM per level of a clip model and of the noisy centre frame on a video
    test set (``bench video``)."""
    from burstkpn.bench.methods import model_method, reference
    from burstkpn.bench.video import evaluate_video

    methods = {"model": model_method(model), "reference": reference}
    result = evaluate_video(
        testset, list(methods), limit=limit, progress=progress, resolved=(methods, {})
    )
    per_level = {}
    for level in result["levels"]:
        rows = [r for r in result["rows"] if r["level"] == level]
        mine = [r for r in rows if r["method"] == "model"]
        ref = [r["psnr"] for r in rows if r["method"] == "reference"]
        per_level[level] = {
            "psnr": round(sum(r["psnr"] for r in mine) / len(mine), 4),
            "ssim": round(sum(r["ssim"] for r in mine) / len(mine), 4),
            "reference_psnr": round(sum(ref) / len(ref), 4),
        }
    return {
        "testset": str(testset),
        "windows": result["windows"],
        "command": f"burstkpn bench video --testset {testset}"
        + (f" --limit {limit}" if limit else ""),
        "per_level": per_level,
    }


def export_weights(
    run: str | os.PathLike,
    name: str,
    out_dir: str | os.PathLike,
    *,
    testset: str | os.PathLike | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Copy a run's ``last`` checkpoint to ``out_dir/NAME.safetensors`` with a JSON card beside
    it: training command, data, steps, wall time, last validation, and (with ``testset``) PSNR /
    SSIM per noise level next to the noisy reference's; for denoise / deblur runs ``testset``
    is a deblur test set or a folder of real pairs, scored next to the degraded input."""
    run = Path(run)
    cfg = read_config(run)
    model = load_model(run / "last.safetensors")
    step = trained_steps(model.card) or 0  # the checkpoint's step (logs may run past it)
    averaged = cfg.ema_decay > 0 and load_ema(run / "last.safetensors", model)
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
        from burstkpn.bench.methods import model_method, reference
        from burstkpn.bench.quality import select_entries
        from burstkpn.data.testsets.burst import TestSet
        from burstkpn.metrics import ssim

        ts = TestSet(testset)
        fn = model_method(model)
        per: dict[str, dict[str, list[float]]] = {}
        entries = select_entries(ts, limit)
        for entry in tqdm(entries, desc=f"evaluate {name}", disable=not progress):
            item = ts.load(entry)
            out = fn(item)
            d = per.setdefault(entry["level"], {"psnr": [], "ssim": [], "reference_psnr": []})
            d["psnr"].append(float(psnr(out, item.clean)[0]))
            d["ssim"].append(float(ssim(out, item.clean)[0]))
            d["reference_psnr"].append(float(psnr(reference(item), item.clean)[0]))
        card["evaluation"] = {
            "testset": str(testset),
            "bursts": len(entries),
            "command": f"burstkpn make-testset {Path(ts.manifest['bursts'][0]['source']).parent}"
            f" --out DIR {_testset_options(ts.manifest['generator'])}"
            + (f"; first {limit} images" if limit else ""),
            "per_level": {
                lv: {k: round(sum(v) / len(v), 4) for k, v in d.items()} for lv, d in per.items()
            },
        }
    out = Path(out_dir)
    save_model(model, out / f"{name}.safetensors", **card)
    atomic_write_bytes(out / f"{name}.json", (json.dumps(card, indent=1) + "\n").encode())
    return card
