from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import burstkpn
from burstkpn.cli import main
from burstkpn.data.io.images import read_image, write_image
from burstkpn.denoising import denoise_burst, load_frames
from burstkpn.errors import InputError
from burstkpn.models import create_model, load_model, save_model
from burstkpn.ops.align import apply_shifts, estimate_shifts
from tests.conftest import gen


@pytest.fixture
def tiny_ckpt(tmp_path):
    torch.manual_seed(0)
    return save_model(create_model("ame_kpn", "tiny"), tmp_path / "tiny.safetensors")


def _frames_folder(tmp_path, bits=8, n=4, size=(40, 52), channels=3):
    folder = tmp_path / f"burst{bits}"
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]] / 9.0
    base = 0.5 + 0.3 * np.sin(xx) * np.cos(yy)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.repeat(base[:, :, None], channels, 2) + rng.normal(0, 0.03, (*size, channels))
        write_image(folder / f"f{i}.png", img.clip(0, 1), bits=bits)
    return folder


@pytest.mark.parametrize("bits", [8, 16])
def test_cli_round_trip_keeps_bit_depth(tmp_path, tiny_ckpt, bits, capsys):
    folder = _frames_folder(tmp_path, bits)
    out = tmp_path / f"out{bits}.png"
    assert main(["denoise", str(folder), "-o", str(out), "--model", str(tiny_ckpt), "--quiet"]) == 0
    img = read_image(out)
    assert img.shape == (40, 52, 3) and img.dtype == (np.uint8 if bits == 8 else np.uint16)
    assert "denoised 4 frames" in capsys.readouterr().out


def test_summary_says_how_many_frames_the_model_read(tmp_path, tiny_ckpt, capsys):
    # the tiny ame_kpn reads 8 frames: of a 10-frame burst the first 8 (reference first)
    folder = _frames_folder(tmp_path, n=10, size=(24, 28))
    out = tmp_path / "out.png"
    assert main(["denoise", str(folder), "-o", str(out), "--model", str(tiny_ckpt), "--quiet"]) == 0
    assert "denoised 8 of 10 frames" in capsys.readouterr().out
    frames = torch.rand(3, 3, 24, 28, generator=torch.Generator().manual_seed(0))
    assert denoise_burst(frames, load_model(tiny_ckpt), noise="low").frames_used == 3


def test_grayscale_odd_size_and_python_api(tmp_path, tiny_ckpt):
    folder = _frames_folder(tmp_path, 8, n=3, size=(33, 47), channels=1)
    out = burstkpn.denoise(folder, model=str(tiny_ckpt), noise="gain2")
    assert out.shape == (33, 47, 1) and np.isfinite(out).all() and 0 <= out.min() <= out.max() <= 1


