"""The data of a training run: the training dataset (item ``i`` is the run's ``i``-th sample,
from its own seeded generator), the sampler that gives each step (and each DDP rank) its
indices, the fixed validation set, and background prefetching."""

from __future__ import annotations

import dataclasses
import queue
import threading

import torch
from torch.utils.data import Dataset, Sampler

from burstkpn.data.datasets import (
    PairedImageDataset,
    SyntheticBlurPairs,
    SyntheticBurstDataset,
    SyntheticClipDataset,
    SyntheticNoisyPairs,
)
from burstkpn.data.degrade.noise import add_noise, estimate_noise_map, parse_noise
from burstkpn.data.degrade.synth import (
    ALIGNED_MOTION,
    DEFAULT_MOTION,
    MotionConfig,
    synthesize_burst,
)
from burstkpn.data.degrade.video import burst_order, synthesize_clip
from burstkpn.data.io.images import list_images, load_linear
from burstkpn.data.sampling import match_channels
from burstkpn.models.traits import traits_from_config
from burstkpn.ops.align import align_whole_pixels
from burstkpn.train.config import TrainConfig

VAL_LEVELS = ("gain1", "gain2", "gain3", "gain4")
VIDEO_VAL_LEVELS = ("low", "high")  # [DeformKernels] Tables 2-3


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


def prealigned(cfg: TrainConfig) -> bool:
    """Whether the run's model reads globally aligned bursts (its ``prealign`` trait)."""
    return traits_from_config(cfg.model, {"size": cfg.size, **cfg.model_kwargs}).prealign


def burst_motion(cfg: TrainConfig) -> MotionConfig:
    """The misalignment of the training bursts: the paper's, or for a ``prealign`` model what
    the whole-pixel alignment before it leaves (:data:`~burstkpn.data.degrade.synth.
    ALIGNED_MOTION`), with ``large_motion_lambda`` replacing the rate of far-off neighbours
    where set, ``local_motion_prob`` adding moving objects and ``static_burst_prob`` static
    bursts."""
    motion = ALIGNED_MOTION if prealigned(cfg) else DEFAULT_MOTION
    if cfg.large_motion_lambda is not None:
        motion = dataclasses.replace(motion, poisson_lambda=float(cfg.large_motion_lambda))
    if cfg.local_motion_prob > 0:
        motion = dataclasses.replace(motion, local_prob=float(cfg.local_motion_prob))
    if cfg.static_burst_prob > 0:
        motion = dataclasses.replace(motion, static_prob=float(cfg.static_burst_prob))
    return motion


def make_train_dataset(cfg: TrainConfig) -> Dataset:
    """Item ``i`` is the ``i``-th sample of the run (step s uses ``[s * batch, (s + 1) *
    batch)``), each drawn from its own seeded generator."""
    length = max(cfg.steps, 1) * cfg.batch_size
    if cfg.task == "video":
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
        if cfg.layout != "photos":
            return PairedImageDataset(
                cfg.data,
                layout=cfg.layout,
                patch_size=cfg.patch_size,
                length=length,
                seed=cfg.seed,
                channels=3,
            )
        return _synthetic_pairs(
            cfg, cfg.data, cfg.patch_size, length, cfg.seed, augment=True, channels=cfg.channels
        )
    return SyntheticBurstDataset(
        cfg.data,
        patch_size=cfg.patch_size,
        num_frames=cfg.num_frames,
        length=max(cfg.steps, 1) * cfg.batch_size,
        seed=cfg.seed,
        channels=cfg.channels,
        motion=burst_motion(cfg),
        **_noise_ranges(cfg),
        exposure_range=None
        if cfg.exposure_range is None
        else tuple(float(v) for v in cfg.exposure_range),
        camera_fraction=float(cfg.camera_fraction),
        camera_jpeg=None if cfg.camera_jpeg is None else tuple(int(q) for q in cfg.camera_jpeg),
        camera_noise_scale=float(cfg.camera_noise_scale),
        prefilter=float(cfg.burst_prefilter),
        color_gains=None if cfg.color_gains is None else tuple(float(v) for v in cfg.color_gains),
        channel_shuffle=bool(cfg.channel_shuffle),
    )


def _synthetic_pairs(
    cfg: TrainConfig,
    source,
    patch: int,
    length: int,
    seed: int,
    *,
    augment: bool,
    channels: str | int,
) -> Dataset:
    """Synthetic noisy / clean (denoise) or blurry / sharp (deblur) pairs from clean photos."""
    common = {"patch_size": patch, "length": length, "seed": seed, "channels": channels}
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
    the training data, scored as one PSNR. Bursts have the paper's misalignment; a
    ``prealign`` model gets them aligned by whole pixels, as the runner feeds it."""
    if cfg.task in ("denoise", "deblur"):
        pairs = _synthetic_pairs(
            cfg, cfg.val_data, cfg.val_patch, cfg.val_bursts, 10_000, augment=False, channels=3
        )  # RGB whatever the training pairs, so runs compare
        return [{"level": None, **pairs[i]} for i in range(cfg.val_bursts)]
    if cfg.task == "video":
        return _video_val_set(cfg)
    refs = list_images(cfg.val_data)
    images = [match_channels(load_linear(r), 3) for r in refs]
    align = prealigned(cfg)
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
        # the paper's misalignment whatever the model, so the curve of a run that switches
        # to ``prealign`` stays on the same bursts; a prealign model reads them aligned, as the
        # runner feeds it
        noisy = align_whole_pixels(burst.noisy)[0] if align else burst.noisy
        out.append(
            {
                "level": level,
                "noisy": noisy,
                "noise_map": burst.noise_map,
                "clean": burst.clean,
            }
        )
    return out


def _video_val_set(cfg: TrainConfig) -> list[dict]:
    """``val_bursts`` fixed clips with synthetic motion from the validation photos, cycling
    through the paper's Low / High levels ([DeformKernels] Tables 2-3)."""
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
