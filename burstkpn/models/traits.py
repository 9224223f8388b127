"""What kind of model a network is, declared by the model rather than guessed from attributes.

Every model family declares :class:`ModelTraits` (a ``traits`` property computed from what it
was built with); :func:`model_traits` returns them for a model (through DDP and
``torch.compile`` wrappers) and refuses objects that declare none. A checkpoint's metadata
(architecture name and constructor kwargs, :func:`burstkpn.models.factory.save_model`) is
enough to know the traits without building the model: :func:`traits_from_config`,
:func:`traits_from_metadata`.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Literal

Kind = Literal["burst", "clip", "single"]
KINDS = ("burst", "clip", "single")


@dataclasses.dataclass(frozen=True)
class ModelTraits:
    """``kind``: ``burst`` (interchangeable frames, reference first), ``clip`` (``frames``
    consecutive video frames in temporal order, centre first: deform3d) or ``single`` (one
    image: dcn_lka, deform2d, 1-frame KPN). ``frames``: the frames the network reads (its
    burst length; 1 for single-image models). ``tile_margin``: context (px) per tile in tiled
    inference, or ``None`` where the tiler derives it (the receptive radius of the KPN family).
    ``blind``: the network takes no noise map. ``max_offset``: the farthest spatial sample of a
    deformable kernel in px (``None`` for others); clip models leave motion up to it unaligned.
    ``size_multiple``: the pooling grid the input is padded to. ``independent_channels``: colour
    planes are separate batch items, so tiled inference may run them one at a time.
    ``prealign``: the network reads bursts whose frames were moved onto the reference by the
    whole-pixel part of their global shift (it was trained on such bursts); the runner does it
    (:func:`burstkpn.ops.align.align_whole_pixels`)."""

    kind: Kind
    frames: int
    tile_margin: int | None
    blind: bool
    max_offset: float | None
    size_multiple: int
    independent_channels: bool
    prealign: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got '{self.kind}'")
        if self.frames < 1 or (self.kind == "single") != (self.frames == 1):
            raise ValueError(f"a {self.kind} model cannot read {self.frames} frames")

    @property
    def single(self) -> bool:
        return self.kind == "single"

    @property
    def clip(self) -> bool:
        return self.kind == "clip"


def unwrap(model):
    """The network inside DDP / DataParallel and ``torch.compile`` wrappers."""
    from torch import nn

    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif type(model).__name__ == "OptimizedModule" and "_orig_mod" in model._modules:
            model = model._modules["_orig_mod"]
        else:
            return model


def model_traits(model) -> ModelTraits:
    """The traits ``model`` declares; a :class:`TypeError` for an object that declares none."""
    inner = unwrap(model)
    traits = inspect.getattr_static(type(inner), "traits", None)
    if traits is not None:
        traits = inner.traits
    if not isinstance(traits, ModelTraits):
        raise TypeError(
            f"{type(inner).__name__} declares no model traits (a 'traits' property returning "
            "ModelTraits); build models with burstkpn.models.create_model"
        )
    return traits


def traits_from_config(name: str, kwargs: dict | None = None) -> ModelTraits:
    """The traits of model ``name`` built with ``kwargs`` (``size`` included, as in a
    checkpoint's metadata), computed without building it; one-line ``InputError`` for an
    unknown name or arguments its constructor does not take."""
    from burstkpn.errors import InputError
    from burstkpn.models.factory import CONFIG_TRAITS, MODELS, list_models

    if name not in MODELS:
        raise InputError(f"unknown model '{name}' (available: {', '.join(list_models())})")
    try:
        bound = inspect.signature(MODELS[name]).bind(**(kwargs or {}))
    except TypeError as exc:
        raise InputError(f"bad arguments for model '{name}': {exc}") from None
    bound.apply_defaults()
    return CONFIG_TRAITS[name](dict(bound.arguments))


def traits_from_metadata(path: str | os.PathLike) -> ModelTraits:
    """The traits of the model in checkpoint ``path``, read from its metadata alone."""
    from burstkpn.models.factory import read_metadata

    meta = read_metadata(path)
    return traits_from_config(meta["name"], meta["kwargs"])
