"""Per-item helpers shared by the training datasets and the test sets: seeds derived from
integer keys (:func:`derive_seed`; item ``i`` of epoch ``e`` draws from ``derive_seed(seed, e,
i)``, a test-set image from ``derive_seed(seed, key(name))``), colour channels (luma, gray
repeated, one random plane) and the 8 symmetries of the square."""

from __future__ import annotations

import numpy as np
import torch

from burstkpn.errors import InputError

# Rec. 709 luma weights, applied to linear values when a colour image is made grayscale.
_LUMA = torch.tensor([0.2126, 0.7152, 0.0722])


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys, stable across Python sessions and platforms."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def random_plane(channels: int, generator: torch.Generator | None) -> int | None:
    """The colour plane :func:`match_channels` picks for ``"random"`` (``None`` for a
    single-channel image, which draws nothing)."""
    if channels == 1:
        return None
    return int(torch.randint(0, channels, (1,), generator=generator))


def luma(x: torch.Tensor) -> torch.Tensor:
    """Rec. 709 luma of linear colour images ``(..., 3, H, W)`` -> ``(..., 1, H, W)``."""
    return (x * _LUMA.to(x.dtype).view(3, 1, 1)).sum(-3, keepdim=True)


def match_channels(
    x: torch.Tensor, channels: int | str | None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``(C, H, W)`` linear image -> ``channels`` channels (1: luma of linear RGB; 3: gray
    repeated; ``"random"``: one colour plane drawn with ``generator``, which is what a
    per-channel network sees of a colour image). ``None`` keeps the image as it is."""
    c = x.shape[0]
    if channels == "random":
        k = random_plane(c, generator)
        return x if k is None else x[k : k + 1].contiguous()
    if channels is None or c == channels:
        return x
    if channels == 3 and c == 1:
        return x.expand(3, -1, -1).contiguous()
    if channels == 1 and c == 3:
        return luma(x)
    raise InputError(f"cannot convert a {c}-channel image to {channels} channels")


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 90-degree rotation and horizontal flip of a square ``(C, S, S)`` region (the 8
    symmetries of the square)."""
    k = int(torch.randint(0, 4, (1,), generator=generator))
    flip = bool(torch.randint(0, 2, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if flip else x


def log_uniform(lo: float, hi: float, u):
    """``u`` in [0, 1) (a float or a tensor) mapped log-uniformly onto ``[lo, hi]``."""
    return lo * (hi / lo) ** u


def recolor(
    x: torch.Tensor,
    generator: torch.Generator,
    gain_range: tuple[float, float] | None = None,
    shuffle: bool = False,
) -> torch.Tensor:
    """``(..., 3, H, W)`` linear RGB with its colours changed at random: the channels permuted
    (``shuffle``) and each scaled by a gain drawn log-uniformly from ``gain_range``. Recolouring
    the training bursts makes the colour statistics of the training photos useless as a prior
    to a model that sees the three planes together (the colour variant of ame_kpn). Draws
    nothing when neither is set."""
    if x.shape[-3] != 3:
        raise InputError(f"recolor needs RGB, got {x.shape[-3]} channel(s)")
    if shuffle:
        x = x.index_select(-3, torch.randperm(3, generator=generator))
    if gain_range is not None:
        u = torch.rand(3, generator=generator, dtype=torch.float64)
        gains = log_uniform(*gain_range, u).to(x.dtype)
        x = x * gains.view(3, 1, 1)
    return x
