"""The one way a model denoises: prepared for a device and a precision, run under autocast,
tiled in bounded memory.

:class:`Runner` is what ``burstkpn denoise`` / ``deblur``, the Python API
(:func:`burstkpn.denoising.denoise_burst`, :func:`burstkpn.restoration.restore_image`), the
benches and the trainer's evaluation call; none of them prepares a model, opens an autocast
context or tiles by itself. What a model reads (single image, burst, clip; its frame count;
its tile margin) comes from its declared traits (:mod:`burstkpn.models.traits`).

Tiling rule: an input larger than ``tile`` px is cut into tiles by
:func:`~burstkpn.inference.tiling.tiled_forward` (exact for the KPN family, within a measured
bound for deformable and DCN-LKA models); a smaller one (or ``tile=0``) is one tile. Models
whose colour planes are independent batch items run plane by plane even then (a third of the
memory, the same image).

Alignment rule: a model that declares ``prealign`` (trained on globally aligned bursts) gets
every frame moved onto the reference by the whole-pixel part of its measured global shift
(:func:`~burstkpn.ops.align.align_whole_pixels`) before the network, unless the caller
aligned them already (``aligned=True``: :func:`burstkpn.denoising.denoise_burst`, which has
measured the shifts for its noise estimate).
"""

from __future__ import annotations

import torch
from torch import nn

from burstkpn.errors import InputError
from burstkpn.inference.tiling import tiled_forward
from burstkpn.models.traits import ModelTraits, model_traits
from burstkpn.ops.align import align_whole_pixels
from burstkpn.runtime import autocast, prepare_model, resolve_precision

DEFAULT_TILE = 512  # px: the core size of one tile (denoise, deblur, benches)


def frame_slots(f: int, n: int) -> list[int]:
    """The frames of an ``f``-frame burst that fill ``n`` slots: the first ``n``, or all of
    them repeated cyclically (a repeated frame adds no information but keeps the input
    distribution a burst model was trained on)."""
    return [i % f for i in range(n)]


def fit_frames(burst: torch.Tensor, n: int) -> torch.Tensor:
    """``(B, F, ...)`` -> ``(B, n, ...)``: the frames :func:`frame_slots` picks."""
    f = burst.shape[1]
    if f == n:
        return burst
    return burst[:, frame_slots(f, n)]


class Runner:
    """``model`` prepared once for ``device`` (channels_last, eval mode) and ``precision``
    (``auto``: bfloat16 where the device runs it natively, :mod:`burstkpn.runtime`).

    ``runner(burst, noise_map)`` -> the restored reference ``(B, C, H, W)`` float32, for a
    linear-light ``burst`` ``(B, N, C, H, W)`` whose ``N`` is what the model reads (see
    :meth:`frames_for`); ``tile``: core size in px (0: the whole image), ``margin``: context
    per tile (default: the model's ``tile_margin``, else its receptive radius); ``aligned``:
    the frames of a ``prealign`` model are aligned already (module docstring). ``device``
    may be ``cuda`` where present; inputs are moved there and the result back."""

    def __init__(
        self,
        model: nn.Module,
        *,
        device: torch.device | str = "cpu",
        precision: str = "auto",
    ) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device '{device}': no CUDA device is available here")
        self.precision = resolve_precision(precision, self.device)
        self.traits: ModelTraits = model_traits(model)
        self.model = prepare_model(model.eval(), self.device, self.precision)

    def frames_read(self, count: int) -> int:
        """How many distinct frames of a ``count``-frame input :meth:`frames_for` keeps."""
        t = self.traits
        if t.kind == "single":
            return 1
        return count if t.kind == "clip" else len(set(frame_slots(count, t.frames)))

    def frames_for(self, burst: torch.Tensor) -> torch.Tensor:
        """``burst`` ``(B, F, C, H, W)`` (reference first; a clip's centre first) fitted to
        the frames the model reads: the reference alone for single-image models, ``frames``
        slots (cyclic repeats) for burst models; a clip model needs exactly its window."""
        t = self.traits
        if t.kind == "single":
            return burst[:, :1]
        if t.kind == "clip":
            if burst.shape[1] != t.frames:
                raise InputError(
                    f"this clip model takes {t.frames} frames, the window has {burst.shape[1]}"
                )
            return burst
        return fit_frames(burst, t.frames)

    def autocast(self):
        """The autocast context of this runner's device and precision."""
        return autocast(self.device, self.precision)

    @torch.no_grad()
    def forward(self, burst: torch.Tensor, noise_map: torch.Tensor | None = None, **kwargs):
        """The model's own output (a :class:`~burstkpn.models.kpn.DenoiseOutput`, ``aux``
        with ``return_aux=True``) on one untiled input, under autocast: validation uses it to
        read the kernels and weights."""
        burst = burst.to(self.device)
        noise_map = None if noise_map is None else noise_map.to(self.device)
        with self.autocast():
            return self.model(burst, noise_map, **kwargs)

    @torch.no_grad()
    def __call__(
        self,
        burst: torch.Tensor,
        noise_map: torch.Tensor | None = None,
        *,
        tile: int = DEFAULT_TILE,
        margin: int | None = None,
        progress: bool = False,
        aligned: bool = False,
    ) -> torch.Tensor:
        if tile < 0:
            raise InputError(f"--tile must be 0 (the whole image) or a size in px, got {tile}")
        margin = self.traits.tile_margin if margin is None else margin
        if self.traits.prealign and not aligned and burst.shape[1] > 1:
            burst, _ = align_whole_pixels(burst)
        home = burst.device
        burst = burst.to(self.device)
        noise_map = None if noise_map is None else noise_map.to(self.device)
        h, w = burst.shape[-2:]
        tiled = bool(tile) and max(h, w) > tile
        with self.autocast():
            if tiled or self.traits.independent_channels:
                out = tiled_forward(
                    self.model,
                    burst,
                    noise_map,
                    tile=tile if tiled else 0,
                    margin=margin,
                    progress=progress,
                )
            else:
                out = self.model(burst, noise_map).image
        return out.float().to(home)


def runner_for(model: nn.Module | Runner, **kwargs) -> Runner:
    """``model`` as a :class:`Runner`; a runner is returned as it is (its device and
    precision stand)."""
    return model if isinstance(model, Runner) else Runner(model, **kwargs)
