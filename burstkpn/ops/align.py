"""Global alignment of burst frames to the reference: translation by phase correlation with
sub-pixel refinement (scikit-image ``phase_cross_correlation``, upsample factor 20, on the
channel mean), then a cubic-spline shift (``scipy.ndimage.shift``, order 3, mirrored borders).
Meant for motion larger than the predicted kernels reach; the kernels handle the rest."""

from __future__ import annotations

import numpy as np
import torch


def estimate_shifts(frames: torch.Tensor, upsample: int = 20) -> np.ndarray:
    """``(N, 2)`` shifts ``(dy, dx)`` that move each frame ``(N, C, H, W)`` onto frame 0.

    Frame by frame, on the channel mean, with the reference's spectrum computed once, so memory
    stays a few full-size planes whatever the burst length."""
    from skimage.registration import phase_cross_correlation

    def plane(i: int) -> np.ndarray:
        return frames[i].float().mean(0).cpu().numpy().astype(np.float64)

    ref = np.fft.fft2(plane(0))
    shifts = [np.zeros(2)]
    for i in range(1, frames.shape[0]):
        shift, _, _ = phase_cross_correlation(
            ref,
            np.fft.fft2(plane(i)),
            upsample_factor=upsample,
            space="fourier",
            normalization=None,
        )
        shifts.append(np.asarray(shift, dtype=np.float64))
    return np.stack(shifts)


def apply_shifts(
    frames: torch.Tensor, shifts: np.ndarray, *, inplace: bool = False
) -> torch.Tensor:
    """Shift every frame by its ``(dy, dx)`` with cubic splines, one plane at a time (in place
    when ``inplace``; frames with a zero shift are left untouched)."""
    from scipy.ndimage import shift as nd_shift

    out = frames if inplace else frames.clone()
    for i in range(out.shape[0]):
        if not np.any(shifts[i]):
            continue
        for c in range(out.shape[1]):
            plane = out[i, c].cpu().numpy().astype(np.float64)
            moved = nd_shift(plane, shifts[i], order=3, mode="mirror")
            out[i, c] = torch.from_numpy(moved).to(out.dtype)
    return out


def align_frames(frames: torch.Tensor) -> torch.Tensor:
    """Align every frame ``(N, C, H, W)`` to frame 0 (see the module docstring)."""
    return apply_shifts(frames, estimate_shifts(frames))
