"""One planned block of memory for the full-size buffers of the staged tiled path.

:func:`~burstkpn.inference.staged._staged_plane` keeps a few feature maps of the whole image
(the skips and every decoder block's output, GiBs at 12 MP). Allocated and freed buffer by
buffer, each colour plane touches fresh memory again, and every page of it costs a fault that
zeroes it (on the 2-core VMs we measure on, 2.9 M faults and 33 s of system time in the
"storing cores" rows of one 12 MP colour burst; docs/speed/profile.md). The buffers a plane
takes, their sizes and the order they are freed in do not depend on the image's content, so
they are planned once: a dry run of the stages on a small crop records the sequence
(:class:`RecordingPool`), :func:`plan_offsets` places every buffer at an offset of one arena
where no buffer alive at the same time overlaps it, and :class:`ArenaPool` hands out views of
that arena to every plane. Memory is touched once per image, and the arena is no larger than
the most bytes the buffers held at once (for the U-Nets here the greedy placement reaches that
bound; ``tests/inference/test_arena.py``). :class:`_BufferPool` is the unplanned pool, for
bursts smaller than the planning crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

PAGE = 4096  # offsets are page-aligned: each buffer starts on its own pages


@dataclass(frozen=True)
class Request:
    """One buffer a plane takes: ``shape`` at the dry run's size, its dtype and layout, and the
    downscale of its spatial dimensions against the network input (1, 2, 4, ...)."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    channels_last: bool
    scale: int
    start: int  # event index of the take
    end: int  # event index of the give (the end of the plane when never given)


def _nbytes(shape, dtype: torch.dtype) -> int:
    return math.prod(shape) * dtype.itemsize


def _channels_last(shape, fmt: torch.memory_format) -> bool:
    """Whether a buffer of ``shape`` in ``fmt`` is laid out channels-last (one channel: no)."""
    return fmt == torch.channels_last and shape[1] > 1


def plan_offsets(
    sizes: list[int], lifetimes: list[tuple[int, int]], align: int = PAGE
) -> tuple[list[int], int]:
    """Byte offsets for buffers of ``sizes`` alive over the half-open event intervals
    ``lifetimes``, such that no two buffers alive at the same time overlap; and the arena size.

    Greedy by size (largest first, each at the lowest aligned offset free of the buffers
    already placed whose lifetimes intersect its own), the usual static plan of inference
    runtimes; offsets are multiples of ``align``."""
    if len(sizes) != len(lifetimes):
        raise ValueError("one lifetime per size")
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    offsets = [0] * len(sizes)
    placed: list[int] = []
    for i in order:
        s0, e0 = lifetimes[i]
        busy = sorted(
            (offsets[j], offsets[j] + sizes[j])
            for j in placed
            if lifetimes[j][0] < e0 and s0 < lifetimes[j][1]
        )
        at = 0
        for b0, b1 in busy:
            if at + sizes[i] <= b0:
                break
            at = max(at, math.ceil(b1 / align) * align)
        offsets[i] = at
        placed.append(i)
    total = max((o + s for o, s in zip(offsets, sizes, strict=True)), default=0)
    return offsets, total


def peak_live_bytes(sizes: list[int], lifetimes: list[tuple[int, int]]) -> int:
    """The most bytes alive at once: a lower bound of any plan's arena."""
    events = sorted({t for life in lifetimes for t in life})
    return max(
        (sum(s for s, (a, b) in zip(sizes, lifetimes, strict=True) if a <= t < b) for t in events),
        default=0,
    )


