"""Staged tiled inference on onnxruntime: one ONNX graph per stage of
:func:`burstkpn.inference.staged._staged_plane`, so that a large image runs every layer about
once per pixel, as the torch path does, instead of the whole graph once per channel-attention
module and tile (the single graph of :mod:`.graph` cannot keep a tile's encoder output between
attention passes).

The graphs, for a kernel-prediction model with channel attention ([AME-KPN] eq. 5) whose
colour planes are independent (kpn / mkpn / ame_kpn; the colour variant keeps the single graph):

* ``first``: ``x`` (the network input of eq. 1, one window) -> the skips the later decoder
  blocks read (``skip0``, finest first) and the first decoder block's convolutions (``out``);
* ``middle{k}`` (``k = 1 .. blocks - 1``): ``prev`` (block ``k-1``'s convolutions, a window),
  ``skip``, ``mean`` and ``max`` (block ``k-1``'s channel statistics over the whole image) ->
  block ``k-1``'s attention, block ``k``'s upsampling and convolutions (``out``);
* ``last``: ``prev``, ``x``, ``mean``, ``max`` -> the last block's attention and the heads,
  merged by eq. (4) (``image``, one plane).

Batch, height and width are dynamic (windows of any size on the pooling grid). The graphs are
exported from the torch model on first use into the cache of :func:`~.backend.cache_dir`,
keyed by the weights, like the single graph.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from burstkpn.errors import InputError
from burstkpn.export.graph import (
    DEFAULT_OPSET,
    attention_modules,
    check_exportable,
    checked_bytes,
    trace_onnx,
)
from burstkpn.inference.staged import TorchStages, staged_margins
from burstkpn.models.kpn import KernelPredictionNet

STAGE_FORMAT = "burstkpn-onnx-stage"


def has_stages(model: nn.Module) -> bool:
    """Whether ``model`` is run by staged graphs: a kernel-prediction model with channel
    attention and independent colour planes."""
    return (
        isinstance(model, KernelPredictionNet)
        and not model.color
        and not model.shared_coarse
        and bool(attention_modules(model))
    )


class _First(nn.Module):
    def __init__(self, stages: TorchStages) -> None:
        super().__init__()
        self.net = stages.model
        self.stages = stages

    def forward(self, x: torch.Tensor):
        skips, d = self.stages.first(x)
        return (*skips, d)


class _Middle(nn.Module):
    def __init__(self, stages: TorchStages, k: int) -> None:
        super().__init__()
        self.net = stages.model
        self.stages = stages
        self.k = k

    def forward(self, prev, skip, mean, peak):
        return self.stages.middle(self.k, prev, skip, (mean, peak))


class _Last(nn.Module):
    def __init__(self, stages: TorchStages) -> None:
        super().__init__()
        self.net = stages.model
        self.stages = stages

    def forward(self, prev, x, mean, peak):
        # one colour plane per batch item: the burst's shape before padding is the window's
        shape = (x.shape[0], 1, x.shape[-2], x.shape[-1])
        return self.stages.last(prev, x, (mean, peak), shape)


def _export(module: nn.Module, args: tuple, inputs: list[str], outputs: list[str]) -> bytes:
    axes = {}
    for name, value in zip(inputs, args, strict=True):
        axes[name] = {0: "batch"} if value.shape[-1] == 1 else {0: "batch", 2: "h", 3: "w"}
    for name in outputs:
        axes[name] = {0: "batch", 2: "h", 3: "w"}
    proto = trace_onnx(module, args, inputs, outputs, axes, DEFAULT_OPSET)
    return checked_bytes(proto, {"format": STAGE_FORMAT}, "an exported stage graph")


@torch.no_grad()
def stage_onnx_bytes(model: nn.Module) -> dict[str, bytes]:
    """The checked ONNX graphs of ``model``'s stages (module docstring), by stage name, traced
    in float32 on windows of the sizes a 64 px input gives every stage."""
    net = check_exportable(model)
    if not has_stages(net):
        raise InputError("staged ONNX graphs are for kpn-family models with channel attention")
    net = copy.deepcopy(net).float().cpu().eval().to(memory_format=torch.contiguous_format)
    stages = TorchStages(net)
    size = max(64, 4 * stages.multiple)
    seeded = torch.Generator().manual_seed(0)  # leave the caller's random state alone
    burst = torch.rand(1, net.num_frames, 1, size, size, generator=seeded)
    nmap = None if net.blind else torch.full((1, 1, size, size), 0.05)
    x = stages.network_input(burst, nmap)
    graphs = {}
    skips, d = stages.first(x)
    names = [f"skip{lv}" for lv in range(len(skips))]
    graphs["first"] = _export(_First(stages), (x,), ["x"], [*names, "out"])

    def stats(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return t.mean((2, 3), keepdim=True), t.amax((2, 3), keepdim=True)

    for k in range(1, stages.blocks):
        skip = skips[stages.levels - 2 - k]
        args = (d, skip, *stats(d))
        graphs[f"middle{k}"] = _export(
            _Middle(stages, k), args, ["prev", "skip", "mean", "max"], ["out"]
        )
        d = stages.middle(k, d, skip, stats(d))
    graphs["last"] = _export(
        _Last(stages), (d, x, *stats(d)), ["prev", "x", "mean", "max"], ["image"]
    )
    return graphs


class OnnxStages:
    """The stages of :func:`~burstkpn.inference.staged._staged_plane` run by onnxruntime, with
    the interface of :class:`~burstkpn.inference.staged.TorchStages` (float32 throughout).
    ``model``: the torch model the graphs are exported from (its structure gives the margins
    and the network input's padding)."""

    def __init__(self, model: KernelPredictionNet, sessions: dict) -> None:
        self.model = model
        self.multiple = model.backbone.multiple
        self.levels = len(model.backbone.encoder)
        self.blocks = len(model.backbone.decoder)
        self.sessions = sessions

    def margins(self) -> list[int]:
        return staged_margins(self.model)

    def network_input(self, burst: torch.Tensor, noise_map: torch.Tensor | None) -> torch.Tensor:
        # the torch model's padding and folding (no network layer runs here), in float32
        with torch.autocast("cpu", enabled=False):
            x = self.model.network_input(burst.float(), noise_map)
        return x.float().contiguous()

    def _run(self, name: str, **feeds: torch.Tensor) -> list[torch.Tensor]:
        arrays = {k: np.ascontiguousarray(v.float().numpy()) for k, v in feeds.items()}
        return [torch.from_numpy(a) for a in self.sessions[name].run(None, arrays)]

    def first(
        self, x: torch.Tensor, trim: tuple[int, int, int, int] = (0, 0, 0, 0)
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """As :meth:`TorchStages.first`; the graph computes the whole window and the
        ``trim`` is cut from its output."""
        *skips, d = self._run("first", x=x)
        top, bottom, left, right = trim
        return skips, d[..., top : d.shape[-2] - bottom, left : d.shape[-1] - right]

    def middle(self, k: int, prev: torch.Tensor, skip: torch.Tensor, stats) -> torch.Tensor:
        mean, peak = stats
        return self._run(f"middle{k}", prev=prev, skip=skip, mean=mean, max=peak)[0]

    def last(self, prev: torch.Tensor, x: torch.Tensor, stats, shape) -> torch.Tensor:
        if shape[1] != 1:
            raise ValueError("the staged graphs take one colour plane per batch item")
        mean, peak = stats
        return self._run("last", prev=prev, x=x, mean=mean, max=peak)[0]


def stage_paths(folder: Path, stem: str, model: KernelPredictionNet) -> dict[str, Path]:
    """The stage files of ``model`` under ``folder`` named ``STEM-STAGE.onnx``."""
    names = ["first", *(f"middle{k}" for k in range(1, len(model.backbone.decoder))), "last"]
    return {name: folder / f"{stem}-{name}.onnx" for name in names}
