"""The bad-input battery of issue 21 as tests, on tiny inputs and a tiny untrained model: each
case ends in a one-line error and exit status 2 (checked before any heavy work where it can
be), or in the documented behaviour; outputs never touch anything but what the command writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zlib
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import torch

from burstkpn.cli import main
from burstkpn.data.io.images import read_image, write_image
from burstkpn.errors import InputError, OutputExistsError
from burstkpn.models import create_model, save_model
from tests.conftest import REPO


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(create_model("ame_kpn", "tiny"), tmp_path / "tiny.safetensors")


def _burst(folder: Path, n: int = 3, size: tuple[int, int] = (40, 48), bits: int = 8) -> Path:
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]] / 5.0
    base = 0.5 + 0.3 * np.sin(xx) * np.cos(yy)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = base[:, :, None].repeat(3, 2) + rng.normal(0, 0.03, (*size, 3))
        write_image(folder / f"f{i}.png", img.clip(0, 1), bits=bits)
    return folder


def _flat_burst(folder: Path, value: float, bits: int, n: int = 8, size: int = 40) -> Path:
    for i in range(n):
        write_image(folder / f"f{i}.png", np.full((size, size, 3), value), bits=bits)
    return folder


def _png_header_only(path: Path, width: int, height: int, bits: int = 16) -> Path:
    """A PNG whose IHDR claims ``width x height`` (RGB, ``bits``) and whose data is garbage: a
    decompression bomb's header without the bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([bits, 2, 0, 0, 0])
    data = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return path


def _run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _no_compute(monkeypatch) -> None:
    """Fail the test if the denoising itself starts."""

    def boom(*args, **kwargs):
        raise AssertionError("the check came after the computation")

    monkeypatch.setattr("burstkpn.denoising.denoise_burst", boom)
    monkeypatch.setattr("burstkpn.denoising._denoise_sequence", boom)


