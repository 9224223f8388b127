"""Models: building blocks, the kernel-prediction family, the factory and checkpoints."""

from burstkpn.models.factory import (
    count_parameters,
    create_model,
    list_models,
    load_model,
    load_pretrained,
    read_metadata,
    save_model,
)
from burstkpn.models.kpn import TABLE2_CONFIGS, DenoiseOutput, KernelPredictionNet

__all__ = [
    "TABLE2_CONFIGS",
    "DenoiseOutput",
    "KernelPredictionNet",
    "count_parameters",
    "create_model",
    "list_models",
    "load_model",
    "load_pretrained",
    "read_metadata",
    "save_model",
]
