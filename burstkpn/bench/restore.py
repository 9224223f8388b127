"""``burstkpn bench restore``: single-image restoration benchmarks ([DCN-LKA]), PSNR / SSIM of
methods on degraded / clean pairs; results.csv, results.json and report.md like ``bench
quality``.

Data: ``--pairs DIR`` (real pairs in PolyU / SIDD / GoPro layout, :func:`~burstkpn.data.io.pairs.
find_pairs`; whole images) or ``--testset DIR`` (the synthetic-blur set of ``make-testset --task
deblur``, with the true kernels). Metrics: :func:`burstkpn.metrics.psnr` / ``ssim``
(gamma-corrected, clipped, 8-pixel border), per image, averaged.

Methods, all taking a :class:`~burstkpn.data.testsets.deblur.RestorePair` and returning the
restored image ``(1, C, H, W)`` in linear light:

- ``reference`` (denoise) / ``blurry`` (deblur): the degraded input itself;
- ``nlm``: scikit-image ``denoise_nl_means`` on the sRGB image as stored (real camera noise is
  made in the camera's sRGB pipeline, not by our linear noise model), patch 5, search distance 6,
  ``fast_mode``, h = 0.8 sigma (scikit-image's recommendation), sigma estimated from the image
  with ``skimage.restoration.estimate_sigma`` (wavelet median absolute deviation, Donoho;
  averaged over channels). It underestimates spatially correlated noise such as demosaiced JPEG
  noise; it is what a user without a noise model would use;
- ``bm3d``: ``bm3d.bm3d_rgb`` (opponent colour space) on the sRGB image with the same
  estimated sigma;
- ``wiener``: ``skimage.restoration.wiener`` per channel in linear light (where the blur was
  made) with the true kernel, Laplacian regulariser, ``balance`` = 1e-4
  (:data:`WIENER_BALANCE`: the best of 1e-4, 3e-4, 1e-3, 3e-3 on the noise-free blur set made
  from the embedded photos, ``make-testset --task deblur embedded``, not on the test set);
- ``richardson_lucy``: ``skimage.restoration.richardson_lucy`` per channel in linear light with
  the true kernel, scikit-image's default 50 iterations (:data:`RL_ITERATIONS`; 30 / 50 / 100
  gave 33.3 / 34.9 / 37.0 dB there, at 2 / 3 / 6 s per image), negative values clipped to 0;
  both deconvolutions first pad the image by 4 kernel sizes, replicating its edge pixels, and
  crop after, so the FFT's circular boundary does not ring into the image (the blurry image
  lacks what lay beyond its border; of reflect / symmetric / edge padding by 1 or 4 kernel
  sizes this rang least: Wiener 32.9 dB with 1 K reflect, 36.8 dB with 4 K edge there);
- learned: a single-image model's shipped weights (``dcn_lka_denoise``, ``dcn_lka_deblur``;
  ``dcn_lka`` picks the task's), or a ``.safetensors`` checkpoint; run through
  :func:`~burstkpn.restoration.restore_image` (tiles above 512 px).

Both deconvolutions know the true kernel (non-blind, an oracle the learned blind models do not
have), and their parameters suit the noise-free default set; with noisy levels
(``make-testset --task deblur --noise gain1``) they are not re-tuned. Adding a model to the
default rows is one line in :data:`DEFAULT_METHODS`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from skimage.restoration import denoise_nl_means, estimate_sigma
from skimage.restoration import richardson_lucy as sk_rl
from skimage.restoration import wiener as sk_wiener

from burstkpn.bench.methods import EXTRAS, resolve_all
from burstkpn.bench.tables import markdown_report, write_results
from burstkpn.data.io.files import atomic_write_bytes, prepare_output_dir
from burstkpn.data.io.images import linear_to_srgb, srgb_to_linear
from burstkpn.data.testsets.deblur import RestorePair
from burstkpn.errors import InputError
from burstkpn.evaluation import (  # the degraded input and the model method: export uses them
    degraded,
    evaluate_pairs,
    model_restore_method,
    restore_items,
)
from burstkpn.inference import try_resolve
from burstkpn.inference.resolve import TASKS as TASKS
from burstkpn.inference.resolve import is_model_reference
from burstkpn.models import list_models

DEFAULT_METHODS = {
    "denoise": ("reference", "nlm", "bm3d", "dcn_lka_denoise"),
    "deblur": ("blurry", "wiener", "richardson_lucy", "dcn_lka_deblur"),
}
WIENER_BALANCE = 1e-4
RL_ITERATIONS = 50

RestoreMethod = Callable[[RestorePair], torch.Tensor]


# --------------------------------------------------------------------------- classical
def _hwc(x: torch.Tensor) -> np.ndarray:
    """``(1, C, H, W)`` -> ``(H, W, C)`` float64."""
    return x[0].detach().double().permute(1, 2, 0).cpu().numpy()


def _chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()


def estimated_sigma(srgb: np.ndarray) -> float:
    """Noise standard deviation of an sRGB ``(H, W, C)`` image in [0, 1], estimated by
    ``skimage.restoration.estimate_sigma`` (averaged over channels)."""
    return float(estimate_sigma(srgb, average_sigmas=True, channel_axis=2))


def nlm_srgb(pair: RestorePair) -> torch.Tensor:
    x = _hwc(linear_to_srgb(pair.degraded.double()).clamp(0, 1))
    sigma = estimated_sigma(x)
    den = denoise_nl_means(
        x, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True,
        channel_axis=2,
    )  # fmt: skip
    return srgb_to_linear(_chw(den))


def bm3d_srgb(pair: RestorePair) -> torch.Tensor:
    import bm3d

    x = _hwc(linear_to_srgb(pair.degraded.double()).clamp(0, 1))
    if x.shape[2] == 1:
        den = bm3d.bm3d(x[:, :, 0], sigma_psd=estimated_sigma(x))[:, :, None]
    else:
        den = bm3d.bm3d_rgb(x, sigma_psd=estimated_sigma(x))
    return srgb_to_linear(_chw(den))


def _deconvolve(pair: RestorePair, solve: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    if pair.kernel is None:
        raise InputError(f"{pair.image}: no true blur kernel (make-testset --task deblur has it)")
    psf = pair.kernel.double().numpy()
    pad = 4 * psf.shape[0]
    x = _hwc(pair.degraded)
    out = np.empty_like(x)
    for c in range(x.shape[2]):
        padded = np.pad(x[:, :, c], pad, mode="edge")
        out[:, :, c] = solve(padded, psf)[pad:-pad, pad:-pad]
    return _chw(out)


def wiener(pair: RestorePair) -> torch.Tensor:
    return _deconvolve(pair, lambda x, k: sk_wiener(x, k, balance=WIENER_BALANCE, clip=False))


def richardson_lucy(pair: RestorePair) -> torch.Tensor:
    return _deconvolve(
        pair, lambda x, k: sk_rl(np.maximum(x, 0.0), k, num_iter=RL_ITERATIONS, clip=False)
    )


CLASSICAL: dict[str, dict[str, tuple[RestoreMethod, str | None]]] = {
    "denoise": {
        "reference": (degraded, None),
        "nlm": (nlm_srgb, None),
        "bm3d": (bm3d_srgb, "bm3d"),
    },
    "deblur": {
        "blurry": (degraded, None),
        "wiener": (wiener, None),
        "richardson_lucy": (richardson_lucy, None),
    },
}


# --------------------------------------------------------------------------- learned
def resolve_restore_method(name: str, task: str) -> tuple[RestoreMethod | None, str]:
    """``(callable, note)`` for a method name of ``task``; ``None`` with the reason when an
    optional package or the shipped weights are missing."""
    if name in CLASSICAL[task]:
        fn, package = CLASSICAL[task][name]
        if package is not None and find_spec(package) is None:
            return None, f"skipped: needs {EXTRAS[package]}"
        return fn, ""
    if is_model_reference(name) or name.removesuffix(f"_{task}") in list_models():
        model, note = try_resolve(name, task)
        return (None if model is None else model_restore_method(model)), note
    raise InputError(
        f"unknown {task} method '{name}' (classical: {', '.join(CLASSICAL[task])}; "
        f"models: {', '.join(list_models())}; or a .safetensors checkpoint)"
    )


# --------------------------------------------------------------------------- evaluation
def evaluate_restore(
    task: str,
    methods: list[str] | dict[str, RestoreMethod],
    *,
    testset: str | Path | None = None,
    pairs: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Every available method on every selected pair: ``{"rows", "notes", "levels",
    "methods", "bursts", "source"}`` (the layout :func:`burstkpn.bench.quality.summarize`
    reads; ``bursts`` counts pairs)."""
    items = restore_items(task, testset=testset, pairs=pairs, limit=limit)
    if not items[0]:
        raise InputError("no pairs to evaluate")
    if isinstance(methods, dict):
        resolved, notes = dict(methods), {m: "" for m in methods}
    else:
        resolved, notes = resolve_all(methods, lambda name: resolve_restore_method(name, task))
    return evaluate_pairs(items, resolved, task=task, notes=notes, progress=progress)


def write_restore_reports(result: dict, out: Path, task: str, command: str) -> dict:
    """results.csv, results.json and report.md (the tables of ``bench quality``)."""
    summary = write_results(
        result, out, command, task=task, source=result["source"], pairs=result["bursts"]
    )
    intro = (
        f"{result['bursts']} image pairs ({result['source']}). PSNR (dB) / SSIM on "
        "sRGB-gamma-corrected images, 8-pixel border ignored, per image then averaged; s / MP "
        "is wall time per megapixel."
    )
    md = markdown_report(
        f"Restoration benchmark: {task}",
        command,
        intro,
        summary,
        result["notes"],
        classical=tuple(CLASSICAL[task]),
        methods=True,
    )
    atomic_write_bytes(out / "report.md", md.encode())
    return summary


def run_restore(
    task: str,
    methods: list[str],
    out_dir,
    *,
    testset=None,
    pairs=None,
    limit: int | None = None,
    force: bool = False,
    progress: bool = True,
    command: str = "burstkpn bench restore",
) -> dict:
    out = prepare_output_dir(out_dir, force)
    result = evaluate_restore(
        task, methods, testset=testset, pairs=pairs, limit=limit, progress=progress
    )
    return write_restore_reports(result, out, task, command)
