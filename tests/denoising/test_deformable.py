"""``burstkpn denoise --model deform3d`` on frame folders (sliding window in temporal order,
``video_window``) and ``--model deform2d`` on a single image."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from burstkpn.cli import main
from burstkpn.data.io.images import linear_to_srgb, srgb_to_linear
from burstkpn.denoising import denoise_burst
from burstkpn.denoising.video import _clip_window
from burstkpn.models import create_model, save_model


@pytest.fixture
def tiny(tmp_path):
    torch.manual_seed(0)
    paths = {}
    for name in ("deform3d", "deform2d"):
        paths[name] = tmp_path / f"{name}.safetensors"
        save_model(create_model(name, "tiny"), paths[name])
    return paths


def _frames(root, count: int = 7, size: int = 24, noise: float = 1.0):
    """Flat gray frames, frame k of 8-bit value 30 (k + 1), with a little noise."""
    root.mkdir()
    rng = np.random.default_rng(0)
    for k in range(count):
        img = np.full((size, size + 4, 3), 30 * (k + 1), dtype=np.float64)
        img += rng.normal(0, noise, img.shape)
        iio.imwrite(root / f"f{k:02d}.png", img.clip(0, 255).astype(np.uint8))
    return root


def _spy(model):
    seen = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    return seen


def _rigid_start(window: list[int]) -> float:
    """What an untrained deform3d gives on flat frames (8-bit): the linear mean of the frames
    at times -2, 0, 2 of its clip window (the weight head's start)."""
    lin = srgb_to_linear(torch.tensor([30.0 * (window[i] + 1) / 255 for i in (0, 2, 4)]))
    return float(linear_to_srgb(lin.mean())) * 255


def _frame_ids(burst: torch.Tensor) -> list[int]:
    values = linear_to_srgb(burst[0].mean(dim=(1, 2, 3))) * 255
    return [round(float(v) / 30) - 1 for v in values]


def test_clip_window_in_temporal_order():
    assert _clip_window(3, 10, 2) == [1, 2, 3, 4, 5]
    assert _clip_window(0, 10, 2) == [2, 1, 0, 1, 2]  # mirrored at the start
    assert _clip_window(9, 10, 2) == [7, 8, 9, 8, 7]


def test_deform3d_reads_the_window_around_the_reference(tmp_path):
    model = create_model("deform3d", "tiny")
    seen = _spy(model)
    frames = torch.stack(
        [torch.full((3, 24, 28), 30 * (k + 1) / 255) for k in range(7)]
    )  # fmt: skip
    for ref, expected in ((3, [3, 1, 2, 4, 5]), (0, [0, 2, 1, 1, 2]), (6, [6, 4, 5, 5, 4])):
        denoise_burst(frames, model, noise="low", reference=ref, align="off")
        assert _frame_ids(seen[-1]) == expected


def test_deform3d_uses_only_its_window():
    """Frames outside the 2 tau + 1 window take no part (noise estimate, alignment): a long clip
    gives what its window alone gives (an earlier version left the unused slots of the working
    burst uninitialised and estimated the noise over them)."""
    model = create_model("deform3d", "tiny")
    g = torch.Generator().manual_seed(0)
    frames = (torch.rand(9, 3, 24, 28, generator=g) * 0.5 + 0.25).clamp(0, 1)
    long = denoise_burst(frames, model, noise="auto", reference=4)
    short = denoise_burst(frames[2:7], model, noise="auto", reference=2)
    assert (long.sigma_r, long.sigma_s) == (short.sigma_r, short.sigma_s)
    assert torch.equal(long.image, short.image)


def test_denoise_frame_folder_with_deform3d(tmp_path, tiny, capsys):
    folder = _frames(tmp_path / "clip")
    out = tmp_path / "out.png"
    argv = ["denoise", str(folder), "-o", str(out), "--model", str(tiny["deform3d"]), "--quiet"]
    assert main([*argv, "--reference", "3", "--noise", "low"]) == 0
    img = iio.imread(out)
    assert img.shape == (24, 28, 3) and abs(float(img.mean()) - _rigid_start([1, 2, 3, 4, 5])) < 1
    assert "denoised 5 of 7 frames" in capsys.readouterr().out  # the window around frame 3
    # every frame of the folder -> a folder of PNGs (the window around each frame)
    outdir = tmp_path / "denoised"
    argv = ["denoise", str(folder), "-o", str(outdir), "--model", str(tiny["deform3d"])]
    assert main([*argv, "--quiet", "--noise", "low"]) == 0
    written = sorted(outdir.glob("*.png"))
    assert len(written) == 7
    means = [float(iio.imread(p).mean()) for p in written]
    expected = [_rigid_start(_clip_window(k, 7, 2)) for k in range(7)]
    assert np.allclose(means, expected, atol=1), (means, expected)
    assert "denoised 7 frames" in capsys.readouterr().out
    assert main([*argv, "--quiet"]) == 2  # exists
    argv = ["denoise", str(folder), "-o", str(folder), "--model", str(tiny["deform3d"])]
    assert main([*argv, "--quiet", "--force"]) == 2  # the input folder


def test_sliding_window_matches_single_windows(tmp_path, tiny):
    from burstkpn.denoising import denoise_frames
    from burstkpn.models import load_model

    folder = _frames(tmp_path / "clip", count=6)
    model = load_model(tiny["deform3d"])
    denoise_frames(folder, tmp_path / "seq", model, noise="low", align="off", progress=False)
    files = sorted(folder.glob("*.png"))
    frames = torch.stack([torch.from_numpy(iio.imread(f)).permute(2, 0, 1) / 255.0 for f in files])
    for t in (0, 3, 5):
        one = denoise_burst(frames, model, noise="low", reference=t, align="off").image
        got = torch.from_numpy(iio.imread(tmp_path / "seq" / f"frame_{t:06d}.png")).float()
        want = (one.permute(1, 2, 0) * 255).round()
        assert (got - want).abs().max() <= 1


def test_deform2d_single_image_and_per_frame(tmp_path, tiny, capsys):
    folder = _frames(tmp_path / "clip", count=3, size=96, noise=4.0)
    out = tmp_path / "one.png"
    image = sorted(folder.glob("*.png"))[1]
    assert main(["denoise", str(image), "-o", str(out), "--model", str(tiny["deform2d"])]) == 0
    assert iio.imread(out).shape == (96, 100, 3)
    assert "denoised" in capsys.readouterr().out
    outdir = tmp_path / "per_frame"
    argv = ["denoise", str(folder), "-o", str(outdir), "--model", str(tiny["deform2d"])]
    assert main([*argv, "--quiet"]) == 0
    assert len(list(outdir.glob("*.png"))) == 3
    # the shipped name: its weights are in the package
    assert main(["denoise", str(image), "-o", str(tmp_path / "x.png"), "--model", "deform2d"]) == 0
    assert iio.imread(tmp_path / "x.png").shape == (96, 100, 3)


@pytest.mark.parametrize("name", ["deform3d", "deform2d"])
def test_tiled_equals_whole_for_deformable_models(name):
    from burstkpn.inference.tiling import tiled_forward

    torch.manual_seed(1)
    model = create_model(name, "tiny", max_offset=3.0).eval()
    with torch.no_grad():  # random offsets: make the sampling reach far
        model.offset_net.head.weight.normal_(0, 0.5)
        burst = torch.rand(1, 5, 1, 40, 44)
        nmap = torch.full((1, 1, 40, 44), 0.05)
        whole = model(burst, nmap).image
        tiled = tiled_forward(model, burst, nmap, tile=8, margin=model.tile_margin)
        short = tiled_forward(model, burst, nmap, tile=8, margin=2)
    assert (tiled - whole).abs().max() < 1e-5
    assert (short - whole).abs().max() > 1e-3  # the margin matters
