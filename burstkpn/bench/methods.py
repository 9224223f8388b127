"""Denoising methods behind one interface: a callable from a benchmark burst to an image.

Every method takes an object with ``noisy`` ``(1, N, C, H, W)``, ``noise_map`` ``(1, C, H, W)``,
``sigma_r``, ``sigma_s`` and ``offsets`` (a :class:`~burstkpn.data.testsets.burst.TestBurst`)
and returns the denoised reference ``(1, C, H, W)``, all in linear light.

Classical methods and heteroscedastic noise: NLM and BM3D assume signal-independent Gaussian
noise, while ours has variance ``sigma_r^2 + sigma_s * y``. As an expert would, we apply the
generalised Anscombe transform (GAT) for this Poisson-Gaussian model, which makes the noise
approximately unit-variance Gaussian, denoise with sigma = 1, and invert with the closed-form
approximation of the exact unbiased inverse (Makitalo and Foi, 2013). Settings:

- ``nlm``: scikit-image ``denoise_nl_means`` on the reference, patch 5, search distance 6,
  h = 0.8 sigma (scikit-image's recommendation for ``fast_mode``), sigma = 1 after the GAT.
- ``nlm_multi``: OpenCV ``fastNlMeansDenoisingMulti`` over 7 frames with the reference in the
  middle of the temporal window, per channel, on the GAT image scaled to 8 bits, h = sigma,
  template 5, search 13.
- ``bm3d``: the ``bm3d`` package on the reference, sigma = 1 after the GAT.
- ``align_bm3d``: every frame aligned to the reference by phase correlation with 1/20-pixel
  refinement (scikit-image ``phase_cross_correlation`` on the channel mean), shifted with cubic
  splines (``scipy.ndimage.shift``, order 3), averaged; then BM3D with the noise of a mean of N
  frames (sigma_r / sqrt(N), sigma_s / N, i.e. sigma / sqrt(N)) through the same GAT.
- ``oracle_average``: the frames shifted back by their true offsets (cubic splines), averaged
  where they cover the reference: the limit of pure temporal averaging.

``bench video`` takes ``reference``, ``average`` and models (:func:`resolve_video_method`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from importlib.util import find_spec

import numpy as np
import torch
from scipy.ndimage import shift as nd_shift
from skimage.restoration import denoise_nl_means

from burstkpn.bench.defaults import DEFAULT_VIDEO_METHODS
from burstkpn.errors import InputError

# the model method and the reference live in burstkpn.evaluation (the trainer's export uses them)
from burstkpn.evaluation import Method, model_method, reference
from burstkpn.inference import try_resolve
from burstkpn.inference.resolve import is_model_reference
from burstkpn.models import list_models
from burstkpn.ops.align import align_frames


# --------------------------------------------------------------------------- GAT
def gat(x: np.ndarray, sigma_r: float, sigma_s: float) -> np.ndarray:
    """Generalised Anscombe transform for x = y + N(0, sigma_r^2 + sigma_s y): the result has
    approximately unit noise variance."""
    if sigma_s <= 0:
        return x / max(sigma_r, 1e-12)
    s = sigma_r / sigma_s
    return 2.0 * np.sqrt(np.maximum(x / sigma_s + 3.0 / 8.0 + s * s, 0.0))


def inverse_gat(d: np.ndarray, sigma_r: float, sigma_s: float) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse of :func:`gat`."""
    if sigma_s <= 0:
        return d * sigma_r
    s = sigma_r / sigma_s
    d = np.maximum(d, 0.8)  # the approximation is only used where it is accurate
    k = math.sqrt(1.5)
    y = 0.25 * d**2 + 0.25 * k / d - 11.0 / 8.0 / d**2 + 0.625 * k / d**3 - 0.125 - s * s
    return np.maximum(y, 0.0) * sigma_s


def _hwc(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) tensor -> (H, W, C) float64 array."""
    return x.detach().double().permute(1, 2, 0).cpu().numpy()


def _chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()


# --------------------------------------------------------------------------- simple
def average(item) -> torch.Tensor:
    return item.noisy.mean(1).float()


def shift_frames(frames: torch.Tensor, shifts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame i ``(N, C, H, W)`` sampled at ``p + shift_i`` with cubic B-splines (the
    interpolator of the subpixel synthesis), and masks of where that lies inside the frame."""
    arr = frames.double().cpu().numpy()
    n, _, h, w = arr.shape
    ys = np.arange(h)[:, None]
    xs = np.arange(w)[None, :]
    out, masks = [], []
    for i in range(n):
        dy, dx = (float(v) for v in shifts[i])
        out.append(np.stack([nd_shift(p, (-dy, -dx), order=3, mode="nearest") for p in arr[i]]))
        inside = (ys + dy >= 0) & (ys + dy <= h - 1) & (xs + dx >= 0) & (xs + dx <= w - 1)
        masks.append(inside[None].astype(np.float64))
    return torch.from_numpy(np.stack(out)), torch.from_numpy(np.stack(masks))


def oracle_average(item) -> torch.Tensor:
    """Mean of the frames after undoing the true offsets (frame i shows the reference scene at
    p + d_i / 4, so the reference's pixel p is frame i's pixel p - d_i / 4), where they cover
    the reference."""
    frames, masks = shift_frames(item.noisy[0], -item.offsets.double() / 4.0)
    return ((frames * masks).sum(0) / masks.sum(0).clamp_min(1))[None].float()


