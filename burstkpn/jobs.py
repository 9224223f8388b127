"""File-to-file jobs: what the ``burstkpn`` commands do, as functions of paths and options.

:func:`denoise_path` picks the job from the inputs and the output (a video file, frame files
into a video or a frame folder, a burst into one image, one image through a single-image
model) and the model kind; :func:`deblur_path`, :func:`demo` and :func:`synth_burst` are the
other image jobs. Each checks its inputs and its output before any heavy work (outputs are
written atomically, never over an input and, without ``force``, never over an existing file),
raises :class:`~burstkpn.errors.InputError` with a one-line message on bad input, and returns
what it did for the caller to report; none of them prints.

The denoising and restoration functions are called through their modules
(``denoising.denoise_burst``, ``resolve.resolve_model``), so that replacing one of
them (a test's monkeypatch) applies here too.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from burstkpn import denoising, restoration
from burstkpn.data.degrade.noise import NoiseLevel, parse_noise
from burstkpn.data.degrade.synth import synthesize_burst
from burstkpn.data.io.files import (
    atomic_write_bytes,
    check_folder_writable,
    check_writable,
    prepare_output_dir,
)
from burstkpn.data.io.images import (
    IMAGE_EXTENSIONS,
    list_images,
    load_linear,
    to_display,
    write_image,
)
from burstkpn.data.io.raw import RAW_EXTENSIONS, is_raw
from burstkpn.data.sampling import match_channels
from burstkpn.data.testsets.burst import burst_npz
from burstkpn.denoising import VIDEO_EXTENSIONS
from burstkpn.errors import InputError, OutputExistsError
from burstkpn.export import OnnxModel, require
from burstkpn.inference import Runner, resolve
from burstkpn.metrics import psnr
from burstkpn.models import factory
from burstkpn.profiling import Profile, profiling, stage
from burstkpn.viz import burst_sheet, contact_sheet, label_tile

REAL_MODEL = "ame_kpn_real"  # fine-tuned on camera-pipeline noise (issue 23)
LINEAR_MODEL = "ame_kpn"  # trained on independent noise in linear light
DEMO_NAME = "burstkpn_demo.png"  # demo's default output: burstkpn_demo_2.png, ... when taken


# --------------------------------------------------------------------------- output checks
def check_output(path: Path, inputs: Sequence[str], force: bool) -> None:
    """An output image: a known extension, not an input, not existing (without ``force``)
    and writable, all checked before any work."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(f"output '{path}' must end in one of {', '.join(IMAGE_EXTENSIONS)}")
    for ref in inputs:
        if Path(ref).exists() and Path(ref).resolve() == path.resolve():
            raise InputError(f"output '{path}' is one of the inputs; choose another name")
    if path.exists() and not path.is_dir() and not force:
        raise InputError(f"output '{path}' exists (use --force to overwrite it)")
    check_writable(path)


def check_sequence_target(out: Path, force: bool) -> None:
    """A video file or frame-folder output, before any work: without ``force`` a video file
    must not exist and a folder must be empty; either must be writable. (With ``force`` a
    folder keeps everything but the ``frame_NNNNNN.png`` files this run writes.)"""
    if out.suffix.lower() in VIDEO_EXTENSIONS:
        if out.exists() and not out.is_dir() and not force:
            raise InputError(f"output '{out}' exists (use --force to overwrite it)")
        check_writable(out)
        return
    check_folder_writable(out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(
            f"output folder '{out}' is not empty (--force writes its frame_NNNNNN.png files "
            "there, leaving everything else)"
        )


def refuse_overwriting_input(out: Path, refs: Sequence[str]) -> None:
    """An output folder that holds one of the inputs: a one-line error."""
    out = out.resolve()
    for ref in refs:
        p = Path(ref)
        if p.exists() and p.resolve().parent == out:
            raise InputError(f"output folder '{out}' holds the input '{ref}'; choose another")


def refuse_linear_raw(linear: bool, inputs: Sequence[str]) -> None:
    """``linear`` with camera raw files, which are developed to sRGB: a one-line error."""
    if linear and any(is_raw(i) for i in inputs):
        raise InputError("raw files are developed to sRGB before denoising: drop --linear")


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
    return len(inputs) == 1 and Path(inputs[0]).suffix.lower() in VIDEO_EXTENSIONS


def _sequence_output(out: Path) -> bool:
    """A video file or (no extension) a folder of frames."""
    return out.suffix.lower() in VIDEO_EXTENSIONS or not out.suffix


def write_new(name: str | Path, image: np.ndarray) -> Path:
    """Write ``image`` under ``name`` or, when taken, the first free ``STEM_K.EXT`` (K = 2,
    3, ...), each created exclusively: reruns never overwrite anything."""
    path = Path(name)
    for k in range(1, 10_000):
        candidate = path if k == 1 else path.with_name(f"{path.stem}_{k}{path.suffix}")
        if candidate.exists():
            continue
        try:
            return write_image(candidate, image, overwrite=False)
        except OutputExistsError:  # taken meanwhile by another run
            continue
    raise InputError(f"no free name for '{name}': remove some of the earlier outputs")


def write_json(path: str | Path, data) -> None:
    """``data`` as indented JSON (one trailing newline), written atomically."""
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())


