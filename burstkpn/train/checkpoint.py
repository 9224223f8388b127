"""The state files of a run folder: ``last.safetensors`` (the model with its card) beside
``last.optim.safetensors`` (Adam's state, the step, the best validation PSNR and the averaged
weights ``ema.NAME``), the exponential moving average, starting from trained weights
(``--init``, or a run folder holding committed weights only) and the metrics log trimmed to a
checkpoint on resume. The formats are those of every existing run folder: a run resumes
bit-exactly across versions."""

from __future__ import annotations

import inspect
import json
import math
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.errors import InputError
from burstkpn.models import load_model, read_metadata, save_model
from burstkpn.models.factory import MODELS, trained_steps, weights_dir
from burstkpn.models.warm_start import color_from_planes, kernels_from_residual

INIT_CARD = "init_card.json"  # card of the weights a run was continued from (weights only)


def _optim_path(ckpt: Path) -> Path:
    return ckpt.with_name(ckpt.name.replace(".safetensors", ".optim.safetensors"))


def save_state(path: Path, model, optimizer, step: int, best: float, card: dict, ema=None) -> None:
    """Model checkpoint plus a safetensors file with Adam's state (and the averaged weights,
    keys ``ema.NAME``), both atomic."""
    save_model(model, path, **card)
    tensors = {}
    for pid, st in optimizer.state_dict()["state"].items():
        for k, v in st.items():
            tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
    if ema is not None:
        for k, v in ema.state_dict().items():
            tensors[f"ema.{k}"] = v.detach().cpu().contiguous()
    meta = {
        "step": str(step),
        "best": repr(best),
        "param_groups": json.dumps(optimizer.state_dict()["param_groups"]),
    }
    atomic_write_bytes(_optim_path(path), save(tensors, metadata=meta))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for the parameters; buffers are copied."""
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm.detach(), 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(bm)


def load_ema(path: Path, ema: torch.nn.Module) -> bool:
    """Load the averaged weights saved beside checkpoint ``path`` into ``ema``; False when the
    run has none yet (EMA newly switched on, or a weights-only continuation)."""
    opath = _optim_path(path)
    if not opath.is_file():
        return False
    saved = {k[4:]: v for k, v in load_file(str(opath)).items() if k.startswith("ema.")}
    if not saved:
        return False
    ema.load_state_dict(saved)
    return True


def start_from_weights(path: Path, model, keep_in: Path | None = None) -> int:
    """Load trained weights without an Adam state (``--init``, or a run folder holding only
    committed weights) into ``model`` and return their step, the card's, so that the schedule
    and the anneal continue. ``keep_in``: a run folder that keeps their card as
    ``init_card.json``, so that its exported card adds the earlier training (steps, hours) to
    its own."""
    loaded = load_model(path)
    if getattr(model, "color", False) and not getattr(loaded, "color", False):
        color_from_planes(loaded, model)  # a colour variant warm-started from a plane model
    elif getattr(loaded, "residual", False) and not getattr(model, "residual", True):
        kernels_from_residual(loaded, model)  # a kernel-only model from a residual one
    else:
        model.load_state_dict(loaded.state_dict())
    if keep_in is not None:
        text = json.dumps(loaded.card, indent=1) + "\n"
        atomic_write_bytes(keep_in / INIT_CARD, text.encode())
    return trained_steps(loaded.card) or 0


def load_state(path: Path, model, optimizer, keep_in: Path | None = None) -> tuple[int, float]:
    opath = _optim_path(path)
    if not opath.is_file():
        # weights only (e.g. a run continued from committed weights): Adam starts afresh at the
        # step recorded in the card; not bit-exact
        step = start_from_weights(path, model, keep_in)
        print(
            f"train: no {opath.name}; continuing from the weights at step {step} with a new "
            "Adam state"
        )
        return step, -math.inf
    model.load_state_dict(load_model(path).state_dict())
    with safe_open(str(opath), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(opath))
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("ema."):
            continue
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    return int(meta["step"]), float(meta["best"])


def _trim_metrics(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
    atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def _with_defaults(name: str, kwargs: dict) -> dict:
    """Constructor kwargs with the constructor's defaults filled in (JSON-normalised), so that
    weights saved before an option existed match a model built with that option's default."""
    params = inspect.signature(MODELS[name]).parameters.values() if name in MODELS else []
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return json.loads(json.dumps({**defaults, **kwargs}))


# constructor kwargs that change what a model is fed, or how its kernels are projected, not
# its weights: --init may change them (a model fine-tuned on globally aligned bursts starts from
# one trained on the paper's; one with unit-sum kernels from one without; one whose colour planes
# share the coarse levels from the per-plane model)
INPUT_KWARGS = ("prealign", "unit_kernels", "burst_unit_kernels", "shared_coarse")


def _weight_kwargs(name: str, kwargs: dict) -> dict:
    """:func:`_with_defaults` without :data:`INPUT_KWARGS`."""
    full = _with_defaults(name, kwargs)
    return {k: v for k, v in full.items() if k not in INPUT_KWARGS}


def _init_path(init: str | os.PathLike, model: torch.nn.Module) -> Path:
    """The checkpoint behind ``--init`` (a shipped name or a path), checked against ``model``."""
    path = Path(init)
    if not path.suffix and not path.exists():
        path = weights_dir() / f"{init}.safetensors"
        if not path.is_file():
            raise InputError(f"--init: no shipped weights '{init}' and no such file")
    meta = read_metadata(path)  # a clear error for a missing or foreign file
    built = model.config
    theirs = _weight_kwargs(meta["name"], meta["kwargs"])
    ours = _weight_kwargs(built["name"], built["kwargs"])
    if ours.get("color") and theirs.get("color") is False:  # colour variant from a plane model
        theirs["color"] = True  # (color_from_planes)
    elif ours.get("residual") is False and theirs.get("residual"):  # kernel-only from residual
        theirs["residual"] = False  # (kernels_from_residual; one conversion at a time)
    if meta["name"] != built["name"] or theirs != ours:
        raise InputError(
            f"--init: '{path}' holds {meta['name']} {meta['kwargs']}, but this run builds "
            f"{built['name']} {built['kwargs']} (set --model / --size / --model-kwargs to match)"
        )
    return path
