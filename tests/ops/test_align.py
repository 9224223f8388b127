from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import shift as nd_shift

from burstkpn.ops.align import apply_shifts, cardinal_cubic, estimate_shifts, spline_shift
from tests.conftest import gen


def test_cardinal_spline_interpolates():
    assert np.allclose(cardinal_cubic(np.arange(-5.0, 6.0)), np.eye(11)[5], atol=1e-12)
    t = np.linspace(-0.5, 0.5, 11)
    # a constant is reproduced: the taps of every fractional offset sum to 1
    assert np.allclose(cardinal_cubic(t[:, None] - np.arange(-14, 15)).sum(1), 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "shift", [(0.3, -0.7), (3.25, -5.5), (-7.0, 2.75), (0.0, 1.5), (2.0, 0.0), (-0.5, 0.5)]
)
def test_spline_shift_matches_scipy_order3_mirror(shift):
    """The float32 torch FIR shift equals scipy's float64 order-3 mirror shift within 1e-5 on
    [0, 1] images, noise (the hardest case for the truncated filter) and smooth ones."""
    g = gen(1)
    noise = torch.rand(2, 45, 67, generator=g)
    yy, xx = torch.meshgrid(torch.arange(45.0), torch.arange(67.0), indexing="ij")
    smooth = (0.5 + 0.4 * torch.sin(xx / 4) * torch.cos(yy / 6))[None]
    for img in (noise, smooth):
        got = spline_shift(img, shift)
        ref = np.stack([nd_shift(p.double().numpy(), shift, order=3, mode="mirror") for p in img])
        assert got.dtype == torch.float32
        assert np.abs(got.double().numpy() - ref).max() < 1e-5, shift


def test_apply_shifts_leaves_zero_shifts_and_falls_back_for_huge_ones():
    frames = torch.rand(3, 1, 20, 24, generator=gen(2))
    shifts = np.array([[0.0, 0.0], [0.5, -1.25], [30.0, 0.5]])  # 30 px: beyond one mirror
    out = apply_shifts(frames, shifts)
    assert torch.equal(out[0], frames[0])
    for i in (1, 2):
        ref = nd_shift(frames[i, 0].double().numpy(), shifts[i], order=3, mode="mirror")
        assert np.abs(out[i, 0].double().numpy() - ref).max() < 1e-5


def test_shifts_measured_on_the_central_window():
    """A global shift measured on the central window equals the whole-frame measurement (and
    the truth); frames no larger than the window are used whole."""
    g = torch.Generator().manual_seed(3)
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 340, 300, generator=g), 5, 1, 2)[0]
    truth = np.array([[0.0, 0.0], [2.0, -3.0], [-4.0, 1.0]])
    frames = torch.stack([torch.roll(base, (-int(dy), -int(dx)), (1, 2)) for dy, dx in truth])
    whole = estimate_shifts(frames, window=None)
    central = estimate_shifts(frames, window=128)
    assert np.abs(whole - truth).max() < 0.06 and np.abs(central - truth).max() < 0.06
    assert np.array_equal(estimate_shifts(frames, window=512), whole)


def test_shift_estimation_restores_the_thread_pools():
    """estimate_shifts runs BLAS on one thread (OpenBLAS's spinning pool slowed the model run
    after it) and hands the process's BLAS pools back as it found them, on small and large
    planes; the shifts are those of a run without the limit."""
    from threadpoolctl import threadpool_info, threadpool_limits

    g = torch.Generator().manual_seed(5)
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    for size in (96, 600):
        base = torch.nn.functional.avg_pool2d(torch.rand(1, 1, size, size, generator=g), 5, 1, 2)
        frames = torch.stack([base[0], torch.roll(base[0], (1, -2), (1, 2))])
        shifts = estimate_shifts(frames)
        assert np.abs(shifts[1] - [-1.0, 2.0]).max() < 0.06
        assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before
    with threadpool_limits(limits=1, user_api="blas"):
        assert np.array_equal(estimate_shifts(frames), shifts)


def test_shift_window_on_a_mirrored_canvas():
    """The 12 MP profiling burst is a photo mirrored into a large canvas (period 2x its size);
    the default window must not hold a whole number of periods (an ambiguous peak)."""
    from burstkpn.ops.align import SHIFT_WINDOW

    for period in (512, 1024, 2048, 4096):
        assert SHIFT_WINDOW % period != 0