@pytest.mark.parametrize(
    "setup,message",
    [
        ("single", "at least 2 frames"),
        ("mixed", "frames differ in size"),
        ("missing", "no such"),
        ("empty", "no images"),
        ("unsupported", "unsupported image format"),
        ("corrupt", "cannot read image"),
        ("exists", "exists (use --force"),
        ("input", "is one of the inputs"),
    ],
)
def test_bad_inputs_one_line_errors(tmp_path, tiny_ckpt, capsys, setup, message):
    folder = _frames_folder(tmp_path, 8, n=2)
    out = tmp_path / "out.png"
    inputs = [str(folder)]
    if setup == "single":
        inputs = [str(folder / "f0.png")]
    elif setup == "mixed":
        write_image(folder / "f9.png", np.zeros((10, 10, 3)))
    elif setup == "missing":
        inputs = [str(tmp_path / "nope")]
    elif setup == "empty":
        (tmp_path / "empty").mkdir()
        inputs = [str(tmp_path / "empty")]
    elif setup == "unsupported":
        (tmp_path / "x.gif").write_bytes(b"GIF89a")
        inputs = [str(folder / "f0.png"), str(tmp_path / "x.gif")]
    elif setup == "corrupt":
        (folder / "f1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 5)
    elif setup == "exists":
        out.write_bytes(b"mine")
    elif setup == "input":
        out = folder / "f0.png"
        inputs = [str(folder / "f0.png"), str(folder / "f1.png")]
    code = main(["denoise", *inputs, "-o", str(out), "--model", str(tiny_ckpt), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    if setup == "exists":
        assert out.read_bytes() == b"mine"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_burst_rejected(tiny_ckpt, bad):
    from burstkpn.models import load_model

    frames = torch.rand(3, 1, 16, 16)
    frames[1, 0, 3, 3] = bad
    with pytest.raises(InputError, match="NaN or Inf"):
        denoise_burst(frames, load_model(tiny_ckpt), noise="gain1")


def test_global_alignment_recovers_shifts():
    g = gen(0)
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(112.0), indexing="ij")
    scene = 0.5 + 0.2 * torch.sin(xx / 5) * torch.cos(yy / 7) + 0.1 * torch.sin((xx + yy) / 3)
    true = np.array([[0, 0], [3.25, -5.5], [-7.0, 2.75]])
    frames = apply_shifts(scene.expand(3, 1, 96, 112).contiguous(), true)
    frames = frames + 0.01 * torch.randn(frames.shape, generator=g, dtype=frames.dtype)
    est = estimate_shifts(frames)
    assert np.abs(est + true).max() < 0.15  # the shift that moves each frame back


def test_load_frames_bits(tmp_path):
    frames, bits = load_frames(_frames_folder(tmp_path, 16, n=2))
    assert bits == 16 and frames.shape == (2, 3, 40, 52)


@pytest.mark.parametrize("bits", [8, 16])
def test_load_frames_equals_frame_by_frame_reading(tmp_path, bits):
    """The parallel, preallocated reading gives exactly the frames read one by one."""
    from burstkpn.data.io.images import image_to_tensor, list_images

    folder = _frames_folder(tmp_path, bits, n=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a pool of two readers even on one core
    try:
        frames, got = load_frames(folder)
    finally:
        torch.set_num_threads(threads)
    expected = torch.stack([image_to_tensor(read_image(r)) for r in list_images(folder)])
    assert got == bits and torch.equal(frames, expected)


def test_demo_with_shipped_weights(tmp_path, capsys):
    from burstkpn.models.factory import weights_dir

    if not (weights_dir() / "ame_kpn.safetensors").is_file():
        pytest.skip("no shipped ame_kpn weights")
    out = tmp_path / "demo.png"
    assert main(["demo", "--patch", "96", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "noisy reference" in text and "ame_kpn" in text
    assert read_image(out).shape[1] > 3 * 96
    assert main(["demo", "--patch", "96", "--out", str(out)]) == 2  # no overwrite without --force


# ---------------------------------------------------------------- noise estimation, tiling, memory
def _synthetic_burst(level: str, seed: int = 3):
    from burstkpn.data.degrade.synth import synthesize_burst
    from burstkpn.data.io.images import load_linear

    clean = load_linear("astronaut")
    return synthesize_burst(clean[:, 40:360, 120:440], gen(seed), patch_size=96, noise=level)


@pytest.mark.parametrize("level", ["gain1", "gain2", "gain3"])
def test_auto_noise_within_0_3_db_of_the_true_level(level):
    """`--noise auto` (estimated from the burst) vs the true sigma_r, sigma_s, with the shipped
    KPN on a synthetic burst whose truth is known. (Not AME-KPN: its short-trained weights
    fail on this dark crop whatever the noise map, 4.6 dB below the noisy input at Gain 1, and
    move 0.5 dB for a 3 % change of sigma_r at Gain 2, so the test would measure the weights'
    sensitivity rather than the estimator; see docs/training-history.md.)"""
    from burstkpn.data.degrade.noise import NOISE_LEVELS
    from burstkpn.metrics import psnr

    burst = _synthetic_burst(level)
    model = burstkpn.load_pretrained("kpn")
    lv = NOISE_LEVELS[level]
    frames = burst.noisy[0]
    kw = dict(linear=True, align="off", precision="fp32")
    auto = denoise_burst(frames, model, noise="auto", **kw)
    true = denoise_burst(frames, model, noise=(lv.sigma_r, lv.sigma_s), **kw)
    p_auto = float(psnr(auto.image[None], burst.clean)[0])
    p_true = float(psnr(true.image[None], burst.clean)[0])
    assert abs(p_auto - p_true) < 0.3, (level, p_auto, p_true)


def test_denoise_tiled_equals_untiled():
    burst = _synthetic_burst("gain2")
    model = burstkpn.load_pretrained("ame_kpn")
    kw = dict(linear=True, align="off", precision="fp32", noise="gain2")
    whole = denoise_burst(burst.noisy[0], model, tile=4096, **kw).image
    tiled = denoise_burst(burst.noisy[0], model, tile=32, **kw).image
    assert (whole - tiled).abs().max() < 1e-4


_PEAK_SCRIPT = """
import re, sys, torch
import burstkpn
from burstkpn.denoising import denoise_burst
from burstkpn.models import create_model
torch.manual_seed(0)
h, w = int(sys.argv[1]), int(sys.argv[2])
model = create_model("ame_kpn", "tiny")
frames = torch.rand(8, 3, h, w)
# reset the peak-RSS mark after imports (whose transient peak can exceed a small workload's),
# then report VmHWM: the peak of the denoise call itself plus the resident base
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
denoise_burst(frames, model, noise="gain2", align="on", tile=128, precision="fp32")
print(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))  # KiB
"""


def _peak_rss(h: int, w: int) -> int:
    import subprocess
    import sys

    args = [sys.executable, "-c", _PEAK_SCRIPT, str(h), str(w)]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) * 1024


@pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux /proc peak-RSS reset"
)
def test_memory_grows_linearly_with_a_small_slope():
    """The 12 MP bound of docs/usage.md, extrapolated: peak memory of a tiled denoise grows
    with the image only through the burst itself and a few full-size planes, so two sizes give
    the slope; 12 MP at that slope plus the measured base must stay far below 8 GiB (the model's
    own working set is per tile; docs/usage.md reports the direct 12 MP measurement)."""
    peaks = {h * w: _peak_rss(h, w) for h, w in ((256, 256), (768, 768))}
    (a, pa), (b, pb) = sorted(peaks.items())
    slope = (pb - pa) / (b - a)  # bytes per pixel
    # the burst alone is 8 frames x 3 channels x 4 bytes = 96 B / pixel; measured about 400-430
    # B / pixel (input, aligned copy, padded copy, full-size planes; allocator slack varies by
    # machine), so the bound allows about 5.5 copies of the burst
    assert 96 <= slope < 530, slope
    # issue 25's target is 8 GiB of peak RSS at 12 MP: the extrapolation must leave a margin
    assert pa + slope * (12e6 - a) < 7 * 2**30, (pa, slope)


def test_a_prealign_model_gets_whole_pixel_alignment_whatever_the_motion():
    """denoise_burst moves every frame of a prealign model by its rounded shift (even a
    1 px motion, below the threshold for other models) and runs it on exactly that burst;
    align="off" leaves the frames as they are."""
    from burstkpn.inference import Runner
    from burstkpn.models import create_model
    from burstkpn.ops.align import shift_whole_pixels

    g = torch.Generator().manual_seed(7)
    scene = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 40, 40, generator=g), 3, 1, 1)
    moves = np.array([[0, 0], [1, 0], [0, -1], [1, 1]], dtype=np.float64)
    frames = torch.stack([shift_whole_pixels(scene, -m[None])[0] for m in moves])
    torch.manual_seed(0)
    runner = Runner(create_model("ame_kpn", "tiny", num_frames=4, prealign=True), precision="fp32")
    res = denoise_burst(frames, runner, noise=(0.01, 0.001), linear=True, tile=0)
    assert np.array_equal(res.shifts, moves)
    aligned = shift_whole_pixels(frames, moves)
    nmap = (0.01**2 + 0.001 * aligned[:1].clamp(min=0)).sqrt()
    expected = runner(aligned[None], nmap, tile=0, aligned=True)[0].clamp(0, 1)
    assert torch.allclose(res.image, expected, atol=1e-5)
    off = denoise_burst(frames, runner, noise=(0.01, 0.001), linear=True, tile=0, align="off")
    assert not off.shifts.any()
    assert not torch.allclose(off.image, res.image, atol=1e-4)


@pytest.mark.parametrize("reference", [0, 2])
def test_inplace_gives_the_same_output(reference):
    """``inplace`` changes where the burst lives, not the result: bit-equal outputs (sRGB input,
    alignment, a prealign model), the input left untouched without it; a reference other
    than the first frame falls back to a copy. With it, the caller's tensor holds the burst
    the network read (linearised, moved by whole pixels): no second copy was made."""
    from burstkpn.data.io.images import srgb_to_linear
    from burstkpn.inference import Runner
    from burstkpn.ops.align import shift_whole_pixels

    g = torch.Generator().manual_seed(3)
    scene = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 48, 56, generator=g), 3, 1, 1)
    frames = (scene + 0.05 * torch.randn(5, 3, 48, 56, generator=g)).clamp(0, 1)
    frames[1:] = torch.roll(frames[1:], (1, -2), (-2, -1))
    torch.manual_seed(0)
    model = create_model("ame_kpn", "tiny", num_frames=5, prealign=True)
    runner = Runner(model, precision="fp32")
    kw = dict(noise="auto", align="auto", tile=32, reference=reference)
    given = frames.clone()
    copied = denoise_burst(given, runner, **kw)
    assert torch.equal(given, frames)
    consumed = denoise_burst(given, runner, inplace=True, **kw)
    assert torch.equal(consumed.image, copied.image)
    assert consumed.sigma_r == copied.sigma_r and np.array_equal(consumed.shifts, copied.shifts)
    assert torch.equal(given, frames) == (reference != 0)
    if reference == 0:
        linear = torch.stack([srgb_to_linear(f) for f in frames])
        assert torch.equal(given, shift_whole_pixels(linear, consumed.shifts))
