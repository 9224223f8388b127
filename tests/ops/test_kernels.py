"""Per-pixel kernel application ([AME-KPN] eq. (4)): convention, exactness, gradients, MKPN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from burstkpn.ops import (
    KernelApply,
    apply_kernels,
    apply_multisize_kernels,
    fuse_multisize_kernels,
)
from tests.conftest import gen

MKPN_SIZES = (1, 3, 5, 7, 9)


def reference(frames: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Naive eq. (4) with ``F.unfold`` (whose patch order is row-major over the K x K window):
    materialises every shifted copy, differentiable by plain autograd."""
    b, n, c, h, w = frames.shape
    shared = kernels.ndim == 5
    taps = kernels.shape[2 if shared else 3]
    k = int(round(taps**0.5))
    r = k // 2
    mode = "reflect" if h > r and w > r else "replicate"
    x = frames.reshape(b * n * c, 1, h, w)
    if r:
        x = F.pad(x, (r, r, r, r), mode=mode)
    patches = F.unfold(x, k).reshape(b, n, c, taps, h, w)
    kern = kernels.unsqueeze(2) if shared else kernels
    return (patches * kern).sum(3)


def rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


def delta_kernels(lead: tuple[int, ...], k: int, tap: int, h: int, w: int) -> torch.Tensor:
    kern = torch.zeros(*lead, k * k, h, w, dtype=torch.float64)
    kern[..., tap, :, :] = 1.0
    return kern


def shifted_interior(frames: torch.Tensor, dy: int, dx: int, m: int) -> torch.Tensor:
    """``frames[..., y + dy, x + dx]`` for ``m <= y < H - m``, ``m <= x < W - m``."""
    h, w = frames.shape[-2:]
    return frames[..., m + dy : h - m + dy, m + dx : w - m + dx]


# --- convention ---------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [3, 5, 21])
@pytest.mark.parametrize("per_channel", [False, True])
def test_identity_kernel_returns_frames_exactly(k, per_channel):
    b, n, c, h, w = 2, 3, 2, 23, 26
    frames = rand(b, n, c, h, w, dtype=torch.float32)
    lead = (b, n, c) if per_channel else (b, n)
    centre = (k // 2) * k + k // 2
    kernels = delta_kernels(lead, k, centre, h, w).float()
    out = apply_kernels(frames, kernels)
    assert out.dtype == torch.float32
    assert torch.equal(out, frames)


def test_identity_kernel_on_tiny_frames_uses_replicate_padding():
    frames = rand(1, 2, 1, 3, 4)
    kernels = delta_kernels((1, 2), 7, 3 * 7 + 3, 3, 4)
    assert torch.equal(apply_kernels(frames, kernels), frames)
    # tap (0, 0) reads offset (-3, -3): clamped to the first row and column
    out = apply_kernels(frames, delta_kernels((1, 2), 7, 0, 3, 4))
    assert torch.equal(out, frames[..., :1, :1].expand_as(frames))


@pytest.mark.parametrize("k", [3, 5, 7])
def test_box_kernel_matches_scipy_uniform_filter_mirror(k):
    b, n, c, h, w = 1, 2, 3, 15, 18
    frames = rand(b, n, c, h, w, seed=1)
    kernels = torch.full((b, n, k * k, h, w), 1.0 / k**2, dtype=torch.float64)
    out = apply_kernels(frames, kernels).numpy()
    expected = np.empty_like(out)
    for idx in np.ndindex(b, n, c):
        expected[idx] = ndimage.uniform_filter(frames[idx].numpy(), size=k, mode="mirror")
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("per_channel", [False, True])
def test_single_tap_reads_offset_i_minus_r_j_minus_r(per_channel):
    k, r = 5, 2
    b, n, c, h, w = 1, 2, 2, 11, 13
    frames = rand(b, n, c, h, w, seed=2)
    lead = (b, n, c) if per_channel else (b, n)
    for i in range(k):
        for j in range(k):
            out = apply_kernels(frames, delta_kernels(lead, k, i * k + j, h, w))
            # interior: out[y, x] = frames[y + i - r, x + j - r], written out index by index
            for y in range(r, h - r):
                for x in range(r, w - r):
                    assert torch.equal(out[..., y, x], frames[..., y + i - r, x + j - r])
    # border, by hand: tap (0, 0) at (0, 0) reads (-2, -2), reflected (no edge repeat) to (2, 2);
    # tap (4, 1) at (h - 1, 0) reads (h + 1, -1), reflected to (h - 3, 1)
    out = apply_kernels(frames, delta_kernels(lead, k, 0, h, w))
    assert torch.equal(out[..., 0, 0], frames[..., 2, 2])
    out = apply_kernels(frames, delta_kernels(lead, k, 4 * k + 1, h, w))
    assert torch.equal(out[..., h - 1, 0], frames[..., h - 3, 1])


# --- against a naive reference ------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("per_channel", [False, True])
def test_matches_reference_values_and_gradients(k, per_channel):
    b, n, c, h, w = 2, 3, 3, 13, 17
    frames = rand(b, n, c, h, w, seed=3).requires_grad_()
    shape = (b, n, c, k * k, h, w) if per_channel else (b, n, k * k, h, w)
    kernels = rand(*shape, seed=4).requires_grad_()
    grad_out = rand(b, n, c, h, w, seed=5)

    out = apply_kernels(frames, kernels)
    ref = reference(frames, kernels)
    assert out.shape == (b, n, c, h, w) and out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)

    got = torch.autograd.grad(out, (frames, kernels), grad_out)
    want = torch.autograd.grad(ref, (frames, kernels), grad_out)
    for g, e in zip(got, want, strict=True):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=0, atol=1e-12)


