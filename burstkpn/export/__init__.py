"""ONNX export of the kernel-prediction burst models (KPN, MKPN, AME-KPN) and an onnxruntime
backend with the call interface of the torch models: :mod:`.graph` traces and checks the
graph (:func:`export_onnx`), :mod:`.backend` runs it (:class:`OnnxModel`), :mod:`.stages`
exports and runs one graph per stage of the staged tiled path (:class:`OnnxStages`)."""

from burstkpn.export.backend import (
    AttentionSlot,
    OnnxModel,
    cache_dir,
    cached_export,
    cached_stage_exports,
    read_onnx_metadata,
)
from burstkpn.export.graph import (
    DEFAULT_OPSET,
    FORMAT,
    FORMAT_VERSION,
    INSTALL_HINT,
    OPSETS,
    attention_modules,
    attention_strides,
    check_exportable,
    export_onnx,
    onnx_bytes,
    onnx_traits,
    require,
    weights_sha256,
)
from burstkpn.export.stages import OnnxStages, has_stages, stage_onnx_bytes

__all__ = [
    "DEFAULT_OPSET",
    "FORMAT",
    "FORMAT_VERSION",
    "INSTALL_HINT",
    "OPSETS",
    "AttentionSlot",
    "OnnxModel",
    "OnnxStages",
    "attention_modules",
    "attention_strides",
    "cache_dir",
    "cached_export",
    "cached_stage_exports",
    "check_exportable",
    "export_onnx",
    "has_stages",
    "onnx_bytes",
    "onnx_traits",
    "read_onnx_metadata",
    "require",
    "stage_onnx_bytes",
    "weights_sha256",
]
