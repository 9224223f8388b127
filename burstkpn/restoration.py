"""Single-image restoration: ``burstkpn deblur IMAGE`` and ``burstkpn denoise IMAGE`` with a
single-image model (dcn_lka.md's DCN-LKA; later the single-image deformable model).

A model is *single-image* when its traits say so (``kind == "single"``,
:func:`burstkpn.models.traits.model_traits`); it then takes one image, while burst models keep
refusing single frames (:func:`burstkpn.denoising.load_frames`). Shipped weights are named by
model and task, ``<model>_<task>`` (``dcn_lka_denoise``, ``dcn_lka_deblur`` in
``burstkpn/weights/``), so ``--model dcn_lka`` picks the weights of the command's task.

Bounded memory: large images are processed in tiles (:func:`~burstkpn.models.tiling.tiled_forward`)
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

from burstkpn.data.io.images import image_to_tensor, linear_to_srgb, read_image, srgb_to_linear
from burstkpn.errors import InputError
from burstkpn.models.traits import model_traits, traits_from_config

TASKS = ("denoise", "deblur")
DEFAULT_MARGIN = 32  # px of context per tile for models whose traits give no ``tile_margin``


def is_single_image(model: torch.nn.Module) -> bool:
    """Whether ``model`` restores single images (its traits' ``kind`` is ``single``)."""
    return model_traits(model).kind == "single"


def is_video_model(model: torch.nn.Module) -> bool:
    """Whether ``model`` denoises the centre frame of a ``2 tau + 1``-frame clip in temporal
    order (``kind == "clip"``: ``deform3d``), rather than a burst of interchangeable frames."""
    return model_traits(model).kind == "clip"


def weights_name(name: str, task: str) -> str:
    """The shipped weights a model name stands for in ``task``: a single-image model's weights
    are per task (``dcn_lka`` -> ``dcn_lka_deblur``); any other name is used as given."""
    from burstkpn.models import list_models
    from burstkpn.models.factory import weights_dir

    if task not in TASKS:
        raise InputError(f"unknown task '{task}' (use one of {', '.join(TASKS)})")
    if name not in list_models() or (weights_dir() / f"{name}.safetensors").is_file():
        return name
    return f"{name}_{task}" if traits_from_config(name).kind == "single" else name


def load_restoration_model(name: str, task: str | None = None) -> torch.nn.Module:
    """A checkpoint path (``.safetensors``) or a shipped name, resolved by :func:`weights_name`
    when a ``task`` is given; one-line :class:`InputError` when the weights do not exist."""
    from burstkpn.models.factory import load_model_arg

    return load_model_arg(weights_name(name, task) if task else name)


def load_image(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """One image file -> ``(C, H, W)`` float in [0, 1] (as stored, sRGB) and its bit depth."""
    arr = read_image(path)
    return image_to_tensor(arr), 16 if arr.dtype == np.uint16 else 8


@torch.no_grad()
def restore_image(
    image: torch.Tensor,
    model: torch.nn.Module,
    *,
    linear: bool = False,
    tile: int = 512,
    margin: int | None = None,
    precision: str = "auto",
    progress: bool = False,
) -> torch.Tensor:
    """Restore ``image`` ``(C, H, W)`` in [0, 1] (sRGB-encoded unless ``linear``) with a
    single-image ``model``; returns ``(C, H, W)`` in [0, 1], encoded like the input. Images
    larger than ``tile`` are processed in tiles with ``margin`` px of context (default: the
    model's ``tile_margin``); ``tile=0`` runs the whole image at once. Models that are not
    blind get the noise estimated from the image (:mod:`burstkpn.data.estimate`)."""
    from burstkpn.models.tiling import tiled_forward
    from burstkpn.runtime import autocast, prepare_model

    traits = model_traits(model)
    if traits.kind != "single":
        raise InputError("this is a burst model; single images need a single-image model")
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise InputError(f"expected an image (C, H, W), C = 1 or 3, got {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise InputError("the image contains NaN or Inf values")
    if tile < 0:
        raise InputError(f"--tile must be 0 (the whole image) or a size in px, got {tile}")
    x = (image.float() if linear else srgb_to_linear(image.float()))[None, None]
    nmap = None
    if not traits.blind:  # non-blind models get the estimated noise
        from burstkpn.data.degrade.estimate import estimate_or_floor
        from burstkpn.data.degrade.noise import estimate_noise_map

        sigma_r, sigma_s = estimate_or_floor(x[0, 0])
        nmap = estimate_noise_map(x[:, 0], sigma_r, sigma_s)
    model = prepare_model(model.eval(), "cpu", precision)
    if margin is None:
        margin = DEFAULT_MARGIN if traits.tile_margin is None else traits.tile_margin
    with autocast("cpu", precision):
        if tile and max(x.shape[-2:]) > tile:
            out = tiled_forward(model, x, nmap, tile=tile, margin=margin, progress=progress)
        else:
            out = model(x, nmap).image
    out = out[0].float()
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
    if isinstance(model, str):
        model = load_restoration_model(model, task)
    return restore_image(x, model, **kwargs).permute(1, 2, 0).numpy()
