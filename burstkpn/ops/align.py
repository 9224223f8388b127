"""Global alignment of burst frames to the reference: translation by phase correlation with
sub-pixel refinement (scikit-image ``phase_cross_correlation``, upsample factor 20, on the
channel mean), then a cubic-spline shift (``scipy.ndimage.shift``, order 3, mirrored borders).
Meant for motion larger than the predicted kernels reach; the kernels handle the rest."""

from __future__ import annotations

import numpy as np
import torch


def estimate_shifts(frames: torch.Tensor, upsample: int = 20) -> np.ndarray:
    """``(N, 2)`` shifts ``(dy, dx)`` that move each frame ``(N, C, H, W)`` onto frame 0."""
    from skimage.registration import phase_cross_correlation

    arr = frames.double().cpu().numpy().mean(1)
    shifts = [np.zeros(2)]
    for i in range(1, arr.shape[0]):
        shift, _, _ = phase_cross_correlation(
            arr[0], arr[i], upsample_factor=upsample, normalization=None
        )
        shifts.append(np.asarray(shift, dtype=np.float64))
    return np.stack(shifts)


def apply_shifts(frames: torch.Tensor, shifts: np.ndarray) -> torch.Tensor:
    """Shift every frame by its ``(dy, dx)`` with cubic splines."""
    from scipy.ndimage import shift as nd_shift

    arr = frames.double().cpu().numpy()
    out = [
        arr[i]
        if not np.any(shifts[i])
        else np.stack([nd_shift(p, shifts[i], order=3, mode="mirror") for p in arr[i]])
        for i in range(arr.shape[0])
    ]
    return torch.from_numpy(np.stack(out)).to(frames.dtype)


def align_frames(frames: torch.Tensor) -> torch.Tensor:
    """Align every frame ``(N, C, H, W)`` to frame 0 (see the module docstring)."""
    return apply_shifts(frames, estimate_shifts(frames))