class RecordingPool:
    """The pool interface of :func:`~burstkpn.inference.staged._staged_plane` (``take``,
    ``give``) handing out fresh tensors and recording the sequence, for a dry run on an input
    of spatial size ``size`` (the network input's height and width)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self.events = 0
        self.requests: list[dict] = []
        self._open: dict[int, int] = {}  # id of a taken tensor -> index of its request

    def begin(self) -> None:
        """A plane starts (nothing to do: one dry run records one plane)."""

    def take(self, shape, dtype, device, fmt) -> torch.Tensor:
        buf = torch.empty(shape, dtype=dtype, device=device, memory_format=fmt)
        scale = self.size[0] // shape[-2]
        if (shape[-2] * scale, shape[-1] * scale) != tuple(self.size):
            raise ValueError(f"buffer {tuple(shape)} is not a downscale of {self.size}")
        channels_last = _channels_last(shape, fmt)
        self._open[id(buf)] = len(self.requests)
        self.requests.append(
            dict(
                shape=tuple(shape),
                dtype=dtype,
                channels_last=channels_last,
                scale=scale,
                start=self.events,
            )
        )
        self.events += 1
        return buf

    def give(self, buf: torch.Tensor, keep: bool = True) -> None:
        i = self._open.pop(id(buf), None)
        if i is not None:
            self.requests[i]["end"] = self.events
            self.events += 1

    def plan(self) -> list[Request]:
        end = self.events + 1
        return [Request(**{"end": end, **r}) for r in self.requests]


class ArenaPool:
    """Views of one arena, planned by :func:`plan_offsets` from a dry run's ``requests``
    (:meth:`RecordingPool.plan`), for network inputs of ``hp x wp`` on ``device``.

    The ``i``-th ``take`` of a plane gets the ``i``-th planned buffer; :meth:`begin` starts a
    plane. A request that does not match the plan (which the stages never make) gets a fresh
    tensor and is counted in ``fallbacks``. The arena is allocated at the first take."""

    def __init__(self, requests: list[Request], hp: int, wp: int, device) -> None:
        self.requests = requests
        self.shapes = [(*r.shape[:-2], hp // r.scale, wp // r.scale) for r in requests]
        sizes = [_nbytes(s, r.dtype) for s, r in zip(self.shapes, requests, strict=True)]
        lifetimes = [(r.start, r.end) for r in requests]
        self.offsets, self.size = plan_offsets(sizes, lifetimes)
        self.peak = peak_live_bytes(sizes, lifetimes)
        self.device = torch.device(device)
        self.arena: torch.Tensor | None = None
        self.index = 0
        self.fallbacks = 0

    def begin(self) -> None:
        self.index = 0

    def take(self, shape, dtype, device, fmt) -> torch.Tensor:
        i, self.index = self.index, self.index + 1
        channels_last = _channels_last(shape, fmt)
        if (
            i >= len(self.requests)
            or tuple(shape) != self.shapes[i]
            or dtype != self.requests[i].dtype
            or channels_last != self.requests[i].channels_last
            or torch.device(device) != self.device
        ):
            self.fallbacks += 1
            return torch.empty(shape, dtype=dtype, device=device, memory_format=fmt)
        if self.arena is None:
            self.arena = torch.empty(self.size, dtype=torch.uint8, device=self.device)
        stride = torch.empty(shape, dtype=dtype, device="meta", memory_format=fmt).stride()
        n = _nbytes(shape, dtype)
        flat = self.arena[self.offsets[i] : self.offsets[i] + n].view(dtype)
        return flat.as_strided(tuple(shape), stride)

    def give(self, buf: torch.Tensor, keep: bool = True) -> None:
        """Nothing to free: the buffer's bytes belong to later requests of the plan."""


class _BufferPool:
    """The full-size buffers of :func:`~burstkpn.inference.staged._staged_plane`, kept after
    use for the next colour plane wherever that does not raise the memory peak.

    A plane's buffers hold GiBs at 12 MP; freed and allocated again for the next plane, every
    page of them is faulted in and zeroed anew by the kernel (a large part of the 12 MP
    profile's time outside the layers on a 2-core VM, docs/speed/profile.md). Buffers handed
    back with ``keep`` stay as spares while the bytes in use plus the spares stay within the
    largest number of bytes in use so far; :func:`_staged_plane` keeps only the last block's
    output (what the next plane's first skip needs), because buffers kept while the heads
    run would add to the peak their temporaries reach. A request of the same shape, dtype
    and layout takes a spare, and spares are dropped, oldest first, where a new buffer would
    go beyond that peak. Which buffer a stage writes into never changes a value (every core
    is stored before it is read)."""

    def __init__(self) -> None:
        self.spare: list[torch.Tensor] = []
        self.live = 0  # bytes of the buffers taken and not yet given back
        self.peak = 0  # the most bytes taken at once
        self.reused = 0  # bytes handed out again from the spares

    @staticmethod
    def _key(t: torch.Tensor):
        fmt = t.is_contiguous(memory_format=torch.channels_last) and t.shape[1] > 1
        return tuple(t.shape), t.dtype, t.device, fmt

    def begin(self) -> None:
        """A plane starts (spares carry over as they are)."""

    def spare_bytes(self) -> int:
        return sum(t.nbytes for t in self.spare)

    def take(self, shape, dtype, device, fmt) -> torch.Tensor:
        key = (
            tuple(shape),
            dtype,
            torch.device(device),
            fmt == torch.channels_last and shape[1] > 1,
        )
        for i, t in enumerate(self.spare):
            if self._key(t) == key:
                buf = self.spare.pop(i)
                self.reused += buf.nbytes
                break
        else:
            need = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
            while self.spare and self.live + self.spare_bytes() + need > self.peak:
                self.spare.pop(0)
            buf = torch.empty(shape, dtype=dtype, device=device, memory_format=fmt)
        self.live += buf.nbytes
        self.peak = max(self.peak, self.live)
        return buf

    def give(self, buf: torch.Tensor, keep: bool = True) -> None:
        """Hand ``buf`` back (the caller drops its own references to it); ``keep=False``
        frees it even where it would fit."""
        self.live -= buf.nbytes
        if keep and self.live + self.spare_bytes() + buf.nbytes <= self.peak:
            self.spare.append(buf)
