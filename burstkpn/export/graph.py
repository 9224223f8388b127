"""ONNX export of the kernel-prediction burst models (KPN, MKPN, AME-KPN) and an onnxruntime
backend with the call interface of the torch models.

The exported graph is the network of :class:`~burstkpn.models.kpn.KernelPredictionNet` in
float32: the burst and the noise map go in (eq. 1), the merged image of eq. (4) comes out.
Batch, colour channels, height and width are dynamic; the burst length is fixed. Height and
width must be multiples of the U-Net's pooling multiple (``multiple`` in the metadata; the
torch model pads by reflection itself, the graph leaves that to its caller, as
:class:`~burstkpn.export.backend.OnnxModel` does). Everything needed to run the file alone is
in its ``metadata_props`` (see :func:`onnx_traits`).

CBAM channel attention ([AME-KPN] eq. 5) pools over the whole feature map, which a tile does
not see. For exact tiled inference (:func:`burstkpn.inference.tiling.tiled_forward`) the graph of a
model with channel attention has optional inputs, defaulting to the plain forward pass:

* ``attention_given`` (int64 scalar, default 0): the first ``attention_given`` attention
  modules use the pooled statistics fed in ``attentionK`` ``(2, B*C, ch, 1, 1)`` (mean; max)
  instead of their own;
* ``core`` (int64 ``[y0, y1, x0, x1]`` in input pixels, default everything): the region whose
  sum and max of every attention module's input come out as ``attentionK_stats``
  ``(2, B*C, ch, 1, 1)``.

``torch.where`` picks the given or the own statistics, so with the defaults the graph computes
exactly what the torch model does.

Exporter: the TorchScript-based one (``torch.onnx.export(..., dynamo=False)``). It needs only
``onnx``; the torch.export-based exporter needs ``onnxscript`` as well and would specialise the
shape-dependent branches of the model (padding modes) through guards. The tracer cannot see
through the kernel application's autograd Function, so :func:`burstkpn.ops.kernels.apply_kernels`
records the same tap loop directly while tracing.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import io
import json
import math
import os
import warnings
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

from burstkpn import __version__
from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.errors import InputError
from burstkpn.inference.resolve import resolve_model
from burstkpn.inference.tiling import receptive_radius
from burstkpn.models.blocks import ChannelAttention
from burstkpn.models.kpn import KernelPredictionNet

FORMAT = "burstkpn-onnx"
FORMAT_VERSION = 1  # part of the cache key: bump when the graph's interface changes
INSTALL_HINT = "pip install 'burstkpn[export]'"
OPSETS = range(13, 21)  # what the TorchScript exporter writes for these models
DEFAULT_OPSET = 17
_WHOLE = 2**62  # the default core region: everything


def require(module: str) -> ModuleType:
    """``onnx`` or ``onnxruntime``, or a one-line :class:`InputError` saying how to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"ONNX export and inference need {module}: {INSTALL_HINT}") from None


def check_exportable(model: nn.Module) -> KernelPredictionNet:
    """The model itself when it is a kernel-prediction burst model; else a one-line error."""
    model = getattr(model, "module", model)  # DDP / wrappers
    if not isinstance(model, KernelPredictionNet):
        name = getattr(model, "config", {}).get("name", type(model).__name__)
        raise InputError(
            f"ONNX export covers the kernel-prediction burst models (kpn, mkpn, ame_kpn), "
            f"not '{name}'"
        )
    if model.shared_coarse:
        raise InputError(
            "ONNX export does not cover shared_coarse models yet (their planes share the "
            "U-Net's coarse levels); run them with the torch backend"
        )
    return model


def attention_modules(model: KernelPredictionNet) -> list[ChannelAttention]:
    """The channel-attention modules in execution order (decoder blocks, deepest first)."""
    return [m for m in model.modules() if isinstance(m, ChannelAttention)]


def attention_strides(model: KernelPredictionNet) -> list[int]:
    """The input-pixel stride of every channel-attention module's feature map: decoder block
    ``j`` works at level ``levels - 2 - j`` of the U-Net, stride ``2 ** level``."""
    levels = len(model.backbone.encoder)
    return [
        2 ** (levels - 2 - j)
        for j, block in enumerate(model.backbone.decoder)
        if isinstance(block.ca, ChannelAttention)
    ]


