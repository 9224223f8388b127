from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from burstkpn.data.degrade.synth import (
    BurstGeometry,
    MotionConfig,
    crop_burst,
    required_size,
    resolve_mode,
    sample_offsets,
    synthesize_burst,
)
from burstkpn.errors import InputError
from tests.conftest import gen


def _expected_large_fraction(num_frames: int, lam: float = 1.5) -> float:
    # E[min(n / N, 1)] for n ~ Poisson(lam)
    total, pmf = 0.0, math.exp(-lam)
    for n in range(200):
        total += pmf * min(n / num_frames, 1.0)
        pmf *= lam / (n + 1)
    return total


def test_offsets_follow_the_poisson_rule():
    n_bursts, num_frames = 20_000, 8
    g = gen(0)
    flags, offs = [], []
    for _ in range(n_bursts):
        o, large = sample_offsets(num_frames, g)
        assert o[0].tolist() == [0, 0] and not large[0]
        flags.append(large[1:])
        offs.append(o[1:])
    flags = torch.stack(flags).double()
    offs = torch.stack(offs)
    p = _expected_large_fraction(num_frames)
    # frames of one burst share n, so use per-burst means for the standard error
    per_burst = flags.mean(1)
    se = per_burst.std().item() / math.sqrt(n_bursts)
    assert abs(per_burst.mean().item() - p) < 4 * se, (per_burst.mean().item(), p)
    small = offs[flags == 0]
    large = offs[flags == 1]
    assert small.abs().max() <= 8 and large.abs().max() <= 64
    assert large.abs().max() > 60  # the large range is really used
    # small offsets are uniform over the 17 integers of [-8, 8]
    counts = torch.bincount((small + 8).flatten(), minlength=17).double()
    expected = counts.sum() / 17
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 45  # 16 degrees of freedom: p ~ 1e-4


def _image(h: int, w: int, c: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(c, h, w, generator=gen(seed), dtype=torch.float64)


def test_full_mode_is_the_paper_recipe_by_hand():
    img = _image(400, 420)
    geom = BurstGeometry(
        "full",
        70,
        80,
        64,
        4,
        torch.tensor([[0, 0], [5, -3], [-64, 64]]),
        torch.zeros(3, dtype=bool),
    )
    burst = crop_burst(img, geom)
    a = img.numpy()
    for i, (dy, dx) in enumerate(geom.offsets.tolist()):
        win = a[:, 70 + dy : 70 + dy + 256, 80 + dx : 80 + dx + 256]
        ref = win.reshape(3, 64, 4, 64, 4).mean(axis=(2, 4))  # 4x box downsample
        np.testing.assert_allclose(burst[i].numpy(), ref, atol=1e-12)


def test_subpixel_integer_offsets_are_exact_crops():
    img = _image(80, 90)
    offsets = torch.tensor([[0, 0], [4, -8], [-64, 64], [12, 0]])
    geom = BurstGeometry("subpixel", 30, 32, 20, 4, offsets, torch.zeros(4, dtype=torch.bool))
    burst = crop_burst(img, geom)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        y, x = 30 + dy // 4, 32 + dx // 4
        assert torch.equal(burst[i], img[:, y : y + 20, x : x + 20])


def test_subpixel_quarter_pixel_shifts_of_a_band_limited_image_are_exact():
    # a smooth image: frame i must equal the image sampled at p + d_i / 4
    h, w = 90, 100
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )

    def scene(y, x):
        return 0.5 + 0.2 * torch.sin(0.31 * x + 0.2 * y) + 0.1 * torch.cos(0.17 * y - 0.05 * x)

    img = scene(yy, xx)[None]
    offsets = torch.tensor([[0, 0], [1, -3], [-2, 5], [7, 2]])
    geom = BurstGeometry("subpixel", 30, 35, 24, 4, offsets, torch.zeros(4, dtype=torch.bool))
    burst = crop_burst(img, geom)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        ys, xs = yy[30:54, 35:59] + dy / 4, xx[30:54, 35:59] + dx / 4
        assert (burst[i, 0] - scene(ys, xs)).abs().max() < 1e-3


@pytest.mark.parametrize("shape,mode", [((700, 720), "full"), ((321, 481), "subpixel")])
def test_reference_is_aligned_with_clean_target(shape, mode):
    img = _image(*shape)
    burst = synthesize_burst(img, gen(3), patch_size=128, noise=(0.0, 0.0))
    geom = burst.geometry[0]
    assert geom.mode == mode
    assert torch.equal(burst.noisy[:, 0], burst.clean)  # no noise: frame 0 is the target
    if mode == "full":
        win = img[:, geom.top : geom.top + 512, geom.left : geom.left + 512]
        expect = F.avg_pool2d(win[None], 4)
    else:
        expect = img[None, :, geom.top : geom.top + 128, geom.left : geom.left + 128]
    assert torch.allclose(burst.clean, expect, atol=1e-12)


def test_shapes_and_noise_statistics():
    img = torch.full((3, 300, 300), 0.2)
    burst = synthesize_burst(img, gen(4), num_frames=8, patch_size=128, noise="gain2")
    assert burst.noisy.shape == (1, 8, 3, 128, 128)
    assert burst.clean.shape == burst.noise_map.shape == (1, 3, 128, 128)
    expected = 0.02**2 + 4.3e-3 * 0.2
    assert abs((burst.noisy - 0.2).var().item() / expected - 1) < 0.02
    # noise map is computed from the noisy reference (eq. 1)
    ref = torch.sqrt(0.02**2 + 4.3e-3 * burst.noisy[:, 0].clamp_min(0))
    assert torch.allclose(burst.noise_map, ref)


