"""Models: building blocks, the kernel-prediction family, the factory and checkpoints."""

from burstkpn.models.common import DenoiseOutput
from burstkpn.models.factory import (
    count_parameters,
    create_model,
    list_models,
    load_model,
    load_pretrained,
    read_metadata,
    save_model,
)
from burstkpn.models.kpn import TABLE2_CONFIGS, KernelPredictionNet
from burstkpn.models.traits import (
    ModelTraits,
    model_traits,
    traits_from_config,
    traits_from_metadata,
)

__all__ = [
    "TABLE2_CONFIGS",
    "DenoiseOutput",
    "KernelPredictionNet",
    "ModelTraits",
    "count_parameters",
    "create_model",
    "list_models",
    "load_model",
    "load_pretrained",
    "model_traits",
    "read_metadata",
    "save_model",
    "traits_from_config",
    "traits_from_metadata",
]
