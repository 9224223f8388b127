"""Global alignment of burst frames to the reference: translation by phase correlation with
sub-pixel refinement (scikit-image ``phase_cross_correlation``, upsample factor 20, on the
channel mean), then a cubic-spline shift
(the result of ``scipy.ndimage.shift``, order 3, mirrored borders, computed in float32 torch as
two separable FIR passes: :func:`spline_shift`). Meant for motion larger than the predicted
kernels reach; the kernels handle the rest.

Models trained on globally aligned bursts (the ``prealign`` KPN models) read frames moved by
whole pixels instead (:func:`shift_whole_pixels`, :func:`align_whole_pixels`): a whole-pixel
move copies pixels, so independent noise stays independent and keeps its level (an
interpolating shift low-passes it), and the at most half a pixel left is what their kernels
learnt to compensate."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SPLINE_POLE = math.sqrt(3.0) - 2.0  # the pole of the cubic B-spline prefilter
SPLINE_REACH = 12  # FIR taps each side: the cardinal spline decays as |pole|^k (1.4e-7 at 12)


# px: global shifts are measured on at most this central square. Not a power of two: content
# that repeats with a power-of-two period (our mirrored 12 MP test canvas repeats every 1024 px)
# would fill such a window exactly and make the correlation peak ambiguous by one period
SHIFT_WINDOW = 2000


def estimate_shifts(
    frames: torch.Tensor, upsample: int = 20, window: int | None = SHIFT_WINDOW
) -> np.ndarray:
    """``(N, 2)`` shifts ``(dy, dx)`` that move each frame ``(N, C, H, W)`` onto frame 0.

    Frame by frame, on the channel mean, with the reference's spectrum computed once, so memory
    stays a few full-size planes whatever the burst length. A global translation is the same
    everywhere, so frames larger than ``window`` px are measured on their central ``window``
    square (4 MP: a 12 MP burst's FFTs cost a third or less; smaller frames are used whole);
    ``window=None`` uses the whole frame."""
    import scipy.fft
    from skimage.registration import phase_cross_correlation
    from threadpoolctl import threadpool_limits

    h, w = frames.shape[-2:]
    y0 = 0 if window is None or h <= window else (h - window) // 2
    x0 = 0 if window is None or w <= window else (w - window) // 2
    y1 = h if window is None else min(h, y0 + window)
    x1 = w if window is None else min(w, x0 + window)

    def plane(i: int) -> np.ndarray:
        crop = frames[i, :, y0:y1, x0:x1]
        return crop.float().mean(0).cpu().numpy().astype(np.float64)

    shifts = [np.zeros(2)]
    # SciPy's FFTs on every core of the process (scikit-image's correlation uses them too);
    # BLAS (the upsampled DFT's small matrix products) on one thread: OpenBLAS's pool spins
    # after each product and fights torch's OpenMP threads, which slowed small bursts and the
    # model run after them (ame_kpn in BENCHMARKS.md's CBSD68 run: 12.05 -> 3.51 s / MP)
    with (
        scipy.fft.set_workers(torch.get_num_threads()),
        threadpool_limits(limits=1, user_api="blas"),
    ):
        ref = scipy.fft.fft2(plane(0))
        for i in range(1, frames.shape[0]):
            shift, _, _ = phase_cross_correlation(
                ref,
                scipy.fft.fft2(plane(i)),
                upsample_factor=upsample,
                space="fourier",
                normalization=None,
            )
            shifts.append(np.asarray(shift, dtype=np.float64))
    return np.stack(shifts)


def cubic_bspline(t: np.ndarray) -> np.ndarray:
    """The centred cubic B-spline beta3 at ``t``."""
    a = np.abs(t)
    return np.where(a < 1, 2 / 3 - a**2 + a**3 / 2, np.where(a < 2, (2 - a) ** 3 / 6, 0.0))


def cardinal_cubic(t: np.ndarray, reach: int = SPLINE_REACH) -> np.ndarray:
    """The cubic cardinal spline ``eta(t) = sum_k sqrt(3) z^|k| beta3(t - k)`` (``z`` the
    prefilter pole): the interpolation kernel of cubic splines, 1 at 0 and 0 at the other
    integers. Interpolating ``x`` at ``q`` is ``sum_i x[i] eta(q - i)``."""
    k = np.arange(-reach - 3, reach + 4)
    t = np.asarray(t, dtype=np.float64)[..., None]
    return (math.sqrt(3.0) * SPLINE_POLE ** np.abs(k) * cubic_bspline(t - k)).sum(-1)


def shift_taps(shift: float, reach: int = SPLINE_REACH) -> tuple[int, np.ndarray]:
    """``(a, w)`` such that shifting a signal by ``shift`` (``out[p] = x[p - shift]``, cubic
    spline) is ``out[p] = sum_d w[d] x[p + a + d - reach]``, ``d = 0 .. 2 reach + 1``."""
    a = math.floor(-shift)
    t = -shift - a
    d = np.arange(-reach, reach + 2)
    return a, cardinal_cubic(t - d, reach)


def _shift_axis(x: torch.Tensor, shift: float, dim: int, reach: int) -> torch.Tensor:
    """:func:`spline_shift` along ``dim`` (-1 or -2) of ``x`` ``(C, H, W)``."""
    a, w = shift_taps(shift, reach)
    size = x.shape[dim]
    pad = reach + 1 + abs(a)
    if dim == -1:
        xp = F.pad(x, (pad, pad), mode="reflect")
    else:
        xp = F.pad(x[None], (0, 0, pad, pad), mode="reflect")[0]
    start = pad + a - reach
    out = torch.zeros_like(x)
    for d, wd in enumerate(w.tolist()):
        if abs(wd) > 1e-12:
            out.add_(xp.narrow(dim, start + d, size), alpha=wd)
    return out


def spline_shift(x: torch.Tensor, shift, *, reach: int = SPLINE_REACH) -> torch.Tensor:
    """Every plane of ``x`` ``(C, H, W)`` moved by ``shift`` ``(dy, dx)`` with cubic splines and
    mirrored borders: ``scipy.ndimage.shift(plane, shift, order=3, mode="mirror")`` (within
    1e-5 on [0, 1] images, ``tests/ops/test_align.py``), in ``x``'s dtype. Cubic-spline
    interpolation of a translation is separable and, after the B-spline prefilter, a fixed
    filter per axis: the cardinal spline sampled at the fractional offset, truncated at
    ``reach`` taps each side. A shift of a whole pixel count is a mirrored copy."""
    dy, dx = (float(s) for s in shift)
    h, w = x.shape[-2:]
    if abs(dy) + reach + 2 >= h or abs(dx) + reach + 2 >= w:  # beyond one mirror period
        return _scipy_shift(x, (dy, dx))
    out = x
    if dy:
        out = _shift_axis(out, dy, -2, reach)
    if dx:
        out = _shift_axis(out, dx, -1, reach)
    return out if out is not x else x.clone()


def _scipy_shift(x: torch.Tensor, shift: tuple[float, float]) -> torch.Tensor:
    from scipy.ndimage import shift as nd_shift

    planes = [
        nd_shift(p.cpu().numpy().astype(np.float64), shift, order=3, mode="mirror") for p in x
    ]
    return torch.from_numpy(np.stack(planes)).to(x.dtype)


def apply_shifts(
    frames: torch.Tensor, shifts: np.ndarray, *, inplace: bool = False
) -> torch.Tensor:
    """Shift every frame by its ``(dy, dx)`` with cubic splines (:func:`spline_shift`; in place
    when ``inplace``; frames with a zero shift are left untouched)."""
    out = frames if inplace else frames.clone()
    for i in range(out.shape[0]):
        if not np.any(shifts[i]):
            continue
        out[i] = spline_shift(out[i].float(), shifts[i]).to(out.dtype)
    return out


def align_frames(frames: torch.Tensor) -> torch.Tensor:
    """Align every frame ``(N, C, H, W)`` to frame 0 (see the module docstring)."""
    return apply_shifts(frames, estimate_shifts(frames))


def mirror_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """``index`` folded into ``[0, size)`` by mirroring about the edge pixels (``d c b | a b c
    d | c b a``, ``scipy.ndimage`` mode ``"mirror"``), for any distance outside."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index)


def shift_whole_pixels(
    frames: torch.Tensor, shifts: np.ndarray, *, inplace: bool = False
) -> torch.Tensor:
    """Every frame ``(N, C, H, W)`` moved by its shift ``(dy, dx)`` rounded to whole pixels
    (``out[p] = x[p - shift]``, as :func:`apply_shifts`), borders mirrored: a copy of pixels,
    equal to ``scipy.ndimage.shift(plane, rounded, order=0, mode="mirror")``."""
    out = frames if inplace else frames.clone()
    h, w = frames.shape[-2:]
    for i, (dy, dx) in enumerate(np.rint(np.asarray(shifts, dtype=np.float64)).astype(int)):
        dy, dx = int(dy), int(dx)
        if dy == 0 and dx == 0:
            continue
        if 2 * abs(dy) < h and 2 * abs(dx) < w:  # a crop padded back by reflection
            kept = frames[i, :, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
            pad = (max(0, dx), max(0, -dx), max(0, dy), max(0, -dy))
            out[i] = F.pad(kept, pad, mode="reflect")
            continue
        rows = mirror_index(torch.arange(h, device=frames.device) - dy, h)
        cols = mirror_index(torch.arange(w, device=frames.device) - dx, w)
        out[i] = frames[i].index_select(-2, rows).index_select(-1, cols)
    return out


def align_whole_pixels(burst: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """A burst ``(B, N, C, H, W)`` (or ``(N, C, H, W)``) with every frame moved onto its
    reference by the whole-pixel part of its estimated global shift (:func:`estimate_shifts`,
    :func:`shift_whole_pixels`); returns the aligned copy and the rounded shifts ``(B, N, 2)``
    (``(N, 2)`` for one burst)."""
    if burst.ndim == 4:
        aligned, shifts = align_whole_pixels(burst[None])
        return aligned[0], shifts[0]
    shifts = np.stack([np.rint(estimate_shifts(b)) for b in burst])
    out = torch.stack([shift_whole_pixels(b, s) for b, s in zip(burst, shifts, strict=True)])
    return out, shifts