def test_non_contiguous_inputs_and_partial_gradients():
    b, n, c, h, w, k = 1, 2, 2, 9, 11, 3
    frames = rand(b, n, c, w, h, seed=6).transpose(-1, -2).requires_grad_()
    kernels = rand(b, n, h, w, k * k, seed=7).permute(0, 1, 4, 2, 3)
    assert not frames.is_contiguous() and not kernels.is_contiguous()
    out = apply_kernels(frames, kernels)
    torch.testing.assert_close(out, reference(frames, kernels), rtol=0, atol=1e-12)
    (grad,) = torch.autograd.grad(out.square().sum(), frames)
    (want,) = torch.autograd.grad(reference(frames, kernels).square().sum(), frames)
    torch.testing.assert_close(grad, want, rtol=0, atol=1e-12)

    # gradient for the kernels only
    kernels.requires_grad_()
    out = apply_kernels(frames.detach(), kernels)
    (grad,) = torch.autograd.grad(out.sum(), kernels)
    (want,) = torch.autograd.grad(reference(frames.detach(), kernels).sum(), kernels)
    torch.testing.assert_close(grad, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "shape, k",
    [
        ((1, 2, 2, 6, 7), 3),  # reflect padding
        ((1, 1, 1, 5, 6), 5),  # reflect padding with r = 2
        ((1, 1, 2, 2, 3), 5),  # replicate fallback (H <= r)
    ],
)
@pytest.mark.parametrize("per_channel", [False, True])
def test_gradcheck(shape, k, per_channel):
    b, n, c, h, w = shape
    frames = rand(*shape, seed=8).requires_grad_()
    kshape = (b, n, c, k * k, h, w) if per_channel else (b, n, k * k, h, w)
    kernels = rand(*kshape, seed=9).requires_grad_()
    # the full Jacobian for K = 3; random projections of it (fast mode) for the larger kernels
    assert torch.autograd.gradcheck(apply_kernels, (frames, kernels), fast_mode=k > 3)


# --- MKPN ---------------------------------------------------------------------------------------