def test_same_seed_same_burst_different_seed_different():
    img = _image(320, 330)
    a = synthesize_burst(img, gen(7), patch_size=64)
    b = synthesize_burst(img, gen(7), patch_size=64)
    c = synthesize_burst(img, gen(8), patch_size=64)
    assert torch.equal(a.noisy, b.noisy) and torch.equal(a.sigma_r, b.sigma_r)
    assert not torch.equal(a.noisy, c.noisy)
    assert a.geometry[0].to_dict() == b.geometry[0].to_dict()


def test_too_small_images_raise():
    with pytest.raises(InputError, match="smaller than the patch"):
        synthesize_burst(_image(100, 300), gen(0), patch_size=128)
    with pytest.raises(InputError, match="too small for a full-resolution"):
        resolve_mode(400, 400, 128, "full")
    with pytest.raises(InputError, match="unknown synthesis mode"):
        resolve_mode(400, 400, 128, "bogus")
    assert resolve_mode(640, 640, 128) == "full"
    assert resolve_mode(639, 640, 128) == "subpixel"
    assert required_size("subpixel", 128, MotionConfig()) == 128 + 2 * (16 + 8)


@pytest.mark.parametrize("mode", ["subpixel", "full"])
def test_smallest_allowed_image_never_reads_outside(mode):
    side = required_size(mode, 16)
    img = _image(side, side)
    for seed in range(300):  # every window position and offset must stay inside
        synthesize_burst(img, gen(seed), patch_size=16, num_frames=8, mode=mode, noise="gain1")


def test_local_motion_pastes_a_moving_object_and_leaves_the_rest():
    """A neighbour with a moving object equals the burst without it outside its rectangle and
    holds the frame's own content from the source position inside; prob 0 draws nothing."""
    import dataclasses

    from burstkpn.data.degrade.synth import ALIGNED_MOTION, sample_geometry

    img = torch.rand(3, 200, 200, generator=torch.Generator().manual_seed(0))
    motion = dataclasses.replace(ALIGNED_MOTION, local_prob=1.0)
    geom = sample_geometry(
        200,
        200,
        torch.Generator().manual_seed(3),
        num_frames=6,
        patch_size=32,
        mode="subpixel",
        motion=motion,
    )
    assert geom.local.shape == (6, 6) and (geom.local[0] == 0).all()
    assert (geom.local[1:, 2:4] >= 4).all() and (geom.local[1:, 2:4] <= 16).all()
    moved = crop_burst(img, geom)
    plain = crop_burst(img, dataclasses.replace(geom, local=None))
    assert torch.equal(moved[0], plain[0])
    for k in range(1, 6):
        t, left, h, w, st, sl = geom.local[k].tolist()
        assert t + h <= 32 and left + w <= 32 and st + h <= 32 and sl + w <= 32
        assert torch.equal(
            moved[k, :, t : t + h, left : left + w], plain[k, :, st : st + h, sl : sl + w]
        )
        outside = torch.ones(32, 32, dtype=torch.bool)
        outside[t : t + h, left : left + w] = False
        assert torch.equal(moved[k][:, outside], plain[k][:, outside])
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = sample_geometry(200, 200, g1, patch_size=32, mode="subpixel", motion=ALIGNED_MOTION)
    b = sample_geometry(
        200,
        200,
        g2,
        patch_size=32,
        mode="subpixel",
        motion=dataclasses.replace(ALIGNED_MOTION, local_prob=0.0),
    )
    assert a.local is None and b.local is None and torch.equal(a.offsets, b.offsets)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))


def test_static_bursts_hold_every_frame_in_register():
    """``static_prob``: with probability 1 every neighbour sits at offset zero and the cropped
    frames equal the reference; at 0.5 about half the bursts are static and the moving ones keep
    the offsets drawn without the option (the extra draw comes after them)."""
    import dataclasses

    from burstkpn.data.degrade.synth import ALIGNED_MOTION, sample_geometry, sample_offsets

    img = torch.rand(3, 200, 200, generator=torch.Generator().manual_seed(0))
    motion = dataclasses.replace(ALIGNED_MOTION, static_prob=1.0)
    g = torch.Generator().manual_seed(5)
    geom = sample_geometry(200, 200, g, num_frames=6, patch_size=32, mode="subpixel", motion=motion)
    assert not geom.offsets.any() and not geom.large.any()
    frames = crop_burst(img, geom)
    for k in range(1, 6):
        torch.testing.assert_close(frames[k], frames[0], atol=1e-5, rtol=0)

    half = dataclasses.replace(ALIGNED_MOTION, static_prob=0.5)
    g_half, g_plain = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    static = 0
    for _ in range(400):
        offsets, large = sample_offsets(8, g_half, half)
        ref, ref_large = sample_offsets(8, g_plain, ALIGNED_MOTION)
        torch.rand(1, generator=g_plain)  # the static draw, to stay in step
        if not offsets.any() and ref.any():
            static += 1
        else:
            assert torch.equal(offsets, ref) and torch.equal(large, ref_large)
    assert 160 < static < 240
