"""Deformable sampling ([DeformKernels] eq. 1-4, 6-7): convention, hand-computed values,
exactness, gradients (appendix A), torchvision agreement, precision."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from burstkpn.errors import InputError
from burstkpn.ops.deform import (
    DeformFilter,
    DeformSample,
    base_grid,
    deform_filter,
    deform_sample,
    group_filter,
    sampling_positions,
)
from tests.conftest import REPO, gen


def rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


def uniform(*shape: int, low: float, high: float, seed: int = 0) -> torch.Tensor:
    u = torch.rand(*shape, generator=gen(seed), dtype=torch.float64)
    return low + (high - low) * u


# --- the rigid grid -----------------------------------------------------------------------------


def test_base_grid_is_row_major_x_y_t():
    g = base_grid(3)
    assert g.shape == (9, 2)
    # tap n = i * 3 + j at (x, y) = (j - 1, i - 1)
    assert g[0].tolist() == [-1, -1] and g[1].tolist() == [0, -1] and g[3].tolist() == [-1, 0]
    assert g[4].tolist() == [0, 0] and g[8].tolist() == [1, 1]
    g3 = base_grid((3, 3, 3), dims=3)
    assert g3.shape == (27, 3)
    assert g3[:9, 2].eq(-1).all() and g3[9:18, 2].eq(0).all() and g3[18:, 2].eq(1).all()
    assert torch.equal(g3[9:18, :2], g)
    spread = base_grid(3, dims=3, time_positions=(-2, 0, 2))
    assert spread[:, 2].unique().tolist() == [-2, 0, 2]


def test_sampling_positions_add_pixel_base_and_offsets():
    off = rand(1, 9, 2, 4, 5)
    pos = sampling_positions(off, base_grid(3, dtype=torch.float64))
    # tap 0 of pixel (y=2, x=3) reads (x, y) = (3 - 1 + dx, 2 - 1 + dy)
    assert pos[0, 0, 0, 2, 3] == 2 + off[0, 0, 0, 2, 3]
    assert pos[0, 0, 1, 2, 3] == 1 + off[0, 0, 1, 2, 3]


# --- values by hand -----------------------------------------------------------------------------

IMAGE = torch.tensor([[1.0, 2.0], [3.0, 7.0]], dtype=torch.float64)  # X[y, x]


def sample_one(x: torch.Tensor, dx: float, dy: float, dt: float | None = None) -> float:
    """Sample a single tap (K = 1) at output pixel (0, 0) with the given offsets."""
    if dt is None:
        off = torch.zeros(1, 1, 2, *x.shape[-2:], dtype=torch.float64)
        off[0, 0, :, 0, 0] = torch.tensor([dx, dy])
        return deform_sample(x, off, 1)[0, 0, 0, 0, 0].item()
    off = torch.zeros(1, 1, 3, *x.shape[-2:], dtype=torch.float64)
    off[0, 0, :, 0, 0] = torch.tensor([dx, dy, dt])
    return deform_sample(x, off, 1)[0, 0, 0, 0, 0].item()


def test_bilinear_values_computed_by_hand():
    x = IMAGE.view(1, 1, 2, 2)
    assert sample_one(x, 0.5, 0.5) == pytest.approx((1 + 2 + 3 + 7) / 4)  # 3.25
    # x = 0.25: row 0 -> 1.25, row 1 -> 3 + 0.25 * 4 = 4; y = 0.5 -> 2.625
    assert sample_one(x, 0.25, 0.5) == pytest.approx(2.625)
    # x = 1 (clamped from 1.5): column 1 = (2, 7); y = 0.25 -> 2 + 0.25 * 5 = 3.25
    assert sample_one(x, 1.5, 0.25) == pytest.approx(3.25)
    # far outside: clamped to the corner (x, y) = (0, 1) -> 3 (replicate borders)
    assert sample_one(x, -1.0, 5.0) == 3.0
    # the same numbers from grid_sample
    off = torch.zeros(1, 1, 2, 2, 2, dtype=torch.float64)
    off[0, 0, :, 0, 0] = torch.tensor([0.25, 0.5])
    assert deform_sample(x, off, 1, backend="grid_sample")[0, 0, 0, 0, 0].item() == pytest.approx(
        2.625
    )


def test_trilinear_values_computed_by_hand():
    f0 = IMAGE
    clip = torch.stack([f0, f0 + 10, 2 * f0]).view(1, 3, 1, 2, 2)  # frames at t = -1, 0, 1
    # t = 0.5: halfway between frame 0 (centre 13.25) and frame +1 (centre 6.5)
    assert sample_one(clip, 0.5, 0.5, 0.5) == pytest.approx(0.5 * (13.25 + 6.5))
    # t = -1 exactly: the first frame, bilinear as above
    assert sample_one(clip, 0.25, 0.5, -1.0) == pytest.approx(2.625)
    # t = -0.25: 0.25 of frame -1 and 0.75 of frame 0 at (0, 0): 0.25 * 1 + 0.75 * 11 = 8.5
    assert sample_one(clip, 0.0, 0.0, -0.25) == pytest.approx(8.5)
    # before the first frame: clamped to it
    assert sample_one(clip, 1.0, 1.0, -3.0) == 7.0


# --- exactness ----------------------------------------------------------------------------------


def centre_only(b: int, taps: int, h: int, w: int, centre: int) -> torch.Tensor:
    weights = torch.zeros(b, taps, h, w)
    weights[:, centre] = 1.0
    return weights


@pytest.mark.parametrize("k", [1, 3, 5])
def test_zero_offsets_centre_only_kernel_returns_input_exactly_2d(k):
    b, c, h, w = 2, 3, 37, 45
    x = rand(b, c, h, w, seed=1, dtype=torch.float32)
    t = k * k
    out = deform_filter(x, torch.zeros(b, t, 2, h, w), centre_only(b, t, h, w, t // 2), k)
    assert out.dtype == torch.float32 and torch.equal(out, x)


@pytest.mark.parametrize("time_positions", [None, (-2.0, 0.0, 2.0)])
def test_zero_offsets_centre_only_kernel_returns_input_exactly_3d(time_positions):
    b, f, c, h, w = 2, 5, 2, 19, 23
    clip = rand(b, f, c, h, w, seed=2, dtype=torch.float32)
    t = 27
    off = torch.zeros(b, t, 3, h, w)
    out = deform_filter(
        clip, off, centre_only(b, t, h, w, 13), 3, time_positions=time_positions
    )  # tap 13: (x, y, t) = (0, 0, 0), the centre frame
    assert torch.equal(out, clip[:, 2])
    # and every temporal slice of the base grid reads its own frame exactly
    samples = deform_sample(clip, off, 3, time_positions=time_positions)
    times = (-1, 0, 1) if time_positions is None else (-2, 0, 2)
    for s, tt in enumerate(times):
        assert torch.equal(samples[:, :, s * 9 + 4], clip[:, 2 + tt])


def test_rigid_taps_read_shifted_pixels_with_replicated_borders():
    k, r = 5, 2
    b, c, h, w = 1, 2, 9, 11
    x = rand(b, c, h, w, seed=3)
    samples = deform_sample(x, torch.zeros(b, k * k, 2, h, w, dtype=torch.float64), k)
    for i in range(k):
        for j in range(k):
            for y in range(h):
                for xx in range(w):
                    yy, xs = min(max(y + i - r, 0), h - 1), min(max(xx + j - r, 0), w - 1)
                    assert torch.equal(samples[0, :, i * k + j, y, xx], x[0, :, yy, xs])


# --- against other implementations --------------------------------------------------------------


@pytest.mark.parametrize("dims", [2, 3])
def test_gather_and_grid_sample_backends_agree(dims):
    b, c, h, w = 2, 3, 7, 10
    if dims == 2:
        x, k = rand(b, c, h, w, seed=4), 3
        t = 9
    else:
        x, k = rand(b, 5, c, h, w, seed=4), 3
        t = 27
    off = 3 * rand(b, t, dims, h, w, seed=5)  # many taps leave the image: border clamping
    x.requires_grad_()
    off.requires_grad_()
    a = deform_sample(x, off, k)
    g = deform_sample(x, off, k, backend="grid_sample")
    torch.testing.assert_close(a, g, rtol=0, atol=1e-12)
    grad_out = rand(*a.shape, seed=6)
    ga = torch.autograd.grad(a, (x, off), grad_out)
    gg = torch.autograd.grad(g, (x, off), grad_out)
    for u, v in zip(ga, gg, strict=True):
        torch.testing.assert_close(u, v, rtol=0, atol=1e-10)


@pytest.mark.parametrize("k", [3, 5])
def test_matches_torchvision_deform_conv2d(k):
    """One input channel, unit weights, the dynamic weights as the modulation mask: then
    ``deform_conv2d`` is eq. (1). torchvision's offsets are ``(dy, dx)`` per tap, interleaved,
    and it reads zeros outside the image, so the positions are kept inside it."""
    tv = pytest.importorskip("torchvision.ops")
    b, h, w, r = 2, 12, 15, k // 2
    x = rand(b, 1, h, w, seed=7)
    t = k * k
    target_x = uniform(b, t, h, w, low=0.01, high=w - 1.01, seed=8)
    target_y = uniform(b, t, h, w, low=0.01, high=h - 1.01, seed=9)
    base = base_grid(k, dtype=torch.float64)
    xs = torch.arange(w, dtype=torch.float64).view(1, 1, 1, w)
    ys = torch.arange(h, dtype=torch.float64).view(1, 1, h, 1)
    dx = target_x - xs - base[:, 0].view(1, t, 1, 1)
    dy = target_y - ys - base[:, 1].view(1, t, 1, 1)
    offsets = torch.stack([dx, dy], dim=2)  # ours: (B, T, (dx, dy), H, W)
    weights = rand(b, t, h, w, seed=10)
    ours = deform_filter(x, offsets, weights, k)
    tv_offset = torch.stack([dy, dx], dim=2).reshape(b, 2 * t, h, w)  # (dy, dx) interleaved
    theirs = tv.deform_conv2d(
        x, tv_offset, torch.ones(1, 1, k, k, dtype=torch.float64), padding=(r, r), mask=weights
    )
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10)


# --- gradients (appendix A, eq. 12-15) ----------------------------------------------------------


@pytest.mark.parametrize("backend", ["gather", "grid_sample"])
def test_gradcheck_bilinear(backend):
    x = rand(1, 2, 5, 6, seed=11).requires_grad_()
    # fractional positions, some outside the image (zero gradient there)
    off = (1.7 * rand(1, 9, 2, 5, 6, seed=12)).requires_grad_()

    def fn(a, o):
        return deform_sample(a, o, 3, backend=backend)

    assert torch.autograd.gradcheck(fn, (x, off))


def test_gradcheck_trilinear():
    clip = rand(1, 3, 1, 3, 4, seed=13).requires_grad_()
    # one tap, the full Jacobian in the image and the (x, y, t) offsets
    off = (1.3 * rand(1, 1, 3, 3, 4, seed=14)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, o: deform_sample(a, o, 1), (clip, off))
    # a 3x3x3 kernel with the dynamic weights (eq. 6) and several groups (eq. 10)
    off = (1.3 * rand(1, 27, 3, 3, 4, seed=14)).requires_grad_()
    weights = rand(1, 27, 3, 4, seed=15).requires_grad_()

    def fn(a, o, wt):
        return group_filter(deform_sample(a, o, 3), wt, 3)

    assert torch.autograd.gradcheck(fn, (clip, off, weights), fast_mode=True)


def test_gradcheck_size_one_axes():
    x = rand(1, 1, 1, 4, seed=16).requires_grad_()  # H = 1
    off = (0.8 * rand(1, 1, 2, 1, 4, seed=17)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, o: deform_sample(a, o, 1), (x, off))


def test_clamped_coordinates_get_no_gradient():
    x = rand(1, 1, 4, 4, seed=18)
    off = torch.zeros(1, 1, 2, 4, 4, dtype=torch.float64)
    off[..., 0, :, :] = -10.0  # every x far left of the image
    off[..., 1, :, :] = 0.3
    off.requires_grad_()
    out = deform_sample(x, off, 1)
    (grad,) = torch.autograd.grad(out.sum(), off)
    assert grad[:, :, 0].eq(0).all() and grad[:, :, 1].ne(0).any()


# --- groups, modules, precision, errors ---------------------------------------------------------


def test_group_filter_groups_sum_to_the_full_kernel():
    samples = rand(2, 3, 27, 5, 6, seed=19)
    weights = rand(2, 27, 5, 6, seed=20)
    full = group_filter(samples, weights, 1)
    per = group_filter(samples, weights, 3)
    assert per.shape == (2, 3, 3, 5, 6)
    torch.testing.assert_close(per.mean(1), full[:, 0], rtol=0, atol=1e-12)
    # eq. (10): Y_i = s * sum over group i
    want = 3 * (samples[:, :, 9:18] * weights[:, None, 9:18]).sum(2)
    torch.testing.assert_close(per[:, 1], want, rtol=0, atol=1e-12)
    # per-channel weights
    wc = rand(2, 3, 27, 5, 6, seed=21)
    torch.testing.assert_close(
        group_filter(samples, wc)[:, 0], (samples * wc).sum(2), rtol=0, atol=1e-12
    )


def test_modules():
    x = rand(1, 1, 6, 7, seed=22)
    off = rand(1, 9, 2, 6, 7, seed=23)
    wt = rand(1, 9, 6, 7, seed=24)
    assert torch.equal(DeformSample(3)(x, off), deform_sample(x, off, 3))
    assert torch.equal(DeformFilter(3)(x, off, wt), deform_filter(x, off, wt, 3))
    assert "grid_sample" in repr(DeformSample(3, backend="grid_sample"))


def test_autocast_bfloat16_samples_in_float32():
    x = rand(2, 1, 16, 20, seed=25, dtype=torch.float32)
    off = 2 * rand(2, 9, 2, 16, 20, seed=26, dtype=torch.float32)
    ref = deform_sample(x, off, 3)
    for backend in ("gather", "grid_sample"):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = deform_sample(x.bfloat16(), off.bfloat16(), 3, backend=backend)
        assert out.dtype == torch.float32
        assert (out - ref).abs().max() < 0.1  # only the bf16 rounding of the inputs


def test_bfloat16_autocast_regression_shape_does_not_crash():
    """grid_sample in bfloat16 crashed this CPU (segmentation fault) for 8x1x256x256 with a random
    grid; the op computes in float32 under autocast. Run in a subprocess so a crash fails this
    test instead of killing pytest."""
    code = textwrap.dedent(
        """
        import torch
        from burstkpn.ops.deform import deform_sample
        g = torch.Generator().manual_seed(0)
        x = torch.rand(8, 1, 256, 256, generator=g).bfloat16()
        off = (torch.rand(8, 9, 2, 256, 256, generator=g) * 40 - 20).bfloat16()
        for backend in ("grid_sample", "gather"):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = deform_sample(x, off, 3, backend=backend)
            assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())
        print("ok")
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert res.returncode == 0, f"exit {res.returncode}: {res.stderr[-2000:]}"
    assert res.stdout.strip() == "ok"