def mkpn_kernels(lead, h, w, fill=None):
    """Zero kernels for every MKPN size, with ``fill = (size, tensor)`` put in place."""
    kernels = [torch.zeros(*lead, s * s, h, w, dtype=torch.float64) for s in MKPN_SIZES]
    if fill is not None:
        s, value = fill
        kernels[MKPN_SIZES.index(s)] = value
    return kernels


@pytest.mark.parametrize("s", MKPN_SIZES)
def test_mkpn_each_size_reads_exactly_its_centred_square_window(s):
    b, n, h, w = 1, 2, 15, 16
    frames = rand(b, n, 1, h, w, seed=10)
    kmax = max(MKPN_SIZES)
    o = (kmax - s) // 2
    for i in range(s):
        for j in range(s):
            delta = delta_kernels((b, n), s, i * s + j, h, w)
            kernels = mkpn_kernels((b, n), h, w, (s, delta))
            fused = fuse_multisize_kernels(kernels, MKPN_SIZES)
            # the fused 9x9 kernel has its single 1 at the centred position of tap (i, j)
            expected = torch.zeros(b, n, kmax * kmax, h, w, dtype=torch.float64)
            expected[:, :, (i + o) * kmax + (j + o)] = 1
            assert torch.equal(fused, expected)
            out = apply_multisize_kernels(frames, kernels, MKPN_SIZES)
            want = shifted_interior(frames, i - s // 2, j - s // 2, kmax // 2)
            m = kmax // 2
            assert torch.equal(out[..., m : h - m, m : w - m], want)


@pytest.mark.parametrize("s", MKPN_SIZES)
def test_mkpn_box_kernel_matches_uniform_filter(s):
    b, n, c, h, w = 1, 2, 2, 14, 17
    frames = rand(b, n, c, h, w, seed=11)
    box = torch.full((b, n, c, s * s, h, w), 1.0 / s**2, dtype=torch.float64)
    out = apply_multisize_kernels(frames, mkpn_kernels((b, n, c), h, w, (s, box))).numpy()
    expected = np.empty_like(out)
    for idx in np.ndindex(b, n, c):
        expected[idx] = ndimage.uniform_filter(frames[idx].numpy(), size=s, mode="mirror")
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("per_channel", [False, True])
def test_mkpn_equals_sum_of_separate_applications_with_gradients(per_channel):
    b, n, c, h, w = 1, 2, 2, 12, 13
    frames = rand(b, n, c, h, w, seed=12).requires_grad_()
    lead = (b, n, c) if per_channel else (b, n)
    kernels = [rand(*lead, s * s, h, w, seed=20 + s).requires_grad_() for s in MKPN_SIZES]
    out = apply_multisize_kernels(frames, kernels)
    # a size-s kernel applied alone pads by s // 2 instead of 4: same reflection, same values
    want = sum(apply_kernels(frames, kern) for kern in kernels)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-12)
    grad_out = rand(b, n, c, h, w, seed=13)
    got = torch.autograd.grad(out, [frames, *kernels], grad_out)
    exp = torch.autograd.grad(want, [frames, *kernels], grad_out)
    for g, e in zip(got, exp, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-12)


def test_mkpn_custom_sizes_and_errors():
    h, w = 8, 9
    kernels = [rand(1, 1, s * s, h, w, seed=s) for s in (3, 1)]
    assert fuse_multisize_kernels(kernels, (3, 1)).shape == (1, 1, 9, h, w)
    with pytest.raises(ValueError, match="order"):
        fuse_multisize_kernels(kernels, (1, 3))
    with pytest.raises(ValueError, match="odd"):
        fuse_multisize_kernels(kernels, (3, 2))
    with pytest.raises(ValueError, match="kernel tensors"):
        fuse_multisize_kernels(kernels, MKPN_SIZES)


# --- precision, module, errors ------------------------------------------------------------------


