"""Runtime settings for speed on CPU and GPU: allocator tuning, precision and memory format.

On CPUs with AVX-512 BF16 (or AMX), bfloat16 autocast with channels_last ran convolutions
about 4x faster than float32. On CPUs without native bfloat16 (AVX2 only) oneDNN has no
bfloat16 convolution and PyTorch falls back to its reference ``_slow_conv2d``: measured 100x
*slower* than float32 (a 64->64 3x3 conv on 16x64x64x64: 0.37-5.0 s against 0.03-0.05 s).
``precision="auto"`` (the default everywhere) therefore picks bfloat16 only where the hardware
runs it natively, and float32 + channels_last otherwise. Keeping large temporaries mapped
(glibc ``mallopt``) gave 1.3-6x (see docs/benchmarks.md, "burstkpn bench speed").
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

import torch
from torch import nn

_TUNED: int | None = None  # the mmap threshold applied
PRECISIONS = ("bf16", "fp32")
PRECISION_CHOICES = ("auto", *PRECISIONS)


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def fit_threads_to_affinity() -> int:
    """Lower torch's intra-op threads to the cores this process may use, unless the user set
    ``OMP_NUM_THREADS``. Under ``taskset`` or a CPU-limited container torch still starts one
    thread per core of the machine; two busy-waiting OpenMP threads on one core ran our noise
    estimation 2-3x slower than one. Returns the thread count."""
    if "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() > cpu_count():
        torch.set_num_threads(cpu_count())
    return torch.get_num_threads()


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` runs bfloat16 convolutions natively (CUDA with bf16 support; a CPU
    with AVX-512 BF16 or AMX, as oneDNN reports it)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``auto`` -> ``bf16`` where :func:`native_bf16`, else ``fp32``; others unchanged."""
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


# mallopt(M_MMAP_THRESHOLD) per job: training keeps every block up to 2 GiB in the heap (its
# temporaries have the same sizes every step); denoising keeps blocks up to 256 MiB there (its
# tile temporaries) and lets the full-size buffers of the staged tiling go back to the OS when
# freed, which bounds the heap's retained memory. 12 MP colour burst, AMD Zen 3, float32
# (docs/speed/profile.md): 305.6 s without tuning, 249.7 s at 2 GiB (peak RSS 7.5 -> 8.9
# GiB), 250.8 s at 128 MiB (7.9 GiB), 266.6 s at 64 MiB (7.7 GiB). 256 MiB since the encoder
# stage's tiles doubled (staged.ENCODER_TILE_SCALE): a 32-channel float32 map of its window
# is 165 MB, which 128 MiB sent to mmap and a page fault per page on every tile (3 MP
# colour burst, float32 on an AMD Zen 4: encoder per tile 10.25 s against 9.36 s, system
# time 3.6 against 2.9 s)
_INT_MAX = 2**31 - 1  # mallopt takes an int
TRAIN_MMAP_THRESHOLD = _INT_MAX
DENOISE_MMAP_THRESHOLD = 256 * 2**20


def tune_allocator(mmap_threshold: int = TRAIN_MMAP_THRESHOLD) -> bool:
    """Stop glibc from returning every large temporary to the OS (and page-faulting it back):
    blocks up to ``mmap_threshold`` bytes come from the heap, and its top is not trimmed
    (``M_TRIM_THRESHOLD`` at its largest). Call before the first large allocation. Returns
    whether the setting was applied (Linux / glibc only)."""
    global _TUNED
    if _TUNED == mmap_threshold:
        return True
    if not 0 < mmap_threshold <= _INT_MAX:
        raise ValueError(f"mmap_threshold must be in [1, 2**31), got {mmap_threshold}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]  # mallopt(int, int): no silent masking
    libc.mallopt.restype = ctypes.c_int
    ok = libc.mallopt(m_mmap_threshold, mmap_threshold) == 1
    ok = libc.mallopt(m_trim_threshold, _INT_MAX) == 1 and ok
    _TUNED = mmap_threshold if ok else None
    return ok


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """``bf16``: bfloat16 autocast on ``device``; ``fp32``: nothing; ``auto``: see
    :func:`resolve_precision`."""
    if resolve_precision(precision, device) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def prepare_model(model: nn.Module, device: torch.device | str, precision: str) -> nn.Module:
    """Move to ``device`` in channels_last (faster for convolutions in every precision we
    measured on CPU: float32 0.032 s against 0.052 s for the conv above). ``precision`` is
    checked but only the autocast context uses it."""
    resolve_precision(precision, device)
    model = model.to(device).to(memory_format=torch.channels_last)
    return model


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
