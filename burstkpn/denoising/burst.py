"""A burst of photos into one image: :func:`denoise_burst` on frames in memory, :func:`denoise`
(``burstkpn.denoise``) on files, folders or arrays, and :func:`load_frames` reading the files.

The frames are linearised (inputs are sRGB-encoded unless ``linear=True``), the noise is
measured (:mod:`burstkpn.data.degrade.estimate`) unless it is given, the frames are pre-aligned
globally when they moved more than the kernels reach (:mod:`burstkpn.ops.align`; by whole pixels
always for models that declare ``prealign``), the model runs tile by tile in bounded memory
(:func:`burstkpn.inference.tiling.tiled_forward`) and the image is encoded back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from burstkpn.data.degrade.estimate import (
    BurstNoiseEstimate,
    ImageNoiseEstimate,
    estimate_burst_noise,
    estimate_or_floor,
)
from burstkpn.data.degrade.noise import estimate_noise_map, parse_noise
from burstkpn.data.io import images
from burstkpn.errors import InputError
from burstkpn.inference.resolve import resolve_model
from burstkpn.inference.runner import DEFAULT_TILE, Runner, runner_for
from burstkpn.models.deformable import video_window
from burstkpn.ops.align import apply_shifts, estimate_shifts, shift_whole_pixels
from burstkpn.profiling import stage

ALIGN_THRESHOLD = 2.0  # px: global motion above this is removed before the model
LINEARISE_ROWS = 64  # rows per band of the sRGB decoding (temporaries stay in the heap)


@dataclass
class DenoiseResult:
    """``image``: ``(C, H, W)`` float in [0, 1], encoded like the input (sRGB unless linear);
    ``sigma_r`` / ``sigma_s``: the noise used (with ``--noise auto``, the channel-pooled level
    measured; ``noise_source`` says how); ``shifts``: the global alignment applied;
    ``frames_used``: how many of the given frames the model read (the first ``N`` of a longer
    burst, a clip model's window, the reference alone for a single-image model)."""

    image: torch.Tensor
    sigma_r: float
    sigma_s: float
    shifts: np.ndarray
    bit_depth: int
    noise_source: str = "given"  # "burst" (temporal), "image" (spatial) or "given"
    noise_estimate: BurstNoiseEstimate | ImageNoiseEstimate | None = None  # when measured
    frames_used: int = 0


def load_frames(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
) -> tuple[torch.Tensor, int]:
    """Image files or a folder -> ``(N, C, H, W)`` float in [0, 1] (as stored) and the bit
    depth (8 or 16). One-line errors for missing / unreadable files, mixed sizes or channels, and
    single frames."""
    refs = images.list_images(list(inputs) if isinstance(inputs, (list, tuple)) else inputs)
    if len(refs) < 2:
        raise InputError(f"a burst needs at least 2 frames, got {len(refs)} ({refs[0]})")
    check_frame_sizes(refs)
    # frames decode in parallel (Pillow, tifffile and torch's copies release the GIL)
    with ThreadPoolExecutor(max(1, min(len(refs), torch.get_num_threads()))) as pool:
        arrays = list(pool.map(images.read_image, refs))
        first = arrays[0]
        for ref, arr in zip(refs, arrays, strict=True):
            if arr.shape != first.shape:
                raise InputError(
                    f"frames differ in size: '{refs[0]}' is {first.shape[1]}x{first.shape[0]}x"
                    f"{first.shape[2]}, '{ref}' is {arr.shape[1]}x{arr.shape[0]}x{arr.shape[2]}"
                )
        bits = 16 if any(a.dtype == np.uint16 for a in arrays) else 8
        h, w, c = first.shape
        frames = torch.empty((len(arrays), c, h, w), dtype=torch.float32)

        def convert(i: int) -> None:  # one pass per frame into its slot: no stacked copy
            frames[i].copy_(images.image_to_tensor(arrays[i], permuted=True))
            arrays[i] = None  # type: ignore[call-overload]  # free the decoded frame

        list(pool.map(convert, range(len(arrays))))
    return frames, bits


def check_frame_sizes(refs: Sequence[str]) -> None:
    """Compare the frames' sizes from their headers, before any is decoded (and refuse any
    over :data:`~burstkpn.data.io.images.MAX_PIXELS`); files whose header is not read (camera
    raw) are compared after decoding."""
    sizes = [(ref, images.image_size(ref)) for ref in refs]
    known = [(ref, size) for ref, size in sizes if size is not None]
    for ref, size in known[1:]:
        (first, (h0, w0)), (h, w) = known[0], size
        if (h, w) != (h0, w0):
            raise InputError(f"frames differ in size: '{first}' is {w0}x{h0}, '{ref}' is {w}x{h}")


def check_tile(tile: int) -> None:
    """``tile``: a core size in px, or 0 for the whole image at once."""
    if tile < 0:
        raise InputError(f"--tile must be 0 (the whole image) or a size in px, got {tile}")


def _flat(burst: torch.Tensor) -> bool:
    """Whether every frame of ``burst`` is one constant value (all black, all white)."""
    low, high = torch.aminmax(burst.flatten(1), dim=1)
    return bool((low == high).all())


@torch.no_grad()
def denoise_burst(
    frames: torch.Tensor,
    model: torch.nn.Module | Runner,
    *,
    noise: str | tuple[float, float] = "auto",
    reference: int = 0,
    align: str = "auto",
    linear: bool = False,
    tile: int = DEFAULT_TILE,
    precision: str = "auto",
    device: str | torch.device = "cpu",
    progress: bool = False,
    inplace: bool = False,
) -> DenoiseResult:
    """Denoise ``frames`` ``(N, C, H, W)`` in [0, 1] (sRGB-encoded unless ``linear``) with
    ``model`` (a network, or a :class:`~burstkpn.inference.Runner` already prepared for a
    device and precision; ``device`` / ``precision`` then come from it). ``inplace``: the
    caller gives up ``frames`` (float32), which then hold the linearised, aligned burst, so
    that a large burst is not held twice (a 12 MP colour burst: 1.1 GiB less at the peak)."""

    if frames.ndim != 4 or frames.shape[0] < 2:
        raise InputError(f"expected a burst (N >= 2, C, H, W), got shape {tuple(frames.shape)}")
    with stage("input checks"):  # NaN propagates into the extremes, Inf is one of them
        finite = bool(torch.isfinite(torch.stack(torch.aminmax(frames))).all())
    if not finite:
        raise InputError("the burst contains NaN or Inf values")
    if not 0 <= reference < frames.shape[0]:
        raise InputError(
            f"--reference {reference} is outside the burst of {frames.shape[0]} frames"
        )
    check_tile(tile)
    runner = runner_for(model, device=device, precision=precision)
    traits = runner.traits
    clip_model = traits.kind == "clip"
    if clip_model:  # a video in temporal order: the window around the reference, centre first
        order = video_window(reference, frames.shape[0], (traits.frames - 1) // 2)
    else:
        order = [reference] + [i for i in range(frames.shape[0]) if i != reference]
    # distinct frames the model reads: a clip's window repeats frames where it mirrors
    used = runner.frames_read(len(set(order)))
    if align not in ("auto", "on", "off"):
        raise InputError(f"align must be auto, on or off, got '{align}'")
    with stage("linearising"):
        if inplace and frames.dtype == torch.float32 and order == list(range(len(frames))):
            burst = frames  # the caller's memory becomes the burst
        else:
            burst = torch.empty((len(order), *frames.shape[1:]), dtype=torch.float32)
        for i, k in enumerate(order):
            if not linear:
                # in bands of rows: temporaries of a few MiB, which the heap keeps and hands
                # to the next band, instead of full-frame ones that are page-faulted in anew
                # for every frame (12 MP colour burst, AMD Zen 3: 560 k faults; profile.md)
                bands = frames[k].split(LINEARISE_ROWS, -2)
                for src, dst in zip(bands, burst[i].split(LINEARISE_ROWS, -2), strict=True):
                    dst.copy_(images.srgb_to_linear(src.float()))
            elif burst is not frames:
                burst[i] = frames[k]
        del frames  # with ``inplace`` (the caller holding no other reference) this frees it
        flat = _flat(burst)  # a flat burst has nothing to align or measure
    est = None
    if not flat and (align != "off" or (str(noise) == "auto" and burst.shape[0] >= 3)):
        with stage("shift estimation"):
            est = estimate_shifts(burst)
    measured = None
    if isinstance(noise, BurstNoiseEstimate | ImageNoiseEstimate):  # measured before
        measured = noise
        sigma_r, sigma_s = measured.sigma_r, measured.sigma_s
    elif noise == "auto":
        with stage("noise estimation"):
            measured = _auto_noise(burst, est, flat)
        sigma_r, sigma_s = measured.sigma_r, measured.sigma_s
    else:
        level = parse_noise(noise) if isinstance(noise, str) else None
        sigma_r, sigma_s = (level.sigma_r, level.sigma_s) if level else noise
    shifts = np.zeros((burst.shape[0], 2))
    if align != "off" and est is not None and traits.prealign:
        # the network reads frames moved by whole pixels, whatever the motion (its training)
        shifts = np.rint(est)
        with stage("shifting"):
            burst = shift_whole_pixels(burst, shifts, inplace=True)
    elif align != "off" and est is not None:
        threshold = None
        if clip_model:  # clip models leave motion within their reach unaligned
            threshold = ALIGN_THRESHOLD if traits.max_offset is None else traits.max_offset
        if align == "on" or np.abs(est).max() > (
            ALIGN_THRESHOLD if threshold is None else threshold
        ):
            shifts = est
            with stage("shifting"):
                burst = apply_shifts(burst, shifts, inplace=True)
    with stage("noise map"):
        burst = runner.frames_for(burst[None])  # (1, N, C, H, W)
        if isinstance(measured, BurstNoiseEstimate):  # per-channel levels from the burst
            nmap = measured.noise_map(burst[0, 0])[None]
        else:
            nmap = estimate_noise_map(burst[:, 0], sigma_r, sigma_s)
    with stage("network"):
        out = runner(burst, nmap, tile=tile, progress=progress, aligned=True)[0]
    with stage("sRGB encoding"):
        image = (out if linear else images.linear_to_srgb(out)).clamp(0, 1)
    source = (
        "given"
        if measured is None
        else "burst"
        if isinstance(measured, BurstNoiseEstimate)
        else "image"
    )
    return DenoiseResult(
        image, float(sigma_r), float(sigma_s), shifts, 8, source, measured, frames_used=used
    )


def _auto_noise(
    burst: torch.Tensor, shifts: np.ndarray | None, flat: bool
) -> BurstNoiseEstimate | ImageNoiseEstimate:
    """``--noise auto``: measured from the burst's temporal differences (issue 23) for 3 frames
    or more, else (or where that cannot measure: too much motion, too small an overlap) from
    the frames' spatial statistics (:func:`estimate_or_floor`)."""
    if burst.shape[0] >= 3 and not flat and shifts is not None:
        try:
            return estimate_burst_noise(burst, shifts)
        except InputError:
            pass
    return ImageNoiseEstimate(*estimate_or_floor(burst))


def denoise(
    frames,
    model: str | torch.nn.Module = "ame_kpn",
    noise: str | tuple[float, float] = "auto",
    **kwargs,
) -> np.ndarray:
    """Python API: ``frames`` (a folder, a list of image files, or an array ``(N, H, W, C)`` in
    [0, 1]) -> the denoised reference as an ``(H, W, C)`` float array in [0, 1], encoded like
    the input. ``model``: a shipped name, a checkpoint path or a model."""

    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise InputError(f"expected frames (N, H, W, C), got shape {frames.shape}")
        burst = torch.from_numpy(frames.astype(np.float32)).permute(0, 3, 1, 2)
    elif isinstance(frames, torch.Tensor):
        burst = frames.float()
    else:
        burst, _ = load_frames(frames)
    if not isinstance(frames, torch.Tensor):  # ``burst`` is this function's own copy
        kwargs.setdefault("inplace", True)
    result = denoise_burst(burst, resolve_model(model), noise=noise, **kwargs)
    return result.image.permute(1, 2, 0).numpy()
