"""The configuration of a training run: :class:`TrainConfig` (saved as ``config.yaml`` in the
run folder, read back on ``--resume``), and :func:`resolve_task`, which fixes the task, the loss
and the data layout when a run starts."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from burstkpn.data.io.clips import find_clips, is_clip_folder
from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.data.io.images import list_images
from burstkpn.data.io.pairs import _image_files, detect_layout, find_pairs
from burstkpn.errors import InputError
from burstkpn.losses import RESTORATION_LOSSES
from burstkpn.models.traits import model_traits

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
    # one colour plane per burst (the model is per-channel); the colour variant resolves to 3
    channels: str | int = "random"
    steps: int = 10_000
    epoch_steps: int = 1_000
    lr: float = 1e-4
    lr_decay: float = 10**-0.05
    lr_min: float = 5e-6
    alpha: float = 0.9998
    beta: float = 100.0
    grad_weight: float = 1.0
    # bursts: weight of the coarse term (L1 of 4x4 block means, burstkpn/losses.py) added to
    # eq. (7); 0: the paper's loss
    coarse_weight: float = 0.0
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
    # learning-rate schedule: "step" ([AME-KPN] section 3.2: lr * lr_decay per epoch, floored at
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
    # annealed ([AME-KPN] eq. 8) for bursts, mse ([DCN-LKA] eq. 7) for denoise / deblur;
    # layout "auto": a paired folder's layout if --data holds one, else photos (synthetic pairs)
    task: str = "auto"
    loss: str = "auto"
    layout: str = "auto"
    blur_size: int = 15  # deblur, synthetic pairs: motion-blur kernel size (odd)
    blur_noise: bool = False  # deblur, synthetic pairs: add a little noise to the blurry image
    noise_correlation: list = field(default_factory=lambda: [0.0, 0.0])  # denoise, synthetic
    # synthetic noise: ranges of sigma_r and sigma_s, drawn log-uniformly; None: the training
    # ranges of [AME-KPN] section 3.1 (data/degrade/noise.py TRAIN_SIGMA_R / TRAIN_SIGMA_S)
    sigma_r_range: list | None = None
    sigma_s_range: list | None = None
    # exponential moving average of the weights (decay per step; 0: off). With it, validation,
    # best.safetensors and export-weights use the averaged weights; the raw ones keep training
    ema_decay: float = 0.0
    # bursts: scale each clean burst (linear light) by a factor drawn log-uniformly from
    # [lo, hi] before the noise, for darker scenes than the training photos; None: off
    exposure_range: list | None = None
    # bursts: the share of training bursts whose noise goes through the camera pipeline of
    # data/degrade/camera.py (raw mosaic, demosaicking, colour, tone curve, sharpening, 8 bits, JPEG
    # of a quality drawn from camera_jpeg; None: no JPEG); 0: independent noise only
    camera_fraction: float = 0.0
    camera_jpeg: list | None = field(default_factory=lambda: [70, 95])
    camera_noise_scale: float = 1 / 3  # raw noise of camera items (development amplifies ~3x)
    # bursts: Gaussian blur (sigma, px of the photo) before the full mode's 4x box, so that
    # sub-pixel neighbours are translates of the reference (data/degrade/synth.py band_limit);
    # 0: the paper's plain box
    burst_prefilter: float = 0.0
    # bursts, RGB (channels 3): recolour each clean burst before its noise, per-channel gains drawn
    # log-uniformly from [lo, hi] (None: off) and R, G, B permuted (channel_shuffle), so that a
    # model seeing the three planes at once (ame_kpn color=True) cannot learn the training
    # photos' colours as a prior (data/sampling.py recolor)
    color_gains: list | None = None
    channel_shuffle: bool = False
    # bursts: the Poisson mean of the number of neighbours cut far off (up to 16 output px,
    # frames a global alignment cannot fix: local motion, a failed estimate; [AME-KPN] section
    # 3.1 uses 1.5); None: that default
    large_motion_lambda: float | None = None
    # bursts: the probability that a neighbour shows a moving object (a region out of register
    # after the global alignment; data/degrade/synth.py MotionConfig.local_prob); 0: off
    local_motion_prob: float = 0.0
    # bursts: the probability that a training burst is static, every neighbour in register
    # (MotionConfig.static_prob); 0: off
    static_burst_prob: float = 0.0
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
        if not float(self.burst_prefilter) >= 0.0:
            raise InputError(f"burst_prefilter must be >= 0, got {self.burst_prefilter}")
        if self.large_motion_lambda is not None and not float(self.large_motion_lambda) >= 0.0:
            raise InputError(f"large_motion_lambda must be >= 0, got {self.large_motion_lambda}")
        if not 0.0 <= float(self.local_motion_prob) <= 1.0:
            raise InputError(f"local_motion_prob must be in [0, 1], got {self.local_motion_prob}")
        if not 0.0 <= float(self.static_burst_prob) <= 1.0:
            raise InputError(f"static_burst_prob must be in [0, 1], got {self.static_burst_prob}")
        if not 0.0 <= float(self.ema_decay) < 1.0:
            raise InputError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for name, rng in (
            ("sigma_r_range", self.sigma_r_range),
            ("sigma_s_range", self.sigma_s_range),
            ("exposure_range", self.exposure_range),
            ("color_gains", self.color_gains),
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
            layout = detect_layout(_image_files(Path(cfg.data))) or "photos"
    if layout == "photos":
        if cfg.data is not None:
            list_images(cfg.data)  # fail early on a bad folder
    else:
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
    channels = cfg.channels
    if task == "burst" and not traits.independent_channels:  # the colour variant: RGB bursts
        if channels not in ("random", 3):
            raise InputError(f"'{cfg.model}' with color=true trains on RGB bursts (channels: 3)")
        channels = 3
    if task != "burst" and (layout != "photos" or not traits.independent_channels):
        # paired folders are RGB, and a model mixing the planes (dcn_lka) learns from RGB pairs;
        # synthetic pairs for a per-plane model (deform2d) follow `channels` as bursts do
        if channels not in ("random", 3):
            raise InputError(f"'{cfg.model}' on {task} pairs trains on RGB (channels: 3)")
        channels = 3
    return dataclasses.replace(cfg, task=task, loss=loss, layout=layout, channels=channels)


def _resolve_video(cfg: TrainConfig, model: torch.nn.Module) -> TrainConfig:
    """The video task: clip models only; loss eq. (11) (``group_annealed``) or eq. (9)
    (``gamma_l1``); ``--data`` photos, or a clip folder (then ``clips`` with fraction 1);
    ``num_frames`` the model's clip length."""
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


def read_config(run: Path) -> TrainConfig:
    path = run / "config.yaml"
    if not path.is_file():
        raise InputError(f"'{run}' is not a run folder (no config.yaml)")
    return TrainConfig.from_dict(yaml.safe_load(path.read_text()) or {})


def write_config(run: Path, cfg: TrainConfig) -> None:
    atomic_write_bytes(run / "config.yaml", yaml.safe_dump(dataclasses.asdict(cfg)).encode())
