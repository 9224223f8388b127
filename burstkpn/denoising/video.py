"""Videos and frame sequences: every frame denoised with a sliding window of frames around it.

Burst models get the frame itself, then its nearest neighbours in time; clip models
(``deform3d``, :func:`burstkpn.restoration.is_video_model`) the ``2 tau + 1`` frames centred on
it, in temporal order (:func:`burstkpn.models.deformable.video_window`, mirrored at the ends);
single-image models each frame on its own. Frames are decoded one by one and only the window is
kept in memory; the output is published only when every frame is written
(:class:`~burstkpn.denoising.video_io.VideoWriter`).

:func:`~burstkpn.denoising.burst.denoise_burst` and :func:`_denoise_sequence` are called through
the package (``denoising.denoise_burst``), so that replacing one of them there (a test's
monkeypatch) applies here too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from tqdm.auto import tqdm

from burstkpn import denoising
from burstkpn.data.io.images import image_to_tensor, list_images, read_image
from burstkpn.denoising.burst import check_frame_sizes, check_tile
from burstkpn.denoising.video_io import (
    VideoWriter,
    check_sequence_output,
    iter_video,
    open_video,
    sequence_bits,
    video_bits,
)
from burstkpn.errors import InputError
from burstkpn.inference.runner import DEFAULT_TILE, Runner, runner_for
from burstkpn.models.deformable import video_window
from burstkpn.restoration import restore_image


@dataclass
class _Source:
    """A video to denoise: ``frames`` yields ``(C, H, W)`` in [0, 1] one by one; ``name`` is
    shown in errors, ``total`` is the frame count when known (for the progress bar) and
    ``bits`` the depth the output is written at."""

    frames: Iterator[torch.Tensor]
    name: str
    fps: float | Fraction
    total: int | None
    bits: int


def denoise_video(
    path: str | os.PathLike,
    out: str | os.PathLike,
    model: torch.nn.Module | Runner,
    *,
    noise: str | tuple[float, float] = "auto",
    align: str = "auto",
    linear: bool = False,
    tile: int = DEFAULT_TILE,
    bits: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """Denoise every frame of a video with a sliding window of the model's N frames around it
    (the frame itself, then its nearest neighbours in time; for clip models the ``2 tau + 1``
    frames centred on it, in temporal order); frames are decoded one by one and only the
    window is kept in memory. Each window goes through :func:`denoise_burst` with ``noise``,
    ``align`` and ``linear`` (frames sRGB-encoded unless ``linear``); with ``noise="auto"``
    the noise is measured once, on the first window, and that (per-channel) estimate is reused
    for every other window. ``out``: a video file or a folder for ``frame_NNNNNN.png`` files,
    written at ``bits`` bits (default: the stream's, 16 for more than 8 bits per sample; see
    :func:`sequence_bits`); ``overwrite`` replaces those names if they exist (nothing else),
    otherwise an existing one is an error."""
    check_tile(tile)
    sequence_bits(out, bits)  # an impossible depth is refused before decoding anything
    if os.path.abspath(out) == os.path.abspath(path):
        raise InputError(f"output '{out}' is the input; choose another name")
    container, stream = open_video(path)
    fps = stream.average_rate or 25
    total = stream.frames or None
    depth = sequence_bits(out, bits, video_bits(stream))
    container.close()
    video = _Source(iter_video(path), str(path), fps, total, depth)
    return denoising._denoise_sequence(
        video, out, model, noise, align, linear, tile, progress, overwrite
    )


def denoise_frames(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    model: torch.nn.Module | Runner,
    *,
    fps: float = 25.0,
    noise: str | tuple[float, float] = "auto",
    align: str = "auto",
    linear: bool = False,
    tile: int = DEFAULT_TILE,
    bits: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """:func:`denoise_video` for a video stored as image files (a folder of frames, sorted by
    name): every frame is denoised with the window around it (``noise``, ``align``,
    ``linear`` as for :func:`denoise_burst`; measured noise reused) and written to ``out``: a
    folder of PNGs, or a video file at ``fps``, at ``bits`` bits (default: 16 when the first
    frame is 16-bit, e.g. 16-bit PNG / TIFF or camera raw, else 8; see
    :func:`sequence_bits`). Frames are read one at a time; their sizes are compared from the
    headers first. An output folder that would mix with the inputs is refused
    (:func:`check_sequence_output`)."""
    check_tile(tile)
    sequence_bits(out, bits)  # an impossible depth is refused before reading anything
    sources = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    refs = list_images(sources if len(sources) > 1 else sources[0])
    if len(refs) < 2:
        raise InputError(f"a video needs at least 2 frames, got {len(refs)} ({refs[0]})")
    check_sequence_output(out, sources, refs)
    check_frame_sizes(refs)
    head = read_image(refs[0])
    first, depth = head.shape, sequence_bits(out, bits, 16 if head.dtype == np.uint16 else 8)
    del head

    def frames() -> Iterator[torch.Tensor]:
        for ref in refs:
            arr = read_image(ref)
            if arr.shape != first:
                raise InputError(f"frames differ in size: '{refs[0]}' and '{ref}'")
            yield image_to_tensor(arr)

    name = str(inputs) if not isinstance(inputs, (list, tuple)) else refs[0]
    video = _Source(frames(), name, fps, len(refs), depth)
    return denoising._denoise_sequence(
        video, out, model, noise, align, linear, tile, progress, overwrite
    )


def _clip_window(t: int, count: int, tau: int) -> list[int]:
    """Frames ``t - tau .. t + tau`` of a ``count``-frame video in temporal order, mirrored at
    its ends (:func:`~burstkpn.models.deformable.video_window`)."""
    w = video_window(t, count, tau)
    return [*w[1 : tau + 1], w[0], *w[tau + 1 :]]


def _window(t: int, have: dict, n: int) -> list[int]:
    """Reference t, then its nearest neighbours in time (t-1, t+1, t-2, ...), available ones."""
    picks = [t]
    k = 1
    while len(picks) < n and k < 4 * n:
        for idx in (t - k, t + k):
            if idx in have and len(picks) < n:
                picks.append(idx)
        k += 1
    return picks


def _denoise_sequence(
    video: _Source,
    out: str | os.PathLike,
    model: torch.nn.Module | Runner,
    noise: str | tuple[float, float],
    align: str,
    linear: bool,
    tile: int,
    progress: bool,
    overwrite: bool,
) -> dict:
    """Denoise each frame of ``video`` with the window around it and write it to ``out`` at
    ``video.bits`` bits (:class:`VideoWriter`). Burst and clip models get
    :func:`denoise_burst` with ``noise`` (``"auto"``: measured on the first window, the
    estimate reused after), ``align`` and ``linear``; single-image models get
    :func:`~burstkpn.restoration.restore_image` with ``linear``. Returns the frame count, the
    frame rate, the noise used last and the bit depth written."""
    runner = runner_for(model)  # prepared once for every window
    traits = runner.traits
    n = traits.frames
    tau, before, after = (n - 1) // 2, (n - 1) // 2, n // 2
    have: dict[int, torch.Tensor] = {}
    writer: VideoWriter | None = None
    params = None if noise == "auto" else noise
    t = 0  # the next frame to write
    seen = 0  # frames decoded so far (the video's length once all are)
    used = [float("nan"), float("nan")]  # the noise used (single-image models: per frame)
    bar = tqdm(total=video.total, desc="denoise video", unit="frame", disable=not progress)

    def restored(t: int) -> torch.Tensor:
        nonlocal params
        if traits.kind == "single":  # a single-image model (deform2d, dcn_lka): frame alone
            return restore_image(have[t], runner, linear=linear, tile=tile)
        if traits.kind == "clip":  # temporal order, centre at tau (no mirroring at the end yet)
            idxs, ref = _clip_window(t, seen, tau), tau
        else:
            idxs, ref = _window(t, have, n), 0
        if len(set(idxs)) < 2:
            raise InputError(f"video '{video.name}' has a single frame; a burst needs at least 2")
        res = denoising.denoise_burst(
            torch.stack([have[i] for i in idxs]),
            runner,
            noise=params or "auto",
            reference=ref,
            align=align,
            linear=linear,
            tile=tile,
        )
        if params is None:  # measured on the first window, per channel, reused after
            params = res.noise_estimate or (res.sigma_r, res.sigma_s)
        used[:] = [res.sigma_r, res.sigma_s]
        return res.image

    def advance() -> None:
        """Write frame ``t``, then forget the frames no later window reads."""
        nonlocal t, writer
        image = restored(t)
        if writer is None:
            h, w = image.shape[-2:]
            writer = VideoWriter(out, video.fps, w, h, overwrite, video.bits)
        writer.write(image)
        bar.update(1)
        t += 1
        for k in [k for k in have if k < t - before]:
            del have[k]

    try:
        for i, frame in enumerate(video.frames):
            have[i] = frame
            seen = i + 1
            while t + after <= i:
                advance()
        if seen == 0:
            raise InputError(f"video '{video.name}' has no frames")
        while t < seen:
            advance()
    except BaseException:
        if writer is not None:  # leave nothing half-written behind
            writer.abort()
        raise
    finally:
        bar.close()
    writer.close()
    sigma_r, sigma_s = used
    return {
        "frames": seen,
        "fps": float(video.fps),
        "sigma_r": sigma_r,
        "sigma_s": sigma_s,
        "bits": video.bits,
    }
