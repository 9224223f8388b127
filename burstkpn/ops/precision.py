"""The dtype the ops compute in: the promoted dtype of their inputs, with float16 / bfloat16
(for example under ``torch.autocast``) promoted to float32; float64 stays float64 (for
``gradcheck``)."""

from __future__ import annotations

import torch

REDUCED = (torch.float16, torch.bfloat16)


def compute_dtype(*tensors: torch.Tensor, error: type[Exception] = TypeError) -> torch.dtype:
    """The common floating dtype of ``tensors``, float32 for reduced precision; ``error`` for a
    tensor that is not floating-point."""
    for tensor in tensors:
        if not tensor.is_floating_point():
            raise error(f"expected floating-point tensors, got {tensor.dtype}")
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return torch.float32 if dtype in REDUCED else dtype
