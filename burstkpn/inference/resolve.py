"""One resolver from what a user types (a model name, shipped weights, a checkpoint file) to a
model, used by ``denoise``, ``deblur``, the Python API and every bench.

- a path (``runs/x/last.safetensors``): that checkpoint (:func:`load_model`; only
  ``.safetensors`` files are read, never pickles);
- shipped weights by name (``ame_kpn``, ``ame_kpn_real``, ``dcn_lka_deblur``): the file in
  ``burstkpn/weights/``; a single-image model's weights are per task, so with a ``task``
  ``dcn_lka`` stands for ``dcn_lka_deblur`` or ``dcn_lka_denoise`` (:func:`weights_name`).
"""

from __future__ import annotations

import os

from torch import nn

from burstkpn.errors import InputError
from burstkpn.models import factory  # weights_dir via the module: tests point it elsewhere
from burstkpn.models.factory import (
    is_checkpoint_path,
    list_models,
    load_model,
    load_model_arg,
    load_pretrained,
    trained_steps,
)
from burstkpn.models.traits import model_traits, traits_from_config

TASKS = ("denoise", "deblur")


def weights_name(name: str, task: str) -> str:
    """The shipped weights a model name stands for in ``task``: a single-image model's weights
    are per task (``dcn_lka`` -> ``dcn_lka_deblur``); any other name is used as given."""
    if task not in TASKS:
        raise InputError(f"unknown task '{task}' (use one of {', '.join(TASKS)})")
    if name not in list_models() or (factory.weights_dir() / f"{name}.safetensors").is_file():
        return name
    return f"{name}_{task}" if traits_from_config(name).kind == "single" else name


def is_model_reference(name: str) -> bool:
    """Whether ``name`` means a model: a ``.safetensors`` path, an architecture name or
    shipped weights (``ame_kpn_real``)."""
    return (
        name.endswith(".safetensors")
        or name in list_models()
        or (factory.weights_dir() / f"{name}.safetensors").is_file()
    )


def resolve_model(
    name: str | os.PathLike | nn.Module, task: str | None = None, device: str = "cpu"
) -> nn.Module:
    """A model from a checkpoint path or shipped weights (see the module docstring); a model
    is returned as it is. One-line :class:`InputError` for missing or foreign files and
    unknown names."""
    if isinstance(name, nn.Module):
        return name
    name = os.fspath(name)
    if is_checkpoint_path(name):
        return load_model_arg(name, device)
    return load_pretrained(weights_name(name, task) if task else name, device)


def try_resolve(name: str, task: str | None = None) -> tuple[nn.Module | None, str]:
    """For the benches: ``(model, note)``; shipped weights that are missing give ``(None,
    "skipped: ...")`` so one absent model does not stop a table, while a checkpoint file that
    is missing or broken stays an error."""
    if name.endswith(".safetensors"):
        model = load_model(name)
        return model, describe_checkpoint(name, model)
    try:
        model = resolve_model(name, task)
    except InputError as exc:
        return None, f"skipped: {exc}"
    return model, describe(name, model, task)


def _training_note(model: nn.Module) -> str | None:
    """``(S training steps[; frames aligned ...])`` from the model's card and traits (``S`` is
    ``?`` when the card does not say it); ``None`` when neither is known."""
    steps = trained_steps(getattr(model, "card", None) or {})
    aligned = "; frames aligned by whole pixels first" if model_traits(model).prealign else ""
    if steps is None and not aligned:
        return None
    return f"({'?' if steps is None else steps} training steps{aligned})"


def describe_checkpoint(path: str, model: nn.Module) -> str:
    """``checkpoint PATH``, with its training steps and alignment where its card says them, so
    that a table row of a weight file says as much as a shipped model's."""
    note = _training_note(model)
    return f"checkpoint {path} {note}" if note else f"checkpoint {path}"


def describe(name: str, model: nn.Module, task: str | None = None) -> str:
    """``shipped weights NAME (S training steps)``: the note a bench prints for a model (and
    that the runner aligns its frames, for a ``prealign`` model)."""
    shipped = weights_name(name, task) if task and name in list_models() else name
    label = f"shipped weights {shipped}" if shipped != name else "shipped weights"
    return f"{label} {_training_note(model) or '(? training steps)'}"