def weights_sha256(model: nn.Module) -> str:
    """A digest of the model's recipe and weights (the ONNX cache key)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(getattr(model, "config", {}), sort_keys=True).encode())
    for key, value in sorted(model.state_dict().items()):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def onnx_traits(model: KernelPredictionNet, frames: int, source: str, opset: int) -> dict:
    """The ``metadata_props`` of an exported file: what a caller needs to run it alone."""

    config = getattr(model, "config", {}) or {}
    modules = attention_modules(model)
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "architecture": config.get("name", "kernel_prediction_net"),
        "kwargs": json.dumps(config.get("kwargs", {}), sort_keys=True),
        "source": source,
        "weights_sha256": weights_sha256(model),
        "num_frames": str(model.num_frames),
        "input_frames": str(frames),
        # colour planes go through the network as separate batch items ([AME-KPN]); the
        # colour variant sees R, G and B at once (a grey burst: the caller repeats it to three
        # planes and averages the output, as OnnxModel does)
        "channels": "3 (RGB, one pass)" if model.color else "any (each plane on its own)",
        "color": json.dumps(model.color),
        "blind": json.dumps(model.blind),
        # the runner aligns the frames by whole pixels before such a graph (models/traits.py)
        "prealign": json.dumps(model.prealign),
        "multiple": str(model.backbone.multiple),
        "min_size": str(max(model.backbone.multiple, max(model.kernel_sizes) // 2 + 1)),
        "tile_margin": str(receptive_radius(model)),
        "attention_channels": json.dumps([m.fc2.out_channels for m in modules]),
        "attention_strides": json.dumps(attention_strides(model)),
        "inputs": "burst (B, N, C, H, W) float32"
        + ("" if model.blind else ", noise_map (B, C, H, W) float32")
        + "; H, W multiples of 'multiple' (reflect-pad, then crop the output)",
        "outputs": "image (B, C, H, W) float32, linear like the input",
        "opset": str(opset),
        "burstkpn_version": __version__,
        "torch_version": torch.__version__,
    }


class _Graph(nn.Module):
    """What is traced: ``(burst, [noise_map], [core, attention_given, attention0, ...]) ->
    (image, [attention0_stats, ...])`` around a float32 copy of the model."""

    def __init__(self, model: KernelPredictionNet) -> None:
        super().__init__()
        self.model = model
        self.attention = attention_modules(model)
        self.strides = attention_strides(model)

    def forward(self, burst: torch.Tensor, *extra: torch.Tensor):
        noise_map = None if self.model.blind else extra[0]
        extra = extra[0 if self.model.blind else 1 :]
        if not self.attention:
            return self.model(burst, noise_map).image
        core, given, *fed = extra
        stats: list[torch.Tensor] = []
        handles = [
            module.register_forward_pre_hook(partial(self._pick, k, core, given, fed[k], stats))
            for k, module in enumerate(self.attention)
        ]
        try:
            image = self.model(burst, noise_map).image
        finally:
            for handle in handles:
                handle.remove()
            for module in self.attention:
                module.global_stats = None
        return (image, *stats)

    def _pick(self, k, core, given, fed, stats, module, args) -> None:
        """Pre-hook of attention module ``k``: its pooled statistics (eq. 5) are the fed ones
        when ``k < given``, else its own (as computed in ``channel_attention``); and the sum
        and max of its input over the core region go out."""
        x = args[0]
        use = given > k
        module.global_stats = (
            torch.where(use, fed[0], x.mean((2, 3), keepdim=True)),
            torch.where(use, fed[1], x.amax((2, 3), keepdim=True)),
        )
        box = torch.div(core, self.strides[k], rounding_mode="floor")
        rows = torch.arange(x.shape[-2], device=x.device)
        cols = torch.arange(x.shape[-1], device=x.device)
        inside = ((rows >= box[0]) & (rows < box[1]))[:, None] & (
            (cols >= box[2]) & (cols < box[3])
        )[None, :]
        total = torch.where(inside, x, 0.0).sum((2, 3), keepdim=True)
        peak = torch.where(inside, x, -math.inf).amax((2, 3), keepdim=True)
        stats.append(torch.stack([total, peak]))


def _trace_size(multiple: int) -> int:
    return 64 if 64 % multiple == 0 else 4 * multiple


def onnx_bytes(
    model: nn.Module, *, opset: int = DEFAULT_OPSET, frames: int | None = None, source: str = ""
) -> bytes:
    """The checked ONNX file of ``model`` (see the module docstring), as bytes."""
    require("onnx")  # a one-line error, not an ImportError, when it is missing
    from onnx import numpy_helper

    model = check_exportable(model)
    if opset not in OPSETS:
        raise InputError(f"--opset must be {OPSETS.start}..{OPSETS.stop - 1}, got {opset}")
    frames = model.num_frames if frames is None else frames
    if frames < 1 or (model.num_frames > 1 and frames != model.num_frames):
        raise InputError(f"this model takes bursts of {model.num_frames} frames, not {frames}")
    net = copy.deepcopy(model).float().cpu().eval().to(memory_format=torch.contiguous_format)
    graph = _Graph(net)
    size = _trace_size(net.backbone.multiple)
    seeded = torch.Generator().manual_seed(0)  # leave the caller's random state alone
    planes = net.COLORS if net.color else 1
    ch = None if net.color else "channels"  # the colour variant's graph: RGB only

    def dims(*axis_names: str | None) -> dict[int, str]:
        return {i: d for i, d in enumerate(axis_names) if d is not None}

    args = [torch.rand(1, frames, planes, size, size, generator=seeded)]
    names = ["burst"]
    axes = {"burst": dims("batch", None, ch, "height", "width")}
    if not net.blind:
        args.append(torch.full((1, planes, size, size), 0.05))
        names.append("noise_map")
        axes["noise_map"] = dims("batch", ch, "height", "width")
    outputs = ["image"]
    axes["image"] = dims("batch", ch, "height", "width")
    defaults: dict[str, np.ndarray] = {}
    if graph.attention:
        defaults["core"] = np.array([0, _WHOLE, 0, _WHOLE], dtype=np.int64)
        defaults["attention_given"] = np.array(0, dtype=np.int64)
        for k, module in enumerate(graph.attention):
            defaults[f"attention{k}"] = np.zeros((2, 1, module.fc2.out_channels, 1, 1), np.float32)
            axes[f"attention{k}"] = {1: "planes"}
            axes[f"attention{k}_stats"] = {1: "planes"}
            outputs.append(f"attention{k}_stats")
        args += [torch.from_numpy(v) for v in defaults.values()]
        names += list(defaults)
    proto = trace_onnx(graph, tuple(args), names, outputs, axes, opset)
    # the optional inputs get their defaults as initializers of the same name (ONNX IR >= 4)
    proto.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in defaults.items())
    return checked_bytes(proto, onnx_traits(net, frames, source, opset), "the exported ONNX graph")


def trace_onnx(
    module: nn.Module, args: tuple, inputs: list[str], outputs: list[str], axes: dict, opset: int
):
    """``module`` traced on ``args`` by the TorchScript exporter, as an ``onnx.ModelProto``."""
    onnx = require("onnx")
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the tracer's warnings concern shape checks, not the graph
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
        )
    return onnx.load_from_string(buffer.getvalue())


def checked_bytes(proto, props: dict[str, str], what: str) -> bytes:
    """``proto`` with ``props`` as its ``metadata_props``, checked by ``onnx.checker`` (a
    one-line :class:`InputError` naming ``what`` otherwise), serialised."""
    onnx = require("onnx")
    onnx.helper.set_model_props(proto, props)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        reason = str(exc).splitlines()[0]
        raise InputError(f"{what} does not check: {reason}") from None
    return proto.SerializeToString()


def export_onnx(
    model_or_name: nn.Module | str,
    path: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    frames: int | None = None,
    overwrite: bool = True,
) -> Path:
    """Export a model (or shipped weights by name, or a ``.safetensors`` checkpoint) to an
    ONNX file, written atomically and checked with ``onnx.checker``; returns the path.
    ``frames``: the burst length the graph takes (default the model's); ``overwrite=False``
    refuses an existing file."""

    source = ""
    if isinstance(model_or_name, str):
        source, model_or_name = model_or_name, resolve_model(model_or_name)
    data = onnx_bytes(model_or_name, opset=opset, frames=frames, source=source)
    path = Path(path)
    atomic_write_bytes(path, data, overwrite=overwrite)
    return path
