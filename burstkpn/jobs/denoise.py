"""``burstkpn denoise`` and ``burstkpn deblur`` as file-to-file jobs: :func:`denoise_path`
picks the job from the inputs and the output (a video file, frame files into a video or a frame
folder, a burst into one image, one image through a single-image model) and the model kind;
:func:`deblur_path` restores one image.

The denoising functions and the model resolution are called through their modules
(``denoising.denoise_burst``, ``resolve.resolve_model``), so that replacing one of them (a
test's monkeypatch) applies here too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from burstkpn import denoising, restoration
from burstkpn.data.io.images import list_images, write_image
from burstkpn.data.io.raw import RAW_EXTENSIONS
from burstkpn.denoising import VIDEO_EXTENSIONS, is_video_file
from burstkpn.errors import InputError
from burstkpn.export import OnnxModel, require
from burstkpn.inference import Runner, resolve
from burstkpn.jobs.outputs import check_output, check_sequence_target, refuse_linear_raw
from burstkpn.models import factory
from burstkpn.profiling import Profile, profiling, stage

REAL_MODEL = "ame_kpn_real"  # fine-tuned on camera-pipeline noise (issue 23)
LINEAR_MODEL = "ame_kpn"  # trained on independent noise in linear light


@dataclass
class JobResult:
    """What a denoise / deblur job did. ``kind``: ``"burst"`` (a burst into one image),
    ``"image"`` (one image through a single-image model), ``"frames"`` (frame files into a
    video or a frame folder) or ``"video"`` (a video file); ``model`` is the name or path the
    job used, ``seconds`` the time of the denoising (and writing). The other fields are those
    the kind has: ``source``, ``width``, ``height`` of the image (``"image"``); the noise
    (``sigma_r``, ``sigma_s``; ``noise_source`` and ``max_shift`` of a burst, in px), ``bits``
    and ``fps`` (``"video"``) of the others. ``profile`` (a burst with ``profile=True``) holds
    the stage times and ``profile_info`` what was profiled (frames, size, tile, threads);
    ``frames_used`` (a burst): how many of its ``frames`` the model read."""

    kind: str
    model: str
    output: Path
    seconds: float
    frames: int = 1
    source: str = ""
    width: int = 0
    height: int = 0
    bits: int = 8
    fps: float = 0.0
    sigma_r: float = 0.0
    sigma_s: float = 0.0
    noise_source: str = ""
    max_shift: float = 0.0
    frames_used: int = 0
    profile: Profile | None = None
    profile_info: dict = field(default_factory=dict)


def default_denoise_model(inputs: Sequence[str], *, linear: bool) -> str:
    """The model ``denoise`` uses without ``--model``: developed images and videos (JPEG,
    PNG, TIFF, video files, whose noise went through a camera's demosaicing, colour
    correction, tone curve, sharpening and compression) get :data:`REAL_MODEL`; linear data
    (``--linear``) and raw files (developed here linearly, without tone curve, sharpening or
    compression: :mod:`burstkpn.data.io.raw`) keep :data:`LINEAR_MODEL`, as does everything
    while no weights of ``REAL_MODEL`` are shipped."""

    def raw(path: str) -> bool:
        p = Path(path)
        if p.is_dir():
            return any(f.suffix.lower() in RAW_EXTENSIONS for f in p.iterdir())
        return p.suffix.lower() in RAW_EXTENSIONS

    if linear or any(raw(i) for i in inputs):
        return LINEAR_MODEL
    if (factory.weights_dir() / f"{REAL_MODEL}.safetensors").exists():
        return REAL_MODEL
    return LINEAR_MODEL


def check_backend(backend: str, inputs: Sequence[str], out: Path) -> None:
    """``onnxruntime``: a burst to one image (videos and frame folders run on torch), with
    onnxruntime and onnx (for the export) installed; checked before any work."""
    if backend == "torch":
        return
    if _video_input(inputs) or _sequence_output(out):
        raise InputError(
            "--backend onnxruntime denoises a burst into one image; videos and frame folders "
            "run on torch"
        )
    require("onnxruntime")
    require("onnx")


def _video_input(inputs: Sequence[str]) -> bool:
    return len(inputs) == 1 and is_video_file(inputs[0])


def _sequence_output(out: Path) -> bool:
    """A video file or (no extension) a folder of frames."""
    return is_video_file(out) or not out.suffix


def denoise_path(
    inputs: Sequence[str],
    output: str | Path,
    *,
    model: str | None = None,
    noise: str = "auto",
    reference: int = 0,
    align: str = "auto",
    linear: bool = False,
    tile: int = 512,
    backend: str = "torch",
    bits: int | None = None,
    fps: float = 25.0,
    force: bool = False,
    progress: bool = True,
    profile: bool = False,
    device: str = "cpu",
) -> JobResult:
    """``burstkpn denoise``: ``inputs`` (a folder of frames, frame files or one video file)
    denoised into ``output``. A video file, or frame files into a video file / a folder (no
    extension), is denoised frame by frame with the window around each; frame files into one
    image are a burst (``reference`` its reference frame), or one image for a single-image
    model. ``model`` (default :func:`default_denoise_model`) is a shipped name or a
    checkpoint; ``backend="onnxruntime"`` runs a burst model exported to ONNX (float32);
    ``bits`` (default: the input's) the output depth; ``profile`` times each stage of a burst
    denoised into one image; ``device``: where the network runs (``cpu``, or ``cuda`` where
    present)."""
    out = Path(output)
    denoising.check_tile(tile)
    check_backend(backend, inputs, out)
    if profile and (_sequence_output(out) or _video_input(inputs)):
        raise InputError("--profile times a burst denoised into one image, not a video")
    if model is None:
        model = default_denoise_model(inputs, linear=linear)
    options = dict(noise=noise, align=align, linear=linear, tile=tile, bits=bits, device=device)
    if _video_input(inputs):
        return _denoise_sequence(inputs, None, out, model, fps, force, progress, **options)
    files = list_images(inputs if len(inputs) > 1 else inputs[0])
    if _sequence_output(out):  # frame files -> every frame denoised
        return _denoise_sequence(inputs, files, out, model, fps, force, progress, **options)
    check_output(out, files, force)
    refuse_linear_raw(linear, files)
    denoising.check_frame_sizes(files)  # from the headers, before decoding any frame
    net = resolve.resolve_model(model, "denoise")
    precision = "auto"
    if backend == "onnxruntime":  # float32, exported once and cached
        net, precision = OnnxModel(net), "fp32"
    net = Runner(net, device=device, precision=precision)
    if net.traits.kind == "single":
        return _restore_one(files, out, net, model, linear, tile, bits, force, progress)
    with _profiled(profile) as prof:
        with stage("reading and decoding"):
            frames, in_bits = denoising.load_frames(files)
        n, c, h, w = frames.shape
        t0 = time.perf_counter()
        given = [frames]
        del frames  # handed over with ``inplace``: the burst is not held twice
        result = denoising.denoise_burst(
            given.pop(),
            net,
            noise=noise,
            reference=reference,
            align=align,
            linear=linear,
            tile=tile,
            progress=progress and not profile,
            inplace=True,
        )
        bits = _output_bits(bits, in_bits, out)
        with stage("writing"):
            image = result.image.permute(1, 2, 0).numpy()
            write_image(out, image, bits=bits, overwrite=force)
    seconds = time.perf_counter() - t0
    info = {}
    if prof is not None:
        info = dict(frames=n, height=h, width=w, channels=c, tile=tile, model=str(model))
        info["torch_threads"] = torch.get_num_threads()
    return JobResult(
        "burst",
        model,
        out,
        seconds,
        frames=len(files),
        frames_used=result.frames_used,
        bits=bits,
        sigma_r=result.sigma_r,
        sigma_s=result.sigma_s,
        noise_source=result.noise_source,
        max_shift=float(abs(result.shifts).max()) if result.shifts.size else 0.0,
        profile=prof,
        profile_info=info,
    )


def deblur_path(
    image: str,
    output: str | Path,
    *,
    model: str = "dcn_lka",
    tile: int = 512,
    bits: int | None = None,
    force: bool = False,
    progress: bool = True,
    device: str = "cpu",
) -> JobResult:
    """``burstkpn deblur``: one image through a single-image model (``dcn_lka``: its
    deblurring weights) into ``output`` (the network on ``device``)."""
    out = Path(output)
    denoising.check_tile(tile)
    inputs = list_images(image)
    if len(inputs) != 1:
        raise InputError(f"deblur takes one image, '{image}' names {len(inputs)}")
    check_output(out, inputs, force)
    net = Runner(resolve.resolve_model(model, "deblur"), device=device)
    if net.traits.kind != "single":
        raise InputError(f"'{model}' is a burst model; deblur needs a single-image model")
    return _restore_one(inputs, out, net, model, False, tile, bits, force, progress)


def _output_bits(bits: int | None, input_bits: int, out: Path) -> int:
    """``bits`` when given, else 16 for a 16-bit input (but never into a JPEG), else 8."""
    return bits or (16 if input_bits == 16 and out.suffix.lower() not in (".jpg", ".jpeg") else 8)


def _restore_one(
    inputs: Sequence[str],
    out: Path,
    net: Runner,
    model: str,
    linear: bool,
    tile: int,
    bits: int | None,
    force: bool,
    progress: bool,
) -> JobResult:
    """Denoise / deblur one image with a single-image model."""
    if len(inputs) != 1:
        raise InputError(f"'{model}' is a single-image model: give one image, got {len(inputs)}")
    image, in_bits = restoration.load_image(inputs[0])  # its size is checked from the header
    t0 = time.perf_counter()
    result = restoration.restore_image(image, net, linear=linear, tile=tile, progress=progress)
    bits = _output_bits(bits, in_bits, out)
    write_image(out, result.permute(1, 2, 0).numpy(), bits=bits, overwrite=force)
    return JobResult(
        "image",
        model,
        out,
        time.perf_counter() - t0,
        source=inputs[0],
        width=image.shape[-1],
        height=image.shape[-2],
        bits=bits,
    )


@contextlib.contextmanager
def _profiled(on: bool) -> Iterator[Profile | None]:
    """A :class:`~burstkpn.profiling.Profile` active for the block when ``on`` (else
    ``None``)."""
    if not on:
        yield None
        return
    with profiling() as prof:
        yield prof


def _denoise_sequence(
    given: Sequence[str],
    files: list[str] | None,
    out: Path,
    model: str,
    fps: float,
    force: bool,
    progress: bool,
    *,
    linear: bool,
    bits: int | None,
    device: str,
    **options,
) -> JobResult:
    """A video file (``given``, with ``files`` None) or a video stored as frame files
    (``files``), denoised frame by frame with the window around each (clip models:
    ``video_window``) into a video file or a folder of PNGs, with ``noise``, ``align`` and
    ``linear`` as for a burst; ``bits`` (default: the input's depth; 16 only into .mkv / .avi
    FFV1 or PNG frames)."""
    video = Path(given[0]) if files is None else None
    if video is not None:
        if out.resolve() == video.resolve():
            raise InputError(f"output '{out}' is the input; choose another name")
        if out.suffix and not is_video_file(out):
            raise InputError(f"video output must be {', '.join(VIDEO_EXTENSIONS)} or a folder name")
    else:
        denoising.check_sequence_output(out, given, files)
    check_sequence_target(out, force)
    denoising.sequence_bits(out, bits)
    if files is not None:
        refuse_linear_raw(linear, files)
        denoising.check_frame_sizes(files)
    net = Runner(resolve.resolve_model(model, "denoise"), device=device)
    options |= dict(linear=linear, bits=bits, progress=progress, overwrite=force)
    t0 = time.perf_counter()
    if video is not None:
        info = denoising.denoise_video(video, out, net, **options)
    else:
        info = denoising.denoise_frames(files, out, net, fps=fps, **options)
    return JobResult(
        "video" if video is not None else "frames",
        model,
        out,
        time.perf_counter() - t0,
        frames=info["frames"],
        bits=info["bits"],
        fps=info.get("fps", 0.0),
        sigma_r=info["sigma_r"],
        sigma_s=info["sigma_s"],
    )