def test_bad_inputs():
    x = rand(1, 1, 6, 7)
    with pytest.raises(InputError, match="offsets of shape"):
        deform_sample(x, rand(1, 9, 2, 6, 6), 3)
    with pytest.raises(InputError, match="kernel size"):
        deform_sample(x, rand(1, 4, 2, 6, 7), 2)
    with pytest.raises(InputError, match="backend"):
        deform_sample(x, rand(1, 9, 2, 6, 7), 3, backend="cuda")
    with pytest.raises(InputError, match="odd number of frames"):
        deform_sample(rand(1, 4, 1, 6, 7), rand(1, 27, 3, 6, 7), 3)
    with pytest.raises(InputError, match="image"):
        deform_sample(rand(6, 7), rand(1, 9, 2, 6, 7), 3)
    with pytest.raises(InputError, match="floating"):
        deform_sample(torch.ones(1, 1, 6, 7, dtype=torch.long), rand(1, 9, 2, 6, 7), 3)
    with pytest.raises(InputError, match="groups"):
        group_filter(rand(1, 1, 9, 6, 7), rand(1, 9, 6, 7), 2)
    with pytest.raises(InputError, match="weights of shape"):
        group_filter(rand(1, 1, 9, 6, 7), rand(1, 8, 6, 7))
    with pytest.raises(InputError, match="time positions"):
        base_grid(3, dims=3, time_positions=(0.0, 1.0))