def test_autocast_bfloat16_computes_in_float32():
    b, n, c, h, w, k = 1, 3, 2, 16, 20, 5
    frames = rand(b, n, c, h, w, seed=14, dtype=torch.float32)
    kernels = rand(b, n, k * k, h, w, seed=15, dtype=torch.float32) / k
    kernels_bf16 = kernels.bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = apply_kernels(frames, kernels_bf16)
        out_both = apply_kernels(frames.bfloat16(), kernels_bf16)
    assert out.dtype == torch.float32 and out_both.dtype == torch.float32
    # same rounded kernels in float32: only summation order differs
    torch.testing.assert_close(out, apply_kernels(frames, kernels_bf16.float()))
    # against the unrounded float32 kernels: bfloat16's 8-bit mantissa (2^-9 relative per tap)
    full = apply_kernels(frames, kernels)
    scale = reference(frames.abs(), kernels.abs())
    assert ((out - full).abs() <= 2**-8 * scale + 1e-6).all()
    assert ((out_both - full).abs() <= 2**-7 * scale + 1e-6).all()
    (grad,) = torch.autograd.grad(out.sum(), kernels_bf16)
    assert grad.dtype == torch.bfloat16
    assert apply_kernels(frames.half(), kernels.half()).dtype == torch.float32


def test_module_wrapper():
    frames = rand(1, 2, 1, 7, 8, seed=16)
    kernels = rand(1, 2, 9, 7, 8, seed=17)
    module = KernelApply(kernel_size=3)
    assert list(module.parameters()) == []
    assert torch.equal(module(frames, kernels), apply_kernels(frames, kernels))
    assert torch.equal(KernelApply()(frames, kernels), apply_kernels(frames, kernels))
    assert "kernel_size=3" in repr(module)
    with pytest.raises(ValueError):
        KernelApply(kernel_size=5)(frames, kernels)
    with pytest.raises(ValueError):
        KernelApply(kernel_size=4)


@pytest.mark.parametrize(
    "frames_shape, kernels_shape, match",
    [
        ((1, 2, 1, 7, 8), (1, 2, 8, 7, 8), "odd kernel size"),  # not a square
        ((1, 2, 1, 7, 8), (1, 2, 16, 7, 8), "odd kernel size"),  # even K
        ((1, 2, 1, 7, 8), (1, 3, 9, 7, 8), "do not fit"),  # N mismatch
        ((1, 2, 1, 7, 8), (1, 2, 9, 7, 9), "do not fit"),  # W mismatch
        ((1, 2, 3, 7, 8), (1, 2, 2, 9, 7, 8), "do not fit"),  # C mismatch
        ((2, 1, 7, 8), (2, 1, 9, 7, 8), "frames must be"),  # frames not 5-D
        ((1, 2, 1, 7, 8), (2, 9, 7, 8), "do not fit"),  # kernels 4-D
    ],
)
def test_shape_errors(frames_shape, kernels_shape, match):
    with pytest.raises(ValueError, match=match):
        apply_kernels(torch.zeros(frames_shape), torch.zeros(kernels_shape))


def test_integer_inputs_rejected():
    with pytest.raises(TypeError):
        apply_kernels(torch.zeros(1, 1, 1, 4, 4, dtype=torch.int64), torch.zeros(1, 1, 9, 4, 4))


@pytest.mark.parametrize("dims,total", [((2,), 1.0), ((1, 2), 3.0)])
def test_project_kernel_sum_hits_the_total_with_one_shift_per_group(dims, total):
    from burstkpn.ops.kernels import project_kernel_sum

    k = torch.randn(2, 3, 9, 4, 5, generator=gen(7), dtype=torch.float64)
    p = project_kernel_sum(k, dims, total)
    torch.testing.assert_close(p.sum(dims), torch.full_like(k.sum(dims), total))
    shift = p - k  # the same amount on every tap of a group: the nearest such kernels
    torch.testing.assert_close(shift, shift.mean(dims, keepdim=True).expand_as(shift))