# ------------------------------------------------------------------------ 1. --force and folders
def test_force_into_a_folder_keeps_its_other_files_and_the_inputs(tmp_path, tiny_ckpt, capsys):
    x = tmp_path / "X"
    _burst(x / "frames")
    (x / "other.txt").write_text("keep")
    (x / "frame_000009.png").write_bytes(b"an older, longer run")
    code, err = _run(capsys, "denoise", x / "frames", "-o", x, "--force", "--model", tiny_ckpt)
    assert code == 0, err
    assert (x / "other.txt").read_text() == "keep"
    assert sorted(p.name for p in (x / "frames").iterdir()) == ["f0.png", "f1.png", "f2.png"]
    assert all((x / f"frame_{i:06d}.png").is_file() for i in range(3))
    assert read_image(x / "frame_000000.png").shape == (40, 48, 3)
    assert (x / "frame_000009.png").read_bytes() == b"an older, longer run"  # not ours: kept
    assert "frame_000009.png" in err and "left as they are" in err
    assert not [p for p in x.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_force_into_the_current_folder_deletes_nothing(tmp_path, tiny_ckpt, capsys, monkeypatch):
    y = tmp_path / "Y"
    _burst(y / "frames")
    (y / "other.txt").write_text("keep")
    monkeypatch.chdir(y)
    code, err = _run(capsys, "denoise", "frames", "-o", ".", "--force", "--model", tiny_ckpt)
    assert code == 0, err
    assert (y / "other.txt").read_text() == "keep"
    assert len(list((y / "frames").iterdir())) == 3
    assert (y / "frame_000002.png").is_file()


@pytest.mark.parametrize("where", ["frames", "frames/sub"])
def test_output_folder_in_the_inputs_is_refused_even_with_force(tmp_path, tiny_ckpt, capsys, where):
    frames = _burst(tmp_path / "frames")
    before = sorted(p.name for p in frames.iterdir())
    code, err = _run(
        capsys, "denoise", frames, "-o", tmp_path / where, "--force", "--model", tiny_ckpt
    )
    assert code == 2 and _one_line(err) and "input" in err
    assert sorted(p.name for p in frames.iterdir()) == before


def test_non_empty_output_folder_needs_force(tmp_path, tiny_ckpt, capsys):
    frames = _burst(tmp_path / "frames")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    code, err = _run(capsys, "denoise", frames, "-o", out, "--model", tiny_ckpt)
    assert code == 2 and _one_line(err) and "not empty" in err


# ------------------------------------------------------------------------ 2. noise estimation
@pytest.mark.parametrize("value,bits", [(1.0, 16), (1.0, 8), (0.0, 8)])
def test_flat_saturated_or_black_burst_uses_the_floor_level(
    tmp_path, tiny_ckpt, capsys, value, bits
):
    frames = _flat_burst(tmp_path / "flat", value, bits)
    out = tmp_path / "out.png"
    code, err = _run(capsys, "denoise", frames, "-o", out, "--model", tiny_ckpt, "--quiet")
    assert code == 0 and _one_line(err) and "warning" in err and "gain1" in err
    assert read_image(out).dtype == (np.uint16 if bits == 16 else np.uint8)


def test_tiny_burst_asks_for_noise(tmp_path, tiny_ckpt, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "tiny"
    for i in range(8):
        write_image(folder / f"f{i}.png", rng.random((4, 4, 3)))
    out = tmp_path / "out.png"
    code, err = _run(capsys, "denoise", folder, "-o", out, "--model", tiny_ckpt)
    assert code == 2 and _one_line(err) and "too small" in err and "--noise" in err
    code, err = _run(capsys, "denoise", folder, "-o", out, "--model", tiny_ckpt, "--noise", "gain1")
    assert code == 0 and read_image(out).shape == (4, 4, 3)


# ------------------------------------------------------------------------ 3. misfit checkpoints
def _misfit_checkpoint(src: Path, dst: Path) -> Path:
    """``src``'s metadata with one tensor of the wrong shape."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(src))
    key = sorted(state)[0]
    state[key] = torch.zeros([d + 1 for d in state[key].shape])
    save_file(state, str(dst), metadata=meta)
    return dst


def test_checkpoint_that_does_not_fit_its_model(tmp_path, tiny_ckpt, capsys):
    bad = _misfit_checkpoint(tiny_ckpt, tmp_path / "bad.safetensors")
    frames = _burst(tmp_path / "frames")
    code, err = _run(capsys, "denoise", frames, "-o", tmp_path / "o.png", "--model", bad)
    assert code == 2 and _one_line(err) and "does not fit" in err
    code, err = _run(
        capsys,
        *["train", "--model", "ame_kpn", "--size", "tiny", "--data", frames, "--steps", "2"],
        *["--init", bad, "--out", tmp_path / "run", "--quiet", "--val-every", "0"],
    )
    assert code == 2 and _one_line(err) and "does not fit" in err


@pytest.mark.parametrize(
    "name,message",
    [
        ("foo.bin", "not a .safetensors file"),
        ("nope.bin", "no such checkpoint file"),
        ("nope.safetensors", "no such checkpoint file"),
    ],
)
def test_model_files_of_other_formats(tmp_path, capsys, monkeypatch, name, message):
    monkeypatch.chdir(tmp_path)
    Path("foo.bin").write_bytes(b"pickle?")
    frames = _burst(tmp_path / "frames")
    code, err = _run(capsys, "denoise", frames, "-o", "o.png", "--model", name)
    assert code == 2 and _one_line(err) and message in err and "shipped" not in err


# ------------------------------------------------------------------------ 4. unwritable outputs
@pytest.fixture
def read_only_dir(tmp_path):
    """A folder no file can be created in, for root too (immutable) where chattr works."""
    folder = tmp_path / "rodir"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not shutil.which("chattr"):
        pytest.skip("root without chattr: no way to make a read-only folder")
    res = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"chattr +i not supported here: {res.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("target", ["out.png", "sub/out.png", "framesout", "sub/video.mkv"])
def test_unwritable_output_is_refused_before_any_work(
    tmp_path, tiny_ckpt, capsys, monkeypatch, read_only_dir, target
):
    frames = _burst(tmp_path / "frames")
    _no_compute(monkeypatch)
    code, err = _run(capsys, "denoise", frames, "-o", read_only_dir / target, "--model", tiny_ckpt)
    assert code == 2 and _one_line(err) and "cannot write" in err


def test_unwritable_deblur_output_is_refused(tmp_path, capsys, monkeypatch, read_only_dir):
    write_image(tmp_path / "img.png", np.full((16, 16, 3), 0.5))

    def no_model(*args):
        raise AssertionError("the model was loaded before the check")

    monkeypatch.setattr("burstkpn.inference.resolve.resolve_model", no_model)
    code, err = _run(capsys, "deblur", tmp_path / "img.png", "-o", read_only_dir / "o.png")
    assert code == 2 and _one_line(err) and "cannot write" in err


# ------------------------------------------------------------------------ 5. image sizes
def test_16bit_png_over_the_pixel_limit_is_refused_from_its_header(tmp_path, tiny_ckpt, capsys):
    folder = _burst(tmp_path / "frames", bits=16)
    _png_header_only(folder / "f9.png", 20000, 20000)  # 400 MP, a few hundred bytes
    code, err = _run(capsys, "denoise", folder, "-o", tmp_path / "o.png", "--model", tiny_ckpt)
    assert code == 2 and _one_line(err) and "over the limit" in err
    with pytest.raises(InputError, match="over the limit"):
        read_image(folder / "f9.png")


def test_frame_sizes_are_compared_before_decoding(tmp_path, tiny_ckpt, capsys, monkeypatch):
    folder = _burst(tmp_path / "frames", bits=16)
    _png_header_only(folder / "f9.png", 3000, 2000)  # decoding it would fail (or take long)
    decoded = []
    real = __import__("burstkpn.data.io.images", fromlist=["_decode"])._decode
    monkeypatch.setattr("burstkpn.data.io.images._decode", lambda p: decoded.append(p) or real(p))
    code, err = _run(capsys, "denoise", folder, "-o", tmp_path / "o.png", "--model", tiny_ckpt)
    assert code == 2 and _one_line(err) and "frames differ in size" in err and "3000x2000" in err
    assert decoded == []


# ------------------------------------------------------------------------ 6. --tile
def test_tile_zero_is_the_whole_image_and_negative_is_refused(tmp_path, tiny_ckpt, capsys):
    from burstkpn.inference.tiling import tiled_forward
    from burstkpn.models import load_model

    model = load_model(tiny_ckpt)
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    burst = torch.rand(1, 8, 3, 40, 52)
    nmap = torch.full((1, 3, 40, 52), 0.02)
    whole = tiled_forward(model, burst, nmap, tile=0)
    planes = 3 if getattr(model, "independent_channels", False) else 1
    assert len(calls) == planes  # one tile per plane, no 16 px tiles
    assert torch.allclose(whole, tiled_forward(model, burst, nmap, tile=32), atol=1e-4)

    frames = _burst(tmp_path / "frames")
    out = tmp_path / "o.png"
    code, err = _run(capsys, "denoise", frames, "-o", out, "--model", tiny_ckpt, "--tile", "0")
    assert code == 0 and out.is_file(), err
    code, err = _run(capsys, "denoise", frames, "-o", out, "--force", "--tile", "-8")
    assert code == 2 and _one_line(err) and "--tile" in err


# ------------------------------------------------------------------------ 7. concurrent runs
def test_an_output_written_meanwhile_is_not_overwritten(tmp_path, tiny_ckpt, capsys, monkeypatch):
    """Two runs to one -o: the other run's file appears while this one computes; without
    --force this run stops with a one-line error and the other's file stays."""
    import burstkpn.denoising as dn

    frames = _burst(tmp_path / "frames")
    out = tmp_path / "o.png"
    real = dn.denoise_burst

    def other_run_finishes_first(*args, **kwargs):
        out.write_bytes(b"the other run's result")
        return real(*args, **kwargs)

    monkeypatch.setattr(dn, "denoise_burst", other_run_finishes_first)
    code, err = _run(capsys, "denoise", frames, "-o", out, "--model", tiny_ckpt, "--quiet")
    assert code == 2 and _one_line(err) and "exists" in err
    assert out.read_bytes() == b"the other run's result"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(dn, "denoise_burst", real)
    code, err = _run(capsys, "denoise", frames, "-o", out, "--model", tiny_ckpt, "--force")
    assert code == 0 and read_image(out).shape == (40, 48, 3)


def test_exclusive_write_image(tmp_path):
    path = tmp_path / "a.png"
    write_image(path, np.zeros((4, 4, 3)), overwrite=False)
    with pytest.raises(OutputExistsError):
        write_image(path, np.ones((4, 4, 3)), overwrite=False)
    assert read_image(path).max() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


# ------------------------------------------------------------------------ 8. temporary files
def test_leftover_temp_files_and_hidden_folders_are_not_frames(tmp_path, tiny_ckpt, capsys):
    frames = _burst(tmp_path / "frames")
    (frames / ".out.k2j4x9.png").write_bytes(b"")  # what a SIGKILL mid-write leaves
    (frames / ".thumbs").mkdir()
    write_image(frames / ".thumbs" / "f0.png", np.zeros((8, 8, 3)))
    code = main(["denoise", str(frames), "-o", str(tmp_path / "o.png"), "--model", str(tiny_ckpt)])
    assert code == 0
    assert "denoised 3 frames" in capsys.readouterr().out


def test_no_temp_file_left_after_an_interrupted_write(tmp_path, monkeypatch):
    def interrupted(tmp, q, ext, bits):
        Path(tmp).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr("burstkpn.data.io.images._encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "o.png", np.zeros((4, 4, 3)))
    assert list(tmp_path.iterdir()) == []


_SIGTERM_SCRIPT = """
import os, signal, sys, time
import burstkpn.data.io.images as images
def encode(tmp, q, ext, bits):
    open(tmp, "wb").write(b"half")
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
images._encode = encode
from burstkpn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_while_writing_leaves_no_temp_file(tmp_path, tiny_ckpt):
    frames = _burst(tmp_path / "frames")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            _SIGTERM_SCRIPT,
            "denoise",
            str(frames),
            "-o",
            str(out_dir / "o.png"),
        ]
        + ["--model", str(tiny_ckpt), "--quiet"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert res.returncode == 143 and "terminated" in res.stderr, res.stderr
    assert list(out_dir.iterdir()) == []


# ------------------------------------------------------------------------ smaller ones
def test_demo_reruns_write_new_names(tmp_path, tiny_ckpt, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        code, err = _run(capsys, "demo", "--model", tiny_ckpt, "--patch", "48")
        assert code == 0, err
    assert {"burstkpn_demo.png", "burstkpn_demo_2.png"} <= {p.name for p in tmp_path.iterdir()}
    patterns = (REPO / ".gitignore").read_text().splitlines()
    assert any(fnmatch("burstkpn_demo_2.png", p) for p in patterns)  # demo output: not for git


def test_one_progress_bar_for_a_whole_tiled_denoise(tmp_path, tiny_ckpt, monkeypatch):
    import burstkpn.inference.tiling as tiling
    from burstkpn.denoising import denoise_burst
    from burstkpn.models import load_model

    bars = []

    class Bar:
        def __init__(self, iterable=None, total=None, disable=False, **kwargs):
            self.iterable, self.total, self.n, self.disable = iterable, total, 0, disable
            bars.append(self)

        def __iter__(self):
            for item in self.iterable:
                yield item
                self.n += 1

        def update(self, k=1):
            self.n += k

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def close(self):
            pass

    monkeypatch.setattr(tiling, "tqdm", Bar)
    frames = torch.rand(4, 3, 40, 52)
    denoise_burst(frames, load_model(tiny_ckpt), noise="gain1", tile=32, progress=True)
    shown = [b for b in bars if not b.disable]
    assert len(shown) == 1 and shown[0].total > 1 and shown[0].n == shown[0].total