# --------------------------------------------------------------------------- denoise / deblur
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


@dataclass
class JobResult:
    """What a denoise / deblur job did. ``kind``: ``"burst"`` (a burst into one image),
    ``"image"`` (one image through a single-image model), ``"frames"`` (frame files into a
    video or a frame folder) or ``"video"`` (a video file); ``model`` is the name or path the
    job used, ``seconds`` the time of the denoising (and writing). The other fields are those
    the kind has: ``source``, ``width``, ``height`` of the image (``"image"``); the noise
    (``sigma_r``, ``sigma_s``; ``noise_source`` and ``max_shift`` of a burst, in px), ``bits``
    and ``fps`` (``"video"``) of the others. ``profile`` (a burst with ``profile=True``) holds
    the stage times and ``profile_info`` what was profiled (frames, size, tile, threads)."""

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
    profile: Profile | None = None
    profile_info: dict = field(default_factory=dict)


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
        return _denoise_video(Path(inputs[0]), out, model, force, progress, **options)
    files = list_images(inputs if len(inputs) > 1 else inputs[0])
    if _sequence_output(out):  # frame files -> every frame denoised
        return _denoise_frames(inputs, files, out, model, fps, force, progress, **options)
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
        t0 = time.perf_counter()
        result = denoising.denoise_burst(
            frames,
            net,
            noise=noise,
            reference=reference,
            align=align,
            linear=linear,
            tile=tile,
            progress=progress and not profile,
        )
        bits = bits or (16 if in_bits == 16 and not _jpeg(out) else 8)
        with stage("writing"):
            image = result.image.permute(1, 2, 0).numpy()
            write_image(out, image, bits=bits, overwrite=force)
    seconds = time.perf_counter() - t0
    info = {}
    if prof is not None:
        n, c, h, w = frames.shape
        info = dict(frames=n, height=h, width=w, channels=c, tile=tile, model=str(model))
        info["torch_threads"] = torch.get_num_threads()
    return JobResult(
        "burst",
        model,
        out,
        seconds,
        frames=len(files),
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


def _jpeg(out: Path) -> bool:
    return out.suffix.lower() in (".jpg", ".jpeg")


def _restore_one(
    inputs: Sequence[str],
    out: Path,
    net,
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
    bits = bits or (16 if in_bits == 16 and not _jpeg(out) else 8)
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
def _profiled(on: bool):
    """A :class:`~burstkpn.profiling.Profile` active for the block when ``on`` (else
    ``None``)."""
    if not on:
        yield None
        return
    with profiling() as prof:
        yield prof


def _denoise_frames(
    given: Sequence[str],
    files: list[str],
    out: Path,
    model: str,
    fps: float,
    force: bool,
    progress: bool,
    *,
    noise: str,
    align: str,
    linear: bool,
    tile: int,
    bits: int | None,
    device: str,
) -> JobResult:
    """A video stored as frame files, denoised frame by frame with the window around each
    (clip models: ``video_window``) into a folder of PNGs or a video file, with ``noise``,
    ``align`` and ``linear`` as for a burst; ``bits`` (default: the frames' depth)."""
    denoising.check_sequence_output(out, given, files)
    check_sequence_target(out, force)
    denoising.sequence_bits(out, bits)
    refuse_linear_raw(linear, files)
    denoising.check_frame_sizes(files)
    net = Runner(resolve.resolve_model(model, "denoise"), device=device)
    t0 = time.perf_counter()
    info = denoising.denoise_frames(
        files,
        out,
        net,
        fps=fps,
        noise=noise,
        align=align,
        linear=linear,
        tile=tile,
        bits=bits,
        progress=progress,
        overwrite=force,
    )
    return _sequence_result("frames", info, model, out, time.perf_counter() - t0)


def _denoise_video(
    video: Path,
    out: Path,
    model: str,
    force: bool,
    progress: bool,
    *,
    noise: str,
    align: str,
    linear: bool,
    tile: int,
    bits: int | None,
    device: str,
) -> JobResult:
    """A video file, denoised frame by frame with the window around each into a video file or
    a folder of PNGs, with ``noise``, ``align`` and ``linear`` as for a burst; ``bits``
    (default: the stream's depth; 16 only into .mkv / .avi FFV1 or PNG frames)."""
    if out.resolve() == video.resolve():
        raise InputError(f"output '{out}' is the input; choose another name")
    if out.suffix and out.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputError(f"video output must be {', '.join(VIDEO_EXTENSIONS)} or a folder name")
    check_sequence_target(out, force)
    denoising.sequence_bits(out, bits)
    net = Runner(resolve.resolve_model(model, "denoise"), device=device)
    t0 = time.perf_counter()
    info = denoising.denoise_video(
        video,
        out,
        net,
        noise=noise,
        align=align,
        linear=linear,
        tile=tile,
        bits=bits,
        progress=progress,
        overwrite=force,
    )
    return _sequence_result("video", info, model, out, time.perf_counter() - t0)


def _sequence_result(kind: str, info: dict, model: str, out: Path, seconds: float) -> JobResult:
    return JobResult(
        kind,
        model,
        out,
        seconds,
        frames=info["frames"],
        bits=info["bits"],
        fps=info.get("fps", 0.0),
        sigma_r=info["sigma_r"],
        sigma_s=info["sigma_s"],
    )


# --------------------------------------------------------------------------- demo / synth
@dataclass
class DemoResult:
    """What :func:`demo` did: the photo, the noise level, the PSNR (dB) of the noisy reference
    frame and of the denoised image, the noise the model's denoising measured and the sheet
    written."""

    source: str
    level: NoiseLevel
    before: float
    after: float
    sigma_r: float
    sigma_s: float
    output: Path


def demo(
    image: str = "astronaut",
    *,
    noise: str = "gain2",
    model: str = "ame_kpn",
    patch: int = 256,
    seed: int = 0,
    out: str | Path | None = None,
    force: bool = False,
) -> DemoResult:
    """``burstkpn demo``: an 8-frame synthetic burst of ``image`` at ``noise`` denoised by
    ``model`` (noise estimated, aligned); writes clean / noisy reference / denoised side by
    side, with their PSNR, to ``out`` or (default) :data:`DEMO_NAME`, or the first free
    ``burstkpn_demo_K.png`` when taken."""
    if out is not None:
        check_output(Path(out), [], force)
    else:
        check_output(Path(DEMO_NAME), [], True)  # a free name is found when writing
    level = parse_noise(noise)
    ref = list_images(image)[0]
    clean = match_channels(load_linear(ref), 3)
    burst = synthesize_burst(
        clean, torch.Generator().manual_seed(seed), patch_size=patch, noise=level
    )
    net = resolve.resolve_model(model)
    result = denoising.denoise_burst(burst.noisy[0], net, noise="auto", linear=True, align="auto")
    before = float(psnr(burst.noisy[:, 0], burst.clean)[0])
    after = float(psnr(result.image[None], burst.clean)[0])
    tiles = [
        label_tile(to_display(burst.clean[0]), "clean"),
        label_tile(to_display(burst.noisy[0, 0]), f"noisy reference {before:.2f} dB"),
        label_tile(to_display(result.image), f"{model} {after:.2f} dB"),
    ]
    sheet = contact_sheet(tiles, columns=3).astype(np.float64) / 255
    if out is not None:
        written = write_image(out, sheet, overwrite=force)
    else:
        written = write_new(DEMO_NAME, sheet)
    return DemoResult(ref, level, before, after, result.sigma_r, result.sigma_s, written)


def synth_burst(
    image: str,
    out: str | Path,
    *,
    noise: str = "gain3",
    frames: int = 8,
    patch: int = 256,
    seed: int = 0,
    mode: str = "auto",
    channels: int | None = 3,
    force: bool = False,
) -> tuple[Path, dict]:
    """``burstkpn synth``: one synthetic noisy burst of ``image`` written to the folder
    ``out``: ``clean.png``, ``noise_map.png``, ``frame_NN.png``, ``contact_sheet.png``,
    ``burst.npz`` and ``meta.json``. Returns the folder and the metadata written."""
    refs = list_images(image)
    if len(refs) != 1:
        raise InputError(f"synth takes one image, '{image}' names {len(refs)}")
    level = parse_noise(noise)
    if frames < 2:
        raise InputError(f"a burst needs at least 2 frames, got {frames}")
    clean = match_channels(load_linear(refs[0]), channels)
    folder = prepare_output_dir(out, force)
    refuse_overwriting_input(folder, refs)
    g = torch.Generator().manual_seed(seed)
    burst = synthesize_burst(clean, g, num_frames=frames, patch_size=patch, noise=level, mode=mode)
    geometry = burst.geometry[0]
    noisy = burst.noisy[0]

    clean_img = to_display(burst.clean[0])
    write_image(folder / "clean.png", clean_img)
    nmap = burst.noise_map[0]
    nmax = float(nmap.max())
    nmap_img = (nmap / nmax).mean(0, keepdim=True).permute(1, 2, 0).numpy()
    write_image(folder / "noise_map.png", nmap_img)
    shown = []
    for i, frame in enumerate(noisy):
        shown.append(to_display(frame))
        write_image(folder / f"frame_{i:02d}.png", shown[-1])
    sheet = burst_sheet(clean_img, nmap_img, nmax, shown, geometry.offsets_px, columns=5)
    write_image(folder / "contact_sheet.png", sheet.astype(np.float64) / 255)
    data, clipped = burst_npz(noisy, burst.clean[0], geometry.offsets, level)
    atomic_write_bytes(folder / "burst.npz", data)
    meta = {
        "source": refs[0],
        "seed": seed,
        "noise": {"name": level.name, "sigma_r": level.sigma_r, "sigma_s": level.sigma_s},
        "clipped": clipped,
        **geometry.to_dict(),
    }
    write_json(folder / "meta.json", meta)
    return folder, meta


# --------------------------------------------------------------------------- reports
def write_ablation_report(
    out: Path,
    *,
    command: str,
    testset: str,
    checkpoints: Path,
    limit: int | None,
    table: str,
    scores: dict,
    note: str = "",
) -> None:
    """``bench ablation --out``: ``report.md`` (the table of
    :func:`burstkpn.bench.quality.run_ablation`, how it was made, ``note`` on missing
    checkpoints) and ``results.json`` in the folder ``out``."""
    text = (
        "# [AME-KPN] Table 2: ablation of the AME units\n\n"
        f"Produced by:\n\n```bash\n{command}\n```\n\n"
        f"Mean PSNR (dB) over every burst of `{testset}`"
        + (f" (first {limit} images)" if limit else "")
        + f", checkpoints `{checkpoints}/ame_kpn_model{{1..6}}.safetensors` "
        "(their training budget is in their cards).\n\n"
        + table
        + "\n"
        + (f"\n{note}\n" if note else "")
    )
    results = {"command": command, "testset": str(testset), "psnr": scores}
    atomic_write_bytes(out / "report.md", text.encode())
    write_json(out / "results.json", results)
