"""The base of every training dataset, :class:`SeededEpochDataset`, and the per-item steps the
datasets share: random crops of stored photos or frames, the colour planes of a stack and the
item of a noisy burst.

Seeding: item ``i`` of epoch ``e`` is generated from its own ``torch.Generator`` seeded with
``derive_seed(seed, e, i)``. An item therefore does not depend on which DataLoader worker makes
it, on the number of workers, or on what was drawn before it, so runs are reproducible with any
``num_workers`` and a resumed run sees exactly the items an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from burstkpn.data.degrade.noise import (
    TRAIN_SIGMA_R,
    TRAIN_SIGMA_S,
    add_noise,
    estimate_noise_map,
    sample_noise_params,
)
from burstkpn.data.io.images import image_to_tensor, list_images, read_image, srgb_to_linear
from burstkpn.data.sampling import augment, derive_seed, match_channels, random_plane
from burstkpn.errors import InputError


class SeededEpochDataset(Dataset):
    """``length`` random items per epoch, item ``i`` of epoch ``e`` drawn from its own
    generator (:meth:`generator`) seeded with ``derive_seed(seed, e, i)`` (module docstring).
    :meth:`set_epoch` selects the epoch; a DataLoader's workers all see the same one."""

    def __init__(self, *, length: int, seed: int) -> None:
        if length < 1:
            raise InputError(f"dataset length must be positive, got {length}")
        self.length = length
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of items for ``epoch`` (the same set whenever the epoch repeats)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def generator(self, index: int, *keys: int) -> torch.Generator:
        """The generator of item ``index`` of the current epoch, seeded with
        ``derive_seed(seed, epoch, index, *keys)`` (extra ``keys``: a second, independent
        stream of the same item). ``IndexError`` outside ``[0, length)``."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        return torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, index, *keys))


class SyntheticDataset(SeededEpochDataset):
    """The options every dataset synthesised from clean images shares (the others pass them on
    as keywords): ``patch_size`` px square items, ``length`` items per epoch and ``seed``
    (:class:`SeededEpochDataset`), ``channels`` (:func:`~burstkpn.data.sampling.match_channels`;
    ``"random"``: one colour plane per item), ``augment`` (a random rotation / flip per item)
    and the ranges the noise parameters of an item are drawn from (:meth:`draw_noise`)."""

    def __init__(
        self,
        *,
        patch_size: int = 64,
        length: int = 1000,
        seed: int = 0,
        channels: int | str | None = 3,
        augment: bool = True,
        sigma_r_range: tuple[float, float] = TRAIN_SIGMA_R,
        sigma_s_range: tuple[float, float] = TRAIN_SIGMA_S,
        log_uniform: bool = True,
    ) -> None:
        super().__init__(length=length, seed=seed)
        self.patch_size = patch_size
        self.channels = channels
        self.augment = augment
        self.sigma_r_range = sigma_r_range
        self.sigma_s_range = sigma_s_range
        self.log_uniform = log_uniform

    def draw_noise(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sigma_r, sigma_s)`` of one item, each of shape ``(1,)``
        (:func:`~burstkpn.data.degrade.noise.sample_noise_params`; log-uniform with
        ``log_uniform``)."""
        return sample_noise_params(
            1, generator, self.sigma_r_range, self.sigma_s_range, self.log_uniform
        )


# --------------------------------------------------------------------------- photos
def read_photos(source: str | list[str] | None) -> tuple[list[str], list[np.ndarray]]:
    """The image references of ``source`` (:func:`~burstkpn.data.io.images.list_images`) and
    the images decoded once, kept in their stored dtype (uint8 / uint16), so memory is about
    the size of the files decoded."""
    refs = list_images(source)
    return refs, [read_image(r) for r in refs]


def check_photo_sizes(
    refs: Sequence[str], images: Sequence[np.ndarray], need: int, problem: str
) -> None:
    """``InputError`` ``"<ref>: image of <W>x<H> px is <problem>"`` for the first image with a
    side shorter than ``need`` px."""
    for ref, img in zip(refs, images, strict=True):
        if min(img.shape[:2]) < need:
            raise InputError(f"{ref}: image of {img.shape[1]}x{img.shape[0]} px is {problem}")


def draw_index(n: int, generator: torch.Generator) -> int:
    """A uniformly random integer in ``[0, n)``."""
    return int(torch.randint(0, n, (1,), generator=generator))


def random_crop(
    images: Sequence[np.ndarray],
    size: int,
    generator: torch.Generator,
    shape: tuple[int, int] | None = None,
) -> torch.Tensor:
    """One random ``size`` x ``size`` window, the same in every stored image (all of one
    ``(H, W)``: ``shape``, default the first image's), as a stack ``(T, C, S, S)`` of
    :func:`~burstkpn.data.io.images.image_to_tensor` values. The top then the left edge are
    drawn."""
    h, w = images[0].shape[:2] if shape is None else shape
    y = draw_index(h - size + 1, generator)
    x = draw_index(w - size + 1, generator)
    return torch.stack([image_to_tensor(z[y : y + size, x : x + size]) for z in images])


def random_region(
    image: np.ndarray, size: int, generator: torch.Generator, augmented: bool
) -> torch.Tensor:
    """A random ``(C, S, S)`` square of a stored photo (sRGB values), with a random rotation /
    flip (:func:`~burstkpn.data.sampling.augment`) when ``augmented``."""
    region = random_crop([image], size, generator)[0]
    return augment(region, generator) if augmented else region


def linear_region(
    images: Sequence[np.ndarray],
    size: int,
    generator: torch.Generator,
    channels: int | str | None,
    augmented: bool,
) -> torch.Tensor:
    """:func:`random_region` of a random photo of ``images``, in linear light and ``channels``
    (:func:`~burstkpn.data.sampling.match_channels`)."""
    image = images[draw_index(len(images), generator)]
    region = random_region(image, size, generator, augmented)
    return match_channels(srgb_to_linear(region), channels, generator)


def match_stack_channels(
    stack: torch.Tensor, channels: int | str | None, generator: torch.Generator
) -> torch.Tensor:
    """:func:`~burstkpn.data.sampling.match_channels` for every image of a stack ``(T, C, H,
    W)`` (a clip, or a degraded / clean pair), drawing one colour plane for all of them when
    ``channels="random"``."""
    if channels == "random":
        k = random_plane(stack.shape[1], generator)
        return stack if k is None else stack[:, k : k + 1].contiguous()
    return torch.stack([match_channels(x, channels) for x in stack])


# --------------------------------------------------------------------------- noisy items
def noisy_item(
    clean_burst: torch.Tensor,
    sigma_r: torch.Tensor,
    sigma_s: torch.Tensor,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """The item of a clean burst ``(N, C, P, P)`` (reference first) with the noise model of
    :mod:`burstkpn.data.degrade.noise` drawn independently per value: ``noisy`` ``(N, C, P,
    P)``, ``noise_map`` of the noisy reference ([AME-KPN] eq. 1) and ``clean`` (the clean
    reference) ``(C, P, P)``, ``sigma_r`` / ``sigma_s`` (scalars; drawn as ``(1,)``)."""
    noisy = add_noise(clean_burst[None], sigma_r, sigma_s, generator)[0]
    return {
        "noisy": noisy,
        "noise_map": estimate_noise_map(noisy[:1], sigma_r, sigma_s)[0],
        "clean": clean_burst[0],
        "sigma_r": sigma_r[0],
        "sigma_s": sigma_s[0],
    }
