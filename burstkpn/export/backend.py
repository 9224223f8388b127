"""The onnxruntime backend: :class:`OnnxModel` runs an exported burst model (a file of
:func:`~burstkpn.export.graph.export_onnx`, or a torch model exported on the fly into
:func:`cache_dir`) with the call interface and the traits of the torch model, so that
:func:`~burstkpn.denoising.denoise_burst` and exact tiled inference
(:func:`~burstkpn.inference.tiling.tiled_forward`, with the channel-attention statistics of
[AME-KPN] eq. 5 fed in) use it unchanged.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from burstkpn import __version__
from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.errors import InputError
from burstkpn.export.graph import (
    DEFAULT_OPSET,
    FORMAT,
    FORMAT_VERSION,
    check_exportable,
    onnx_bytes,
    require,
    weights_sha256,
)
from burstkpn.export.stages import OnnxStages, has_stages, stage_onnx_bytes, stage_paths
from burstkpn.models.common import DenoiseOutput, pad_to_multiple
from burstkpn.models.kpn import kpn_family_traits
from burstkpn.models.traits import ModelTraits
from burstkpn.runtime import cpu_count


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/burstkpn/onnx`` (default ``~/.cache/burstkpn/onnx``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "burstkpn" / "onnx"


def _cache_key(net: nn.Module, opset: int) -> str:
    return hashlib.sha256(
        f"{weights_sha256(net)}:{FORMAT_VERSION}:{opset}:{__version__}:{torch.__version__}".encode()
    ).hexdigest()[:16]


def _cache_folders() -> list[Path]:
    """Where exports are cached: :func:`cache_dir`, else a folder of the user under the temp
    dir."""
    uid = getattr(os, "getuid", int)()
    return [cache_dir(), Path(tempfile.gettempdir()) / f"burstkpn-onnx-{uid}"]


def cached_export(model: nn.Module, opset: int = DEFAULT_OPSET) -> Path:
    """The ONNX file of ``model`` from the cache, exported on the first call. Keyed by the
    weights' digest, the exporter's format and the torch version; a temporary folder serves
    when the cache cannot be written."""

    net = check_exportable(model)
    key = _cache_key(net, opset)
    name = getattr(net, "config", {}).get("name", "model")
    for folder in _cache_folders():
        path = folder / f"{name}-{key}.onnx"
        if path.is_file():
            return path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, onnx_bytes(net, opset=opset, source="in-memory model"))
            return path
        except OSError:
            continue
    raise InputError(f"cannot write the ONNX export of '{name}' to {cache_dir()} or a temp dir")


def cached_stage_exports(model: nn.Module) -> dict[str, Path]:
    """The staged graphs of ``model`` (:mod:`burstkpn.export.stages`) from the cache, exported
    together on the first call; keyed like :func:`cached_export`."""
    net = check_exportable(model)
    stem = f"{getattr(net, 'config', {}).get('name', 'model')}-{_cache_key(net, DEFAULT_OPSET)}"
    graphs = None
    for folder in _cache_folders():
        paths = stage_paths(folder, stem, net)
        if all(p.is_file() for p in paths.values()):
            return paths
        try:
            folder.mkdir(parents=True, exist_ok=True)
            graphs = graphs or stage_onnx_bytes(net)
            for name, path in paths.items():
                atomic_write_bytes(path, graphs[name])
            return paths
        except OSError:
            continue
    raise InputError(f"cannot write the staged ONNX graphs to {cache_dir()} or a temp dir")


@dataclass
class AttentionSlot:
    """Stands for one channel-attention module of an exported graph: tiled inference stores
    the whole image's pooled ``(mean, max)`` here, as on :class:`ChannelAttention`."""

    channels: int
    stride: int
    global_stats: tuple[torch.Tensor, torch.Tensor] | None = None


def read_onnx_metadata(path: str | os.PathLike) -> dict:
    """The ``metadata_props`` of a file written by :func:`export_onnx` (one-line errors for
    other files)."""
    path = Path(path)
    return _traits(_session(path, 1), path)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _session(path: Path, threads: int):
    """An onnxruntime CPU session of ``path`` with ``threads`` intra-op threads."""
    ort = require("onnxruntime")
    if not path.is_file():
        raise InputError(f"no such ONNX file: '{path}'")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # not the notes on the overridable initializers
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types
        raise InputError(f"cannot load '{path}' with onnxruntime: {_first_line(exc)}") from None


def _traits(session, path: Path) -> dict:
    meta = dict(session.get_modelmeta().custom_metadata_map)
    if meta.get("format") != FORMAT:
        raise InputError(f"'{path}' is an ONNX file but not one exported by burstkpn")
    return meta