# --------------------------------------------------------------------------- classical
def _noise(item) -> tuple[float, float]:
    return float(item.sigma_r), float(item.sigma_s)


def nlm(item) -> torch.Tensor:
    sr, ss = _noise(item)
    ref = _hwc(item.noisy[0, 0])
    d = gat(ref, sr, ss)
    den = denoise_nl_means(
        d, h=0.8, sigma=1.0, patch_size=5, patch_distance=6, fast_mode=True, channel_axis=2
    )
    return _chw(inverse_gat(den, sr, ss))


def nlm_multi(item) -> torch.Tensor:
    import cv2

    sr, ss = _noise(item)
    frames = item.noisy[0]
    n = frames.shape[0]
    window = n if n % 2 else n - 1
    half = window // 2
    order = list(range(1, half + 1)) + [0] + list(range(half + 1, window))  # reference centred
    d = [gat(_hwc(frames[i]), sr, ss) for i in order]
    top = max(float(np.max(x)) for x in d)
    scale = 255.0 / max(top, 1e-6)
    out = np.empty_like(d[0])
    for c in range(d[0].shape[2]):
        planes = [np.clip(np.round(x[:, :, c] * scale), 0, 255).astype(np.uint8) for x in d]
        den = cv2.fastNlMeansDenoisingMulti(planes, half, window, None, scale, 5, 13)
        out[:, :, c] = den.astype(np.float64) / scale
    return _chw(inverse_gat(out, sr, ss))


def _bm3d_gat(x: np.ndarray, sr: float, ss: float) -> np.ndarray:
    import bm3d

    d = gat(x, sr, ss)
    den = np.stack([bm3d.bm3d(d[:, :, c], sigma_psd=1.0) for c in range(d.shape[2])], axis=2)
    return inverse_gat(den, sr, ss)


def bm3d_reference(item) -> torch.Tensor:
    sr, ss = _noise(item)
    return _chw(_bm3d_gat(_hwc(item.noisy[0, 0]), sr, ss))


def align_bm3d(item) -> torch.Tensor:
    sr, ss = _noise(item)
    n = item.noisy.shape[1]
    mean = align_frames(item.noisy[0]).mean(0)
    return _chw(_bm3d_gat(_hwc(mean), sr / math.sqrt(n), ss / n))


CLASSICAL: dict[str, tuple[Method, str | None]] = {  # name -> (function, optional package)
    "reference": (reference, None),
    "average": (average, None),
    "oracle_average": (oracle_average, None),
    "nlm": (nlm, None),
    "nlm_multi": (nlm_multi, "cv2"),
    "bm3d": (bm3d_reference, "bm3d"),
    "align_bm3d": (align_bm3d, "bm3d"),
}
EXTRAS = {
    "cv2": "opencv-python-headless (pip install 'burstkpn[baselines]')",
    "bm3d": "bm3d (pip install bm3d; non-commercial licence)",
}


def resolve_method(name: str) -> tuple[Method | None, str]:
    """``(callable, note)``; the callable is ``None`` (with the reason in ``note``) when an
    optional package is missing. Names: the classical ones above, a shipped model name
    (``kpn``, ``mkpn``, ``ame_kpn``, ...) or ``path/to/checkpoint.safetensors``."""
    if name in CLASSICAL:
        fn, package = CLASSICAL[name]
        if package is not None and find_spec(package) is None:
            return None, f"skipped: needs {EXTRAS[package]}"
        return fn, ""
    if is_model_reference(name):
        return resolve_model(name)
    raise InputError(
        f"unknown method '{name}' (classical: {', '.join(CLASSICAL)}; models: "
        f"{', '.join(list_models())}; or a .safetensors checkpoint)"
    )


def resolve_model(name: str) -> tuple[Method | None, str]:
    """A model's denoising weights (shipped by name, or a checkpoint) as a method:
    ``(None, reason)`` when shipped weights are missing."""
    model, note = try_resolve(name, "denoise")
    return (None if model is None else model_method(model)), note


VIDEO_SIMPLE: dict[str, Method] = {"reference": reference, "average": average}


def resolve_video_method(name: str) -> tuple[Method | None, str]:
    """``bench video``'s ``(callable, note)``: :data:`VIDEO_SIMPLE` or a model
    (:func:`resolve_model`; ``deform2d`` and other single-image names pick their denoising
    weights)."""
    if name in VIDEO_SIMPLE:
        return VIDEO_SIMPLE[name], ""
    if name.endswith(".safetensors") or name in list_models():
        return resolve_model(name)
    raise InputError(
        f"unknown method '{name}' (use {', '.join(VIDEO_SIMPLE)}, a model name such as "
        f"{', '.join(DEFAULT_VIDEO_METHODS[2:])}, or a .safetensors checkpoint)"
    )


def resolve_all(
    names, resolve: Callable[[str], tuple[Method | None, str]]
) -> tuple[dict[str, Method], dict[str, str]]:
    """``(available methods, a note for every name)`` by ``resolve`` (:func:`resolve_method`
    or a bench's own); a skipped name's note is printed."""
    resolved, notes = {}, {}
    for name in names:
        fn, note = resolve(name)
        notes[name] = note
        if fn is None:
            print(f"bench: {name} {note}")
        else:
            resolved[name] = fn
    return resolved, notes
