"""Single-image restoration: ``burstkpn deblur IMAGE`` and ``burstkpn denoise IMAGE`` with a
single-image model (DCN-LKA [DCN-LKA], deform2d [DeformKernels]).

A model is *single-image* when its traits say so (``kind == "single"``,
:func:`burstkpn.models.traits.model_traits`); it then takes one image, while burst models keep
refusing single frames (:func:`burstkpn.denoising.load_frames`). Shipped weights are named by
model and task, ``<model>_<task>`` (``dcn_lka_denoise``, ``dcn_lka_deblur`` in
``burstkpn/weights/``), so ``--model dcn_lka`` picks the weights of the command's task.

Bounded memory: large images are processed in tiles
(:func:`~burstkpn.inference.tiling.tiled_forward`)
with a context margin around each tile's core, and only the cores are kept (cropped blending);
the channel attention's global statistics are gathered over the whole image first, as for the
burst models. The reach of DCN-LKA has no exact bound (deformable offsets are data-dependent and
every LKA residual block adds 48 px at full resolution), so its tiled output is close to, not
equal to, the whole-image output; ``tile_margin`` (32 px for dcn_lka) sets the context, and
``tests/test_restoration.py`` measures the difference.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from burstkpn.data.degrade.estimate import estimate_or_floor
from burstkpn.data.degrade.noise import estimate_noise_map
from burstkpn.data.io.images import image_to_tensor, linear_to_srgb, read_image, srgb_to_linear
from burstkpn.errors import InputError
from burstkpn.inference.resolve import resolve_model
from burstkpn.inference.runner import DEFAULT_TILE, Runner, runner_for
from burstkpn.models.traits import model_traits


def is_single_image(model: torch.nn.Module) -> bool:
    """Whether ``model`` restores single images (its traits' ``kind`` is ``single``)."""
    return model_traits(model).kind == "single"


def is_video_model(model: torch.nn.Module) -> bool:
    """Whether ``model`` denoises the centre frame of a ``2 tau + 1``-frame clip in temporal
    order (``kind == "clip"``: ``deform3d``), rather than a burst of interchangeable frames."""
    return model_traits(model).kind == "clip"


def load_image(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """One image file -> ``(C, H, W)`` float in [0, 1] (as stored, sRGB) and its bit depth."""
    arr = read_image(path)
    return image_to_tensor(arr), 16 if arr.dtype == np.uint16 else 8


@torch.no_grad()
def restore_image(
    image: torch.Tensor,
    model: torch.nn.Module | Runner,
    *,
    linear: bool = False,
    tile: int = DEFAULT_TILE,
    margin: int | None = None,
    precision: str = "auto",
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> torch.Tensor:
    """Restore ``image`` ``(C, H, W)`` in [0, 1] (sRGB-encoded unless ``linear``) with a
    single-image ``model`` (or a :class:`~burstkpn.inference.Runner` of one); returns
    ``(C, H, W)`` in [0, 1], encoded like the input. Images larger than ``tile`` are processed
    in tiles with ``margin`` px of context (default: the model's ``tile_margin``); ``tile=0``
    runs the whole image at once. Models that are not blind get the noise estimated from the
    image (:mod:`burstkpn.data.degrade.estimate`)."""
    runner = runner_for(model, device=device, precision=precision)
    if runner.traits.kind != "single":
        raise InputError("this is a burst model; single images need a single-image model")
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise InputError(f"expected an image (C, H, W), C = 1 or 3, got {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise InputError("the image contains NaN or Inf values")
    x = (image.float() if linear else srgb_to_linear(image.float()))[None, None]
    nmap = None
    if not runner.traits.blind:  # non-blind models get the estimated noise
        sigma_r, sigma_s = estimate_or_floor(x[0, 0])
        nmap = estimate_noise_map(x[:, 0], sigma_r, sigma_s)
    out = runner(x, nmap, tile=tile, margin=margin, progress=progress)[0]
    return (out if linear else linear_to_srgb(out)).clamp(0, 1)


def restore(
    image,
    model: str | torch.nn.Module = "dcn_lka",
    task: str = "deblur",
    **kwargs,
) -> np.ndarray:
    """Python API: ``image`` (a file or an ``(H, W, C)`` array in [0, 1], sRGB) -> the restored
    ``(H, W, C)`` float array in [0, 1]. ``model``: a shipped name (``dcn_lka`` gives the
    weights of ``task``), a checkpoint path or a model."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3:
            raise InputError(f"expected an image (H, W, C), got shape {image.shape}")
        x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)
    else:
        x, _ = load_image(image)
    return restore_image(x, resolve_model(model, task), **kwargs).permute(1, 2, 0).numpy()