def test_subpixel_shifts_on_the_window():
    """Sub-pixel shifts measured on a central window of a photo-like frame are as accurate as
    on the whole frame (no bias towards 0 at this window size)."""
    from skimage import data

    img = torch.from_numpy(data.astronaut().astype(np.float32) / 255).permute(2, 0, 1)
    canvas = torch.from_numpy(np.pad(img.numpy(), ((0, 0), (300, 300), (250, 250)), "symmetric"))
    truth = np.array([[0.0, 0.0], [0.35, -1.6], [-2.45, 0.8]])
    frames = apply_shifts(canvas[None].expand(3, -1, -1, -1).clone(), -truth)
    for window in (None, 700):
        assert np.abs(estimate_shifts(frames, window=window) - truth).max() <= 0.1, window


# ---------------------------------------------------------------- whole-pixel alignment
def test_mirror_index_folds_any_distance_like_scipy_mirror():
    from scipy.ndimage import shift as nd_shift

    from burstkpn.ops.align import mirror_index

    line = np.arange(5.0)
    for s in (-13, -4, -1, 0, 2, 7, 12):
        expected = nd_shift(line, s, order=0, mode="mirror")
        got = line[mirror_index(torch.arange(5) - s, 5).numpy()]
        assert np.array_equal(got, expected), s
    assert mirror_index(torch.tensor([-3, 0, 4]), 1).tolist() == [0, 0, 0]


def test_shift_whole_pixels_copies_pixels_as_scipy_and_the_spline_shift_do():
    from scipy.ndimage import shift as nd_shift

    from burstkpn.ops.align import apply_shifts, shift_whole_pixels

    frames = torch.rand(3, 2, 40, 36, generator=torch.Generator().manual_seed(3))
    shifts = np.array([[0.0, 0.0], [3.4, -2.6], [-7.0, 5.0]])
    out = shift_whole_pixels(frames, shifts)
    rounded = np.rint(shifts)
    for f, s, o in zip(frames, rounded, out, strict=True):
        for p, q in zip(f, o, strict=True):
            assert np.array_equal(q.numpy(), nd_shift(p.numpy(), s, order=0, mode="mirror"))
    # a whole-pixel count is what the cubic spline gives for it too
    assert torch.allclose(out, apply_shifts(frames, rounded), atol=1e-5)
    assert torch.equal(out[0], frames[0])  # unshifted frames are untouched
    # shifts of half a frame or more fold back more than once (the indexed path)
    small = frames[:2, :, :12, :10]
    far = np.array([[9.0, -8.0], [-13.0, 21.0]])
    for f, s, o in zip(small, far, shift_whole_pixels(small, far), strict=True):
        for p, q in zip(f, o, strict=True):
            assert np.array_equal(q.numpy(), nd_shift(p.numpy(), s, order=0, mode="mirror"))
    inplace = frames.clone()
    assert torch.equal(shift_whole_pixels(inplace, shifts, inplace=True), out)
    assert torch.equal(inplace, out)
    assert torch.equal(frames, frames.clone())  # not in place by default
    # the noise of a shifted frame keeps its level (a copy), unlike an interpolating shift
    noise = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(4))
    moved = shift_whole_pixels(noise, np.array([[0.0, 0.0], [0.4, 0.4]]))
    assert torch.equal(moved[1], noise[1])  # rounds to no move
    half = apply_shifts(noise, np.array([[0.0, 0.0], [0.5, 0.5]]))
    assert half[1].std() < 0.9 * noise[1].std()


def test_align_whole_pixels_finds_and_undoes_whole_pixel_motion():
    from burstkpn.ops.align import align_whole_pixels, shift_whole_pixels

    g = torch.Generator().manual_seed(5)
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 96, 96, generator=g), 3, 1, 1)[0]
    truth = np.array([[0, 0], [4, -3], [-6, 2], [1, 7]], dtype=np.float64)
    # frame i shows the scene moved by -truth[i]; moving it by truth[i] brings it back
    frames = torch.stack([shift_whole_pixels(base[None], -t[None])[0] for t in truth])
    aligned, shifts = align_whole_pixels(frames[None])
    assert shifts.shape == (1, 4, 2)
    assert np.array_equal(shifts[0], truth)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    for frame in aligned[0]:
        assert torch.equal(frame[inner[1:]], base[inner[1:]])
    one, one_shifts = align_whole_pixels(frames)  # one burst (N, C, H, W)
    assert one.shape == frames.shape and one_shifts.shape == (4, 2)