class OnnxModel(nn.Module):
    """An exported burst model run by onnxruntime on the CPU, in float32, with the call
    interface of the torch model: ``model(burst, noise_map).image``. Declares the traits
    (:class:`~burstkpn.models.traits.ModelTraits`) that
    :func:`~burstkpn.denoising.denoise_burst` and :func:`~burstkpn.inference.tiling.tiled_forward`
    read, from the file's metadata, and carries the channel-attention slots, so both use it
    unchanged.

    ``source``: an ONNX file from :func:`export_onnx`, or a torch model (exported on the fly to
    :func:`cache_dir`; with channel attention, also its staged graphs, ``stages``, which
    tiled inference runs stage by stage like the torch model). ``threads``: intra-op threads
    (default: the cores of this process's affinity mask)."""

    def __init__(self, source: str | os.PathLike | nn.Module, *, threads: int | None = None):
        super().__init__()

        require("onnxruntime")
        path = cached_export(source) if isinstance(source, nn.Module) else Path(source)
        threads = threads or cpu_count()
        self.session = _session(path, threads)
        # built from a torch model with channel attention: staged graphs for large images
        # (tiled_forward runs them like the torch model's stages); a file alone has one graph
        self.stages = None
        net = check_exportable(source) if isinstance(source, nn.Module) else None
        if net is not None and has_stages(net):
            paths = cached_stage_exports(net)
            sessions = {name: _session(p, threads) for name, p in paths.items()}
            self.stages = OnnxStages(copy.deepcopy(net).float().cpu().eval(), sessions)
        self.path = path
        self.props = _traits(self.session, path)  # the file's metadata_props (onnx_traits)
        self.name = self.props["architecture"]
        self.num_frames = int(self.props["num_frames"])
        self.input_frames = int(self.props["input_frames"])
        self.multiple = int(self.props["multiple"])
        self.min_size = int(self.props["min_size"])
        self.tile_margin = int(self.props["tile_margin"])
        self.blind = json.loads(self.props["blind"])
        self.prealign = json.loads(self.props.get("prealign", "false"))  # older files: none
        self.color = json.loads(self.props.get("color", "false"))  # the colour variant
        self.independent_channels = not self.color
        self.attention_slots = [
            AttentionSlot(c, s)
            for c, s in zip(
                json.loads(self.props["attention_channels"]),
                json.loads(self.props["attention_strides"]),
                strict=True,
            )
        ]

    @property
    def traits(self) -> ModelTraits:
        return kpn_family_traits(
            self.num_frames,
            self.blind,
            self.multiple,
            tile_margin=self.tile_margin,
            color=self.color,
            prealign=self.prealign,
        )

    def extra_repr(self) -> str:
        return f"'{self.path}' ({self.name}, {self.num_frames} frames, onnxruntime)"

    def _feeds(self, burst: torch.Tensor, noise_map: torch.Tensor | None) -> dict:
        """The graph's inputs for ``burst`` padded to the multiple (as the model pads)."""
        b, n, c, h, w = burst.shape
        if self.color:  # RGB in one pass; a grey burst as three equal planes (forward)
            if c not in (1, 3):
                raise InputError(f"the colour variant takes RGB or grey bursts, got {c} channels")
            burst = burst.expand(b, n, 3, h, w)
            if noise_map is not None and noise_map.shape == (b, c, h, w):
                noise_map = noise_map.expand(b, 3, h, w)
            c = 3
        if self.num_frames == 1 and n > self.input_frames:
            burst, n = burst[:, : self.input_frames], self.input_frames
        if n != self.input_frames:
            raise InputError(f"this model takes bursts of {self.input_frames} frames, got {n}")
        burst = pad_to_multiple(burst.reshape(b, n * c, h, w), self.multiple)
        hp, wp = burst.shape[-2:]
        if min(hp, wp) < self.min_size:
            raise InputError(f"the exported model needs images of at least {self.min_size} px")
        feeds = {"burst": _array(burst.reshape(b, n, c, hp, wp))}
        if not self.blind:
            if noise_map is None or noise_map.shape != (b, c, h, w):
                got = None if noise_map is None else tuple(noise_map.shape)
                raise InputError(f"this model needs a noise map of shape {(b, c, h, w)}, got {got}")
            feeds["noise_map"] = _array(pad_to_multiple(noise_map, self.multiple))
        given = 0
        for slot in self.attention_slots:
            if slot.global_stats is None:
                break
            feeds[f"attention{given}"] = _array(torch.stack(slot.global_stats))
            given += 1
        if self.attention_slots:
            feeds["attention_given"] = np.array(given, dtype=np.int64)
        return feeds

    def forward(self, burst: torch.Tensor, noise_map: torch.Tensor | None = None) -> DenoiseOutput:
        h, w = burst.shape[-2:]
        image = torch.from_numpy(self.session.run(["image"], self._feeds(burst, noise_map))[0])
        if self.color and burst.shape[2] == 1:  # a grey burst: the mean of the three planes
            image = image.mean(1, keepdim=True)
        return DenoiseOutput(image[..., :h, :w])

    def attention_core_stats(
        self,
        k: int,
        burst: torch.Tensor,
        noise_map: torch.Tensor | None,
        core: tuple[int, int, int, int],
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Sum, max and pixel count of attention module ``k``'s input over ``core`` (``y0, y1,
        x0, x1`` in the tile's input pixels), the earlier modules using their ``global_stats``:
        one pass of exact tiled inference (:func:`~burstkpn.inference.tiling.tiled_forward`)."""
        if any(slot.global_stats is None for slot in self.attention_slots[:k]):
            raise ValueError(f"attention statistics before module {k} are not set")
        feeds = self._feeds(burst, noise_map)
        feeds["attention_given"] = np.array(k, dtype=np.int64)
        for j in range(k, len(self.attention_slots)):
            feeds.pop(f"attention{j}", None)
        feeds["core"] = np.array(core, dtype=np.int64)
        stats = torch.from_numpy(self.session.run([f"attention{k}_stats"], feeds)[0])
        s = self.attention_slots[k].stride
        pixels = (core[1] // s - core[0] // s) * (core[3] // s - core[2] // s)
        return stats[0], stats[1], pixels


def _array(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().float().numpy())
