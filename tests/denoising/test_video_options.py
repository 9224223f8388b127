"""``burstkpn denoise`` on frame folders and video files honours ``--linear``, ``--noise``,
``--align`` and the output bit depth (issue 25 item 5), on tiny frames and a tiny random model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import burstkpn.denoising as denoising
from burstkpn.cli import main
from burstkpn.data.degrade.estimate import BurstNoiseEstimate, ImageNoiseEstimate
from burstkpn.data.io.images import read_image, write_image
from burstkpn.models import create_model, load_model, save_model

SIZE = (40, 52)


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(create_model("ame_kpn", "tiny"), tmp_path / "tiny.safetensors")


def _frames(
    folder: Path, n: int = 4, bits: int = 8, ext: str = ".png", step: int = 0, seed: int = 0
) -> Path:
    """``n`` noisy textured frames, each moved ``step`` px right of the one before."""
    yy, xx = np.mgrid[0 : SIZE[0], 0 : SIZE[1] + step * n] / 5.0
    base = 0.5 + 0.3 * np.sin(xx) * np.cos(yy * 1.3)
    rng = np.random.default_rng(seed)
    for i in range(n):
        crop = base[:, step * (n - i) : step * (n - i) + SIZE[1]]
        img = np.stack([crop, crop * 0.8, 1 - crop], -1) + rng.normal(0, 0.04, (*SIZE, 3))
        write_image(folder / f"f{i}{ext}", img.clip(0, 1), bits=bits)
    return folder


def _run(capsys, *argv) -> tuple[int, str]:
    code = main(["denoise", *map(str, argv), "--quiet"])
    return code, capsys.readouterr().err


def _frame0(out: Path) -> np.ndarray:
    return read_image(out / "frame_000000.png")


def test_linear_matches_the_burst_path(tmp_path, tiny_ckpt, capsys):
    frames = _frames(tmp_path / "in")  # 4 frames: frame 0's window is the whole burst
    outs = {}
    for linear in ((), ("--linear",)):
        seq, still = tmp_path / f"seq{len(linear)}", tmp_path / f"still{len(linear)}.png"
        for out in (seq, still):
            code, err = _run(capsys, frames, "-o", out, "--model", tiny_ckpt, *linear)
            assert code == 0, err
        assert np.array_equal(_frame0(seq), read_image(still))
        outs[bool(linear)] = _frame0(seq)
    assert not np.array_equal(outs[True], outs[False])


def test_noise_and_align_reach_the_model(tmp_path, tiny_ckpt, capsys):
    frames = _frames(tmp_path / "in", step=3)  # a clip panning 3 px a frame
    runs = {
        "gain1": ("--noise", "gain1", "--align", "off"),
        "gain3": ("--noise", "gain3", "--align", "off"),
        "aligned": ("--noise", "gain3", "--align", "on"),
    }
    outs = {}
    for name, options in runs.items():
        code, err = _run(capsys, frames, "-o", tmp_path / name, "--model", tiny_ckpt, *options)
        assert code == 0, err
        outs[name] = _frame0(tmp_path / name)
    assert not np.array_equal(outs["gain1"], outs["gain3"])
    assert not np.array_equal(outs["gain3"], outs["aligned"])


def test_noise_measured_on_the_first_window_is_reused(tmp_path, tiny_ckpt, monkeypatch):
    frames = _frames(tmp_path / "in", n=6)
    calls, results = [], []
    original = denoising.denoise_burst

    def record(*args, **kwargs):
        calls.append(kwargs)
        results.append(original(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(denoising, "denoise_burst", record)
    model = load_model(tiny_ckpt)
    info = denoising.denoise_frames(
        frames, tmp_path / "seq", model, align="off", linear=True, progress=False
    )
    assert info["frames"] == len(calls) == 6
    measured = results[0].noise_estimate
    assert calls[0]["noise"] == "auto"
    assert isinstance(measured, BurstNoiseEstimate | ImageNoiseEstimate)
    assert all(c["noise"] is measured for c in calls[1:])
    assert all(c["align"] == "off" and c["linear"] for c in calls)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_frames_give_16bit_frames_unless_told(tmp_path, tiny_ckpt, capsys, ext):
    frames = _frames(tmp_path / "in", n=3, bits=16, ext=ext)
    for bits, dtype in (((), np.uint16), (("--bits", "8"), np.uint8)):
        out = tmp_path / f"seq{len(bits)}"
        code, err = _run(capsys, frames, "-o", out, "--model", tiny_ckpt, "--noise", "low", *bits)
        assert code == 0, err
        assert sorted(p.name for p in out.iterdir())[-1] == "frame_000002.png"
        assert _frame0(out).dtype == dtype and _frame0(out).shape == (*SIZE, 3)


def test_8bit_frames_can_be_written_at_16_bits(tmp_path, tiny_ckpt, capsys):
    frames = _frames(tmp_path / "in", n=3)
    for bits in ("8", "16"):
        out = tmp_path / f"seq{bits}"
        code, err = _run(capsys, frames, "-o", out, "--model", tiny_ckpt, "--bits", bits)
        assert code == 0, err
    deep, shallow = _frame0(tmp_path / "seq16"), _frame0(tmp_path / "seq8")
    assert deep.dtype == np.uint16 and shallow.dtype == np.uint8
    assert np.abs(deep / 65535.0 - shallow / 255.0).max() <= 0.5 / 255 + 1e-6


def test_linear_with_raw_frames_is_refused(tmp_path, tiny_ckpt, capsys):
    folder = tmp_path / "raw"
    folder.mkdir()
    for i in range(2):
        (folder / f"f{i}.dng").write_bytes(b"never decoded")
    code, err = _run(capsys, folder, "-o", tmp_path / "seq", "--model", tiny_ckpt, "--linear")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "drop --linear" in err
    assert not (tmp_path / "seq").exists()


# --------------------------------------------------------------------------- video files
def _video(path: Path, frames: list[np.ndarray], bits: int = 8, fps: int = 12) -> Path:
    av = pytest.importorskip("av")
    container = av.open(str(path), mode="w")
    stream = container.add_stream("ffv1", rate=fps)
    stream.height, stream.width = frames[0].shape[:2]
    stream.pix_fmt = "gbrp16le" if bits == 16 else "bgr0"
    top, dtype, fmt = (65535, np.uint16, "rgb48le") if bits == 16 else (255, np.uint8, "rgb24")
    for img in frames:
        q = np.round(img * top).astype(dtype)
        for packet in stream.encode(av.VideoFrame.from_ndarray(q, format=fmt)):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def _decode(path: Path) -> tuple[str, list[np.ndarray]]:
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        name = stream.codec_context.format.name
        fmt = "rgb48le" if name.endswith("16le") else "rgb24"
        return name, [f.to_ndarray(format=fmt) for f in container.decode(stream)]


def _video_of(folder: Path, path: Path, bits: int) -> Path:
    top = 65535.0 if bits == 16 else 255.0
    frames = [read_image(p) / top for p in sorted(folder.iterdir())]
    return _video(path, frames, bits)


def test_video_input_honours_linear_and_noise(tmp_path, tiny_ckpt, capsys):
    pytest.importorskip("av")
    src = _video_of(_frames(tmp_path / "in"), tmp_path / "in.mkv", 8)
    runs = {"plain": ("--noise", "gain1"), "linear": ("--noise", "gain1", "--linear")}
    runs["gain3"] = ("--noise", "gain3")
    outs = {}
    for name, options in runs.items():
        code, err = _run(capsys, src, "-o", tmp_path / name, "--model", tiny_ckpt, *options)
        assert code == 0, err
        outs[name] = _frame0(tmp_path / name)
    assert not np.array_equal(outs["plain"], outs["linear"])
    assert not np.array_equal(outs["plain"], outs["gain3"])
    # the same window as a burst, from the same (lossless) frames, gives the same frame
    code, err = _run(
        capsys, tmp_path / "in", "-o", tmp_path / "b.png", "--model", tiny_ckpt, *runs["linear"]
    )
    assert code == 0 and np.array_equal(read_image(tmp_path / "b.png"), outs["linear"])


def test_16bit_video_round_trip(tmp_path, tiny_ckpt, capsys):
    pytest.importorskip("av")
    frames = _frames(tmp_path / "in", n=3, bits=16)
    src = _video_of(frames, tmp_path / "in16.mkv", 16)
    code, err = _run(capsys, src, "-o", tmp_path / "seq", "--model", tiny_ckpt, "--noise", "low")
    assert code == 0, err
    assert _frame0(tmp_path / "seq").dtype == np.uint16  # a 16-bit stream is read at 16 bits
    for out in ("out.mkv", "out.avi"):  # FFV1 keeps all 16 bits, losslessly
        code, err = _run(capsys, src, "-o", tmp_path / out, "--model", tiny_ckpt, "--noise", "low")
        assert code == 0, err
        name, decoded = _decode(tmp_path / out)
        assert name == "gbrp16le" and len(decoded) == 3
        assert np.array_equal(decoded[0], _frame0(tmp_path / "seq"))
    code, err = _run(capsys, frames, "-o", tmp_path / "o8.mkv", "--model", tiny_ckpt, "--bits", "8")
    assert code == 0, err
    assert _decode(tmp_path / "o8.mkv")[0] == "bgr0"


def test_16bit_into_h264_falls_back_or_is_refused(tmp_path, tiny_ckpt, capsys):
    pytest.importorskip("av")
    frames = _frames(tmp_path / "in", n=3, bits=16)
    code, err = _run(capsys, frames, "-o", tmp_path / "ok.mp4", "--model", tiny_ckpt)
    assert code == 0, err
    assert _decode(tmp_path / "ok.mp4")[0] == "yuv444p"  # 8-bit H.264 by default
    src = _video_of(frames, tmp_path / "in16.mkv", 16)
    for source in (frames, src):
        out = tmp_path / "o.mp4"
        code, err = _run(capsys, source, "-o", out, "--model", tiny_ckpt, "--bits", "16")
        assert code == 2 and len(err.strip().splitlines()) == 1 and "--bits 16" in err
        assert not out.exists()
