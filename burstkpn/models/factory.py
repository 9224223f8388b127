"""One flat factory for every model, and self-describing safetensors checkpoints.

A checkpoint is a ``.safetensors`` file whose metadata holds ``format``, the model ``name``,
its constructor ``kwargs`` (JSON), the ``burstkpn`` version and an optional ``card`` (JSON), so
:func:`load_model` rebuilds the model from the file alone. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.errors import InputError, MissingInputError
from burstkpn.models import dcn_lka as _dcn_lka
from burstkpn.models import deformable as _deformable
from burstkpn.models import kpn as _kpn
from burstkpn.models.dcn_lka import dcn_lka
from burstkpn.models.deformable import deform2d, deform3d
from burstkpn.models.kpn import ame_kpn, kpn, mkpn
from burstkpn.models.traits import ModelTraits

MODELS: dict[str, Callable[..., nn.Module]] = {
    "kpn": kpn,
    "mkpn": mkpn,
    "ame_kpn": ame_kpn,
    "dcn_lka": dcn_lka,
    "deform2d": deform2d,
    "deform3d": deform3d,
}
# each model's traits from its constructor arguments (burstkpn.models.traits.traits_from_config)
CONFIG_TRAITS: dict[str, Callable[[dict], ModelTraits]] = {
    "kpn": _kpn.config_traits,
    "mkpn": _kpn.config_traits,
    "ame_kpn": _kpn.config_traits,
    "dcn_lka": _dcn_lka.config_traits,
    "deform2d": _deformable.config_traits,
    "deform3d": _deformable.config_traits,
}
FORMAT = "burstkpn-checkpoint"


def list_models() -> list[str]:
    return sorted(MODELS)


def create_model(name: str, size: str = "cpu", **kwargs) -> nn.Module:
    """Build a model by name (``kpn``, ``mkpn``, ``ame_kpn``, ...) and size (``cpu`` or
    ``paper``); ``kwargs`` go to its constructor (e.g. ``kernel_size=21``)."""
    if name not in MODELS:
        raise InputError(f"unknown model '{name}' (available: {', '.join(list_models())})")
    try:
        return MODELS[name](size, **kwargs)
    except TypeError as exc:
        raise InputError(f"bad arguments for model '{name}': {exc}") from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def trained_steps(card: dict) -> int | None:
    """Training steps behind a checkpoint: ``step`` in a run's checkpoint, ``steps`` in an
    exported (shipped) file; ``None`` when the card has neither."""
    value = card.get("step", card.get("steps"))
    return None if value is None else int(value)


def save_model(model: nn.Module, path: str | os.PathLike, **card) -> Path:
    """Write ``model``'s weights and its recipe (``model.config``) to a safetensors file,
    atomically. Extra keyword arguments are stored as the JSON model card."""
    from safetensors.torch import save

    config = getattr(model, "config", None)
    if not config or "name" not in config:
        raise InputError("model has no config: build it with create_model()")
    from burstkpn import __version__

    state = model.module.state_dict() if hasattr(model, "module") else model.state_dict()
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    metadata = {
        "format": FORMAT,
        "name": config["name"],
        "kwargs": json.dumps(config["kwargs"], sort_keys=True),
        "burstkpn_version": __version__,
        "card": json.dumps(card, sort_keys=True, default=str),
    }
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The decoded metadata of a checkpoint (``name``, ``kwargs``, ``card``, version)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"no such checkpoint file: '{path}'")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise InputError(f"'{path}' is not a safetensors checkpoint ({exc})") from None
    if meta.get("format") != FORMAT or "name" not in meta or "kwargs" not in meta:
        raise InputError(f"'{path}' is a safetensors file but not a burstkpn checkpoint")
    try:
        return {
            "name": meta["name"],
            "kwargs": json.loads(meta["kwargs"]),
            "card": json.loads(meta.get("card", "{}")),
            "burstkpn_version": meta.get("burstkpn_version"),
        }
    except json.JSONDecodeError as exc:
        raise InputError(f"corrupt metadata in checkpoint '{path}': {exc}") from None


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from a checkpoint written by :func:`save_model` (in eval mode)."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    kwargs = dict(meta["kwargs"])
    size = kwargs.pop("size", "cpu")
    model = create_model(meta["name"], size, **kwargs)
    try:
        state = load_file(str(path), device=str(device))
    except Exception as exc:  # safetensors' own error types for truncated / corrupt data
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read the tensors of checkpoint '{path}': {reason}") from None
    check_state_fits(model, state, f"checkpoint '{path}'", meta["name"])
    model.load_state_dict(state)
    model.card = meta["card"]
    return model.to(device).eval()


def check_state_fits(model: nn.Module, state: dict, what: str, name: str) -> None:
    """A one-line error when ``state`` lacks tensors of ``model``, has others, or has one of
    another shape (which ``load_state_dict`` reports as a multi-line ``RuntimeError``)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise InputError(
            f"{what} does not fit the model it names ({name}): missing {len(missing)}, "
            f"unexpected {len(unexpected)} tensors"
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise InputError(
                f"{what} does not fit the model it names ({name}): tensor '{key}' is "
                f"{tuple(value.shape)}, the model's is {tuple(own[key].shape)}"
            )


def weights_dir() -> Path:
    return Path(str(resources.files("burstkpn") / "weights"))


def load_pretrained(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """The weights shipped in ``burstkpn/weights/NAME.safetensors``."""
    path = weights_dir() / f"{name}.safetensors"
    if not path.is_file():
        shipped = sorted(p.stem for p in weights_dir().glob("*.safetensors"))
        raise InputError(
            f"no shipped weights for '{name}' (shipped: {', '.join(shipped) or 'none yet'})"
        )
    return load_model(path, device)


def is_checkpoint_path(name: str) -> bool:
    """Whether a ``--model`` value names a file (a suffix, a folder part or an existing
    file) rather than shipped weights (plain names such as ``ame_kpn``)."""
    p = Path(name)
    return bool(p.suffix) or len(p.parts) > 1 or p.exists()


def load_model_arg(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """A ``--model`` value: a ``.safetensors`` checkpoint file or shipped weights by name;
    one-line errors for a missing file and for files of other formats."""
    if not is_checkpoint_path(name):
        return load_pretrained(name, device)
    path = Path(name)
    if path.suffix.lower() != ".safetensors":
        if not path.exists():
            raise MissingInputError(
                f"no such checkpoint file: '{name}' (only .safetensors checkpoints are loaded)"
            )
        raise InputError(f"'{name}' is not a .safetensors file: only those are loaded")
    return load_model(path, device)
