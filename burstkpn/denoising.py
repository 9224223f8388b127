"""The main job: denoise a real burst of photos with a shipped (or any) model.

``denoise(frames, model="ame_kpn", noise="auto")`` takes image files / a folder / an array
stack, works in linear light (inputs are sRGB-encoded unless ``linear=True``), estimates the
noise (:mod:`burstkpn.data.degrade.estimate`) unless it is given, pre-aligns the frames globally
when they moved more than the kernels reach (:mod:`burstkpn.ops.align`; by whole pixels always for
models that declare ``prealign``), runs the model tile by tile
in bounded memory (:func:`burstkpn.inference.tiling.tiled_forward`) and returns the image encoded
back.

Burst length: the models are built for 8 frames. Longer bursts use the reference and the 7
frames after it; shorter ones (at least 2 frames) repeat their frames cyclically to fill 8
slots (a repeated frame adds no information but keeps the input distribution the model knows).

Clip models (``deform3d``, :func:`burstkpn.restoration.is_video_model`) read the frames as a
video in temporal order: the reference and its ``tau`` neighbours on each side
(:func:`burstkpn.models.deformable.video_window`, mirrored at the ends), centre first. They
sample across motion themselves, so ``align="auto"`` shifts frames only when the global motion
exceeds their offset limit (``max_offset``, 8 px), not the 2 px of rigid 5x5 kernels.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from burstkpn.data.degrade.estimate import (
    BurstNoiseEstimate,
    ImageNoiseEstimate,
    estimate_burst_noise,
    estimate_or_floor,
)
from burstkpn.data.degrade.noise import estimate_noise_map, parse_noise
from burstkpn.data.io.files import publish
from burstkpn.data.io.images import (
    image_size,
    image_to_tensor,
    linear_to_srgb,
    list_images,
    read_image,
    srgb_to_linear,
    write_image,
)
from burstkpn.errors import BurstkpnWarning, InputError
from burstkpn.inference.resolve import resolve_model
from burstkpn.inference.runner import DEFAULT_TILE, Runner, runner_for
from burstkpn.models.deformable import video_window
from burstkpn.ops.align import apply_shifts, estimate_shifts, shift_whole_pixels
from burstkpn.profiling import stage
from burstkpn.restoration import restore_image

ALIGN_THRESHOLD = 2.0  # px: global motion above this is removed before the model


@dataclass
class DenoiseResult:
    """``image``: ``(C, H, W)`` float in [0, 1], encoded like the input (sRGB unless linear);
    ``sigma_r`` / ``sigma_s``: the noise used (with ``--noise auto``, the channel-pooled level
    measured; ``noise_source`` says how); ``shifts``: the global alignment applied."""

    image: torch.Tensor
    sigma_r: float
    sigma_s: float
    shifts: np.ndarray
    bit_depth: int
    noise_source: str = "given"  # "burst" (temporal), "image" (spatial) or "given"
    noise_estimate: BurstNoiseEstimate | ImageNoiseEstimate | None = None  # when measured


def load_frames(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
) -> tuple[torch.Tensor, int]:
    """Image files or a folder -> ``(N, C, H, W)`` float in [0, 1] (as stored) and the bit
    depth (8 or 16). One-line errors for missing / unreadable files, mixed sizes or channels, and
    single frames."""
    refs = list_images(list(inputs) if isinstance(inputs, (list, tuple)) else inputs)
    if len(refs) < 2:
        raise InputError(f"a burst needs at least 2 frames, got {len(refs)} ({refs[0]})")
    check_frame_sizes(refs)
    # frames decode in parallel (Pillow, tifffile and torch's copies release the GIL)
    with ThreadPoolExecutor(max(1, min(len(refs), torch.get_num_threads()))) as pool:
        arrays = list(pool.map(read_image, refs))
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
            frames[i].copy_(image_to_tensor(arrays[i], permuted=True))
            arrays[i] = None  # type: ignore[call-overload]  # free the decoded frame

        list(pool.map(convert, range(len(arrays))))
    return frames, bits


def check_frame_sizes(refs: Sequence[str]) -> None:
    """Compare the frames' sizes from their headers, before any is decoded (and refuse any
    over :data:`~burstkpn.data.io.images.MAX_PIXELS`); files whose header is not read (camera
    raw) are compared after decoding."""
    sizes = [(ref, image_size(ref)) for ref in refs]
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
    flat = burst.flatten(1)
    return bool((flat.amax(1) == flat.amin(1)).all())


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
) -> DenoiseResult:
    """Denoise ``frames`` ``(N, C, H, W)`` in [0, 1] (sRGB-encoded unless ``linear``) with
    ``model`` (a network, or a :class:`~burstkpn.inference.Runner` already prepared for a
    device and precision; ``device`` / ``precision`` then come from it)."""

    if frames.ndim != 4 or frames.shape[0] < 2:
        raise InputError(f"expected a burst (N >= 2, C, H, W), got shape {tuple(frames.shape)}")
    with stage("input checks"):
        finite = bool(torch.isfinite(frames).all())
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
    # frame by frame, so the full-size temporaries of the conversion exist for one frame only
    if align not in ("auto", "on", "off"):
        raise InputError(f"align must be auto, on or off, got '{align}'")
    with stage("linearising"):
        burst = torch.empty((len(order), *frames.shape[1:]), dtype=torch.float32)  # used frames
        for i, k in enumerate(order):
            frame = frames[k].float()
            burst[i] = frame if linear else srgb_to_linear(frame)
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
        image = (out if linear else linear_to_srgb(out)).clamp(0, 1)
    source = (
        "given"
        if measured is None
        else "burst"
        if isinstance(measured, BurstNoiseEstimate)
        else "image"
    )
    return DenoiseResult(image, float(sigma_r), float(sigma_s), shifts, 8, source, measured)


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
    result = denoise_burst(burst, resolve_model(model), noise=noise, **kwargs)
    return result.image.permute(1, 2, 0).numpy()


# --------------------------------------------------------------------------- video
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")


def _open_video(path: str | os.PathLike):
    try:
        import av
    except ImportError:
        raise InputError("video needs PyAV: pip install 'burstkpn[video]'") from None
    if not os.path.isfile(path):
        raise InputError(f"no such video file: '{path}'")
    try:
        container = av.open(str(path))
        stream = container.streams.video[0]
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise InputError(f"cannot read video '{path}': {exc}") from None
    return container, stream


def video_bits(stream) -> int:
    """A video stream's bit depth for us: 16 when it stores more than 8 bits per sample
    (10-bit HEVC, 16-bit FFV1, ...), else 8."""
    fmt = stream.codec_context.format
    return 16 if fmt is not None and max(c.bits for c in fmt.components) > 8 else 8


def iter_video(path: str | os.PathLike):
    """Decode a video frame by frame: yields ``(C, H, W)`` float tensors in [0, 1] (sRGB),
    decoded at 16 bits per sample when the stream has more than 8 (:func:`video_bits`)."""
    import av

    container, stream = _open_video(path)
    fmt, scale = ("rgb48le", 65535.0) if video_bits(stream) == 16 else ("rgb24", 255.0)
    try:
        for frame in container.decode(stream):
            arr = frame.to_ndarray(format=fmt).astype(np.float32)
            yield torch.from_numpy(arr).permute(2, 0, 1) / scale
    except av.error.FFmpegError as exc:
        raise InputError(f"cannot decode video '{path}': {exc}") from None
    finally:
        container.close()


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


FRAME_NAME = "frame_{:06d}.png"  # the files a folder output gets, nothing else
LOSSLESS_VIDEO = (".mkv", ".avi")  # written with FFV1, which holds 8 or 16 bits per sample


def sequence_bits(out: str | os.PathLike, bits: int | None, input_bits: int = 8) -> int:
    """The bit depth a video / frame-folder output ``out`` is written at: ``bits`` when given,
    else the input's. 16 bits go into PNG frames or a lossless FFV1 video (.mkv, .avi); other
    video files (H.264) hold 8, so a 16-bit input falls back to 8 there and an explicit
    ``bits=16`` is a one-line :class:`InputError`."""
    suffix = Path(out).suffix.lower()
    deep = suffix not in VIDEO_EXTENSIONS or suffix in LOSSLESS_VIDEO
    if bits is None:
        return input_bits if deep else 8
    if bits not in (8, 16):
        raise InputError(f"bit depth must be 8 or 16, got {bits}")
    if bits == 16 and not deep:
        raise InputError(
            f"'{out}' is an 8-bit video; --bits 16 needs a lossless .mkv / .avi or a folder"
        )
    return bits


class _VideoWriter:
    """Lossless FFV1 (.mkv / .avi; 8 or 16 bits per sample) or high-quality 8-bit H.264
    (.mp4 / .mov, CRF 12) at the input frame rate, written to a hidden temporary file beside
    ``out`` and published at the end; or a folder of ``bits``-bit PNGs ``frame_NNNNNN.png``,
    staged in a hidden folder inside ``out`` and then published file by file. Publishing
    replaces only those names, and only with ``overwrite`` (otherwise each is created
    exclusively); nothing else in ``out`` is touched. :meth:`abort` removes the temporary file
    or staging folder (and ``out`` if this writer created it and it is still empty)."""

    def __init__(
        self,
        out: str | os.PathLike,
        fps,
        width: int,
        height: int,
        overwrite: bool = False,
        bits: int = 8,
    ) -> None:
        self.out = Path(out)
        self.overwrite = overwrite
        self.bits = sequence_bits(out, bits)
        self.count = 0
        self.container = None
        self.made_out = False
        if self.out.suffix.lower() in VIDEO_EXTENSIONS:
            import av

            fd, self.tmp = tempfile.mkstemp(
                prefix=f".{self.out.stem}.", suffix=self.out.suffix, dir=self.out.parent
            )
            os.close(fd)
            try:
                self.container = av.open(self.tmp, mode="w")
                self._add_stream(fps, width, height)
            except BaseException:
                self.abort()
                raise
        else:
            self.made_out = not self.out.exists()
            self.out.mkdir(parents=True, exist_ok=True)
            self.tmp = tempfile.mkdtemp(prefix=".burstkpn-frames.", dir=self.out)

    def _add_stream(self, fps, width: int, height: int) -> None:
        lossless = self.out.suffix.lower() in LOSSLESS_VIDEO
        rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream("ffv1" if lossless else "libx264", rate=rate)
        self.stream.width, self.stream.height = width, height
        deep = "gbrp16le" if self.bits == 16 else "bgr0"
        self.stream.pix_fmt = deep if lossless else "yuv444p"
        if not lossless:
            self.stream.options = {"crf": "12"}

    def write(self, image: torch.Tensor) -> None:
        """Add ``image`` ``(C, H, W)`` in [0, 1] as the next frame, at ``bits`` bits (grayscale
        is written as RGB)."""
        arr = image.clamp(0, 1).permute(1, 2, 0).numpy()
        if arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        if self.container is None:
            name = os.path.join(self.tmp, FRAME_NAME.format(self.count))
            write_image(name, arr, bits=self.bits)
        else:
            import av

            top, dtype = (65535, np.uint16) if self.bits == 16 else (255, np.uint8)
            q = np.ascontiguousarray(np.round(arr.astype(np.float64) * top).astype(dtype))
            frame = av.VideoFrame.from_ndarray(q, format="rgb48le" if self.bits == 16 else "rgb24")
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        self.count += 1

    def close(self) -> None:
        """Finish and publish; whatever happens, nothing temporary is left."""
        try:
            if self.container is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
                self.container.close()
                self.container = None
                publish(self.tmp, self.out, overwrite=self.overwrite)
                return
            self._publish_frames()
        finally:
            self.abort()
        _warn_stale_frames(self.out, self.count)

    def _publish_frames(self) -> None:
        done = []
        try:
            for i in range(self.count):
                name = FRAME_NAME.format(i)
                publish(os.path.join(self.tmp, name), self.out / name, overwrite=self.overwrite)
                done.append(self.out / name)
        except BaseException:
            if not self.overwrite:  # created exclusively by this run: take them back
                for path in done:
                    path.unlink(missing_ok=True)
            raise

    def abort(self) -> None:
        """Remove what this writer made and did not publish (never anything else)."""
        if self.container is not None:
            self.container.close()
            self.container = None
        if os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp)
        elif os.path.exists(self.tmp):
            os.unlink(self.tmp)
        if self.made_out and not any(self.out.iterdir()):
            self.out.rmdir()


def _warn_stale_frames(out, count: int) -> None:
    stale = [p.name for p in out.iterdir() if re.fullmatch(r"frame_\d{6}\.png", p.name)]
    stale = sorted(n for n in stale if int(n[6:12]) >= count)
    if stale:
        warnings.warn(
            f"{len(stale)} frame files of an earlier, longer run remain in '{out}' "
            f"({stale[0]} to {stale[-1]}); they were left as they are",
            BurstkpnWarning,
            stacklevel=2,
        )


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
    container, stream = _open_video(path)
    fps = stream.average_rate or 25
    total_hint = stream.frames or None
    depth = sequence_bits(out, bits, video_bits(stream))
    container.close()
    return _denoise_sequence(
        iter_video(path),
        str(path),
        out,
        model,
        fps,
        total_hint,
        noise,
        align,
        tile,
        progress,
        overwrite=overwrite,
        linear=linear,
        bits=depth,
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

    def frames():
        for ref in refs:
            arr = read_image(ref)
            if arr.shape != first:
                raise InputError(f"frames differ in size: '{refs[0]}' and '{ref}'")
            yield image_to_tensor(arr)

    name = str(inputs) if not isinstance(inputs, (list, tuple)) else refs[0]
    return _denoise_sequence(
        frames(),
        name,
        out,
        model,
        fps,
        len(refs),
        noise,
        align,
        tile,
        progress,
        overwrite=overwrite,
        linear=linear,
        bits=depth,
    )


def check_sequence_output(
    out: str | os.PathLike, sources: Sequence[str | os.PathLike], refs: Sequence[str]
) -> None:
    """Refuse a video / frame-folder output that would touch the inputs: the output named as
    an input, or (a folder output) a folder that holds input frames, or one inside a folder
    given as input (its frames would join that input next time)."""
    target = Path(out).resolve()
    folder = Path(out).suffix.lower() not in VIDEO_EXTENSIONS
    for ref in refs:
        p = Path(ref)
        if not p.exists():
            continue
        if p.resolve() == target:
            raise InputError(f"output '{out}' is one of the inputs; choose another name")
        if folder and p.resolve().parent == target:
            raise InputError(f"output folder '{out}' holds the input '{ref}'; choose another")
    for src in sources:
        p = Path(src)
        if folder and p.is_dir() and target.is_relative_to(p.resolve()):
            raise InputError(f"output folder '{out}' lies inside the input folder '{src}'")


def _denoise_sequence(
    frames,
    name: str,
    out,
    model,
    fps,
    total_hint,
    noise,
    align,
    tile,
    progress,
    *,
    overwrite: bool = False,
    linear: bool = False,
    bits: int = 8,
) -> dict:
    """Denoise each frame of ``frames`` (an iterator of ``(C, H, W)`` in [0, 1]) with the
    window around it and write it to ``out`` at ``bits`` bits (:class:`_VideoWriter`). Burst
    and clip models get :func:`denoise_burst` with ``noise`` (``"auto"``: measured on the first
    window, the estimate reused after), ``align`` and ``linear``; single-image models get
    :func:`~burstkpn.restoration.restore_image` with ``linear``. Returns the frame count, the
    frame rate, the noise used last and the bit depth written."""
    runner = runner_for(model)  # prepared once for every window
    traits = runner.traits
    tau = (traits.frames - 1) // 2
    clip_model, single = traits.kind == "clip", traits.kind == "single"
    n = traits.frames
    before, after = (n - 1) // 2, n // 2
    have: dict[int, torch.Tensor] = {}
    writer = None
    params = None if noise == "auto" else noise
    t = 0
    seen = 0  # frames decoded so far (the video's length once all are)
    used = [float("nan"), float("nan")]  # the noise used (single-image models: per frame)
    bar = tqdm(total=total_hint, desc="denoise video", unit="frame", disable=not progress)

    def emit(t: int) -> None:
        nonlocal writer, params
        if single:  # a single-image model (deform2d, dcn_lka): every frame on its own
            image = restore_image(have[t], runner, linear=linear, tile=tile)
            h, w = image.shape[-2:]
            if writer is None:
                writer = _VideoWriter(out, fps, w, h, overwrite, bits)
            writer.write(image)
            bar.update(1)
            return
        if clip_model:  # temporal order, centre at tau (no mirroring at the end before it)
            idxs, ref = _clip_window(t, seen, tau), tau
        else:
            idxs, ref = _window(t, have, n), 0
        if len(set(idxs)) < 2:
            raise InputError(f"video '{name}' has a single frame; a burst needs at least 2")
        window = torch.stack([have[i] for i in idxs])
        h, w = window.shape[-2:]
        res = denoise_burst(
            window,
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
        if writer is None:
            writer = _VideoWriter(out, fps, w, h, overwrite, bits)
        writer.write(res.image)
        bar.update(1)

    try:
        for i, frame in enumerate(frames):
            have[i] = frame
            seen = i + 1
            while t + after <= i:
                emit(t)
                t += 1
                for k in [k for k in have if k < t - before]:
                    del have[k]
        if seen == 0:
            raise InputError(f"video '{name}' has no frames")
        while t < seen:
            emit(t)
            t += 1
            for k in [k for k in have if k < t - before]:
                del have[k]
    except BaseException:
        if writer is not None:  # leave nothing half-written behind
            writer.abort()
        raise
    finally:
        bar.close()
    writer.close()
    sigma_r, sigma_s = used
    return {"frames": seen, "fps": float(fps), "sigma_r": sigma_r, "sigma_s": sigma_s, "bits": bits}
