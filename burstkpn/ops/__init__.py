"""Low-level operators shared by the models: per-pixel kernel application ([AME-KPN] eq. (4))."""

from burstkpn.ops.kernels import (
    KernelApply,
    apply_kernels,
    apply_multisize_kernels,
    fuse_multisize_kernels,
)

__all__ = [
    "KernelApply",
    "apply_kernels",
    "apply_multisize_kernels",
    "fuse_multisize_kernels",
]
