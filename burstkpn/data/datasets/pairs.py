"""Single-image training pairs: :class:`PairedImageDataset` (degraded / clean pairs from a
dataset folder: SIDD, GoPro, PolyU; :mod:`burstkpn.data.io.pairs`) and pairs made from clean
photos ([DCN-LKA]): :class:`SyntheticNoisyPairs` (real-noise-like pairs from our noise model)
and :class:`SyntheticBlurPairs` (blurry / sharp pairs from random motion-blur kernels).

Items are dicts with ``noisy`` ``(1, C, P, P)`` (the degraded input, a burst of one frame,
whatever the degradation) and ``clean`` ``(C, P, P)``, in linear light, so a DataLoader stacks
them into the package's ``(B, 1, C, H, W)`` convention.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from burstkpn.data.datasets.base import (
    SeededEpochDataset,
    SyntheticDataset,
    check_photo_sizes,
    draw_index,
    linear_region,
    match_stack_channels,
    random_crop,
    read_photos,
)
from burstkpn.data.degrade.blur import blur_image, motion_blur_kernel
from burstkpn.data.degrade.noise import correlated_noise, estimate_noise_map, noise_variance
from burstkpn.data.io.images import image_to_tensor, read_image, srgb_to_linear
from burstkpn.data.io.pairs import find_pairs, image_size
from burstkpn.data.sampling import augment
from burstkpn.errors import InputError


class PairedImageDataset(SeededEpochDataset):
    """Random aligned patch pairs from a dataset folder (SIDD, GoPro or PolyU layout).

    Item: ``noisy`` ``(1, C, P, P)`` (the degraded image: noisy or blurry) and ``clean``
    ``(C, P, P)``, linear light, the same random crop (and, with ``augment``, the same
    rotation / flip) of both images of a random pair. ``preload`` reads every pair once
    (memory: the decoded files); otherwise both files are read for every item (SIDD-Medium
    and GoPro decode to 23 GB and 8 GB)."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        layout: str = "auto",
        patch_size: int = 128,
        length: int = 1000,
        seed: int = 0,
        channels: int | str | None = 3,
        augment: bool = True,
        preload: bool = False,
    ) -> None:
        super().__init__(length=length, seed=seed)
        if patch_size < 1:
            raise InputError(f"patch size must be positive, got {patch_size}")
        self.root = Path(root)
        self.pairs = find_pairs(root, layout)
        self.sizes = [image_size(a) for a, _ in self.pairs]
        for (a, _), (h, w) in zip(self.pairs, self.sizes, strict=True):
            if min(h, w) < patch_size:
                raise InputError(
                    f"'{a.relative_to(self.root)}' ({w}x{h}) is smaller than the patch "
                    f"({patch_size} px)"
                )
        self.cache = [self._read(k) for k in range(len(self.pairs))] if preload else None
        self.patch_size = patch_size
        self.channels = channels
        self.augment = augment

    def _read(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = (read_image(p) for p in self.pairs[k])
        if a.shape[:2] != b.shape[:2]:
            raise InputError(f"size mismatch between '{self.pairs[k][0]}' and '{self.pairs[k][1]}'")
        return a, b

    def load_pair(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair ``k`` whole: ``(degraded, clean)``, each ``(C, H, W)`` in linear light."""
        a, b = self.cache[k] if self.cache is not None else self._read(k)
        return srgb_to_linear(image_to_tensor(a)), srgb_to_linear(image_to_tensor(b))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        g = self.generator(index)
        k = draw_index(len(self.pairs), g)
        a, b = self.cache[k] if self.cache is not None else self._read(k)
        if a.shape[2] != b.shape[2]:  # gray and colour: make both colour
            a, b = (np.repeat(z, 3, axis=2) if z.shape[2] == 1 else z for z in (a, b))
        pair = random_crop((a, b), self.patch_size, g, self.sizes[k])
        if self.augment:
            pair = augment(pair, g)
        pair = match_stack_channels(srgb_to_linear(pair), self.channels, g)
        return {"noisy": pair[0][None], "clean": pair[1]}


class _PhotoPairs(SyntheticDataset):
    """Square regions of clean photos (as :class:`SyntheticBurstDataset` reads them) of
    ``patch_size + margin`` px, for the synthetic pair datasets below; the other keywords are
    those of :class:`~burstkpn.data.datasets.base.SyntheticDataset`."""

    def __init__(
        self, source: str | list[str] | None = None, *, margin: int = 0, **options: Any
    ) -> None:
        super().__init__(**options)
        need = self.patch_size + margin
        self.refs, self.images = read_photos(source)
        check_photo_sizes(
            self.refs, self.images, need, f"smaller than the {need} px region a pair needs"
        )
        self.need = need

    def _region(self, index: int) -> tuple[torch.Tensor, torch.Generator]:
        g = self.generator(index)
        return linear_region(self.images, self.need, g, self.channels, self.augment), g


class SyntheticNoisyPairs(_PhotoPairs):
    """Noisy / clean pairs from clean photos with the package's noise model
    (:mod:`burstkpn.data.degrade.noise`): ``x ~ N(y, sigma_r^2 + sigma_s y)`` in linear light,
    the parameters drawn per item from the training ranges (log-uniform by default), so after
    the sRGB encoding the noise is signal-dependent as a camera's. ``correlation`` ``(lo, hi)``
    draws a spatial correlation per item
    (:func:`~burstkpn.data.degrade.noise.correlated_noise`; ``(0, 0)``, the default, is white
    noise, the noise model as the papers state it; ``(0, 1)`` imitates demosaiced JPEGs such as
    PolyU's). Items add ``noise_map`` ``(C, P, P)`` (eq. 1) and ``sigma_r`` / ``sigma_s`` to
    ``noisy`` / ``clean``. Other keywords: :class:`~burstkpn.data.datasets.base.SyntheticDataset`
    (``patch_size``, ``length``, ``seed``, ``channels``, ``augment``, the noise ranges)."""

    def __init__(
        self,
        source: str | list[str] | None = None,
        *,
        correlation: tuple[float, float] = (0.0, 0.0),
        **options: Any,
    ) -> None:
        super().__init__(source, **options)
        if min(correlation) < 0 or correlation[0] > correlation[1]:
            raise InputError(
                f"correlation must be a range (lo, hi) with 0 <= lo <= hi, got {correlation}"
            )
        self.correlation = tuple(float(c) for c in correlation)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clean, g = self._region(index)
        sigma_r, sigma_s = self.draw_noise(g)
        lo, hi = self.correlation
        corr = lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))
        eps = correlated_noise(tuple(clean.shape), corr, g)
        noisy = clean + eps * noise_variance(clean, sigma_r[0], sigma_s[0]).sqrt()
        return {
            "noisy": noisy[None],
            "clean": clean,
            "noise_map": estimate_noise_map(noisy, sigma_r[0], sigma_s[0]),
            "sigma_r": sigma_r[0],
            "sigma_s": sigma_s[0],
        }


class SyntheticBlurPairs(_PhotoPairs):
    """Blurry / sharp pairs from clean photos: a region of ``P + K - 1`` pixels is convolved in
    linear light (where light adds up during an exposure) with a random
    :func:`~burstkpn.data.degrade.blur.motion_blur_kernel` of size ``K = kernel_size`` and only
    the valid ``P x P`` part is kept, so no border is invented; the sharp target is the same
    ``P x P`` window. With ``noise=True`` the blurry image also gets the package's noise
    (parameters drawn from ``sigma_r_range`` / ``sigma_s_range``, log-uniform). Items add
    ``kernel`` ``(K, K)``. Other keywords: :class:`~burstkpn.data.datasets.base.SyntheticDataset`
    (``patch_size``, ``length``, ``seed``, ``channels``, ``augment``)."""

    def __init__(
        self,
        source: str | list[str] | None = None,
        *,
        kernel_size: int = 15,
        extent: tuple[float, float] | None = None,
        noise: bool = False,
        sigma_r_range: tuple[float, float] = (1e-3, 1e-2),
        sigma_s_range: tuple[float, float] = (1e-4, 1e-3),
        **options: Any,
    ) -> None:
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise InputError(f"blur kernel size must be odd and positive, got {kernel_size}")
        super().__init__(
            source,
            margin=kernel_size - 1,
            sigma_r_range=sigma_r_range,
            sigma_s_range=sigma_s_range,
            **options,
        )
        self.kernel_size = kernel_size
        self.extent = extent
        self.noise = noise

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        region, g = self._region(index)
        kernel = motion_blur_kernel(self.kernel_size, g, extent=self.extent)
        blurry = blur_image(region, kernel, mode="valid")
        r = self.kernel_size // 2
        p = self.patch_size
        sharp = region[:, r : r + p, r : r + p].contiguous()
        if self.noise:
            sigma_r, sigma_s = self.draw_noise(g)
            eps = torch.randn(blurry.shape, generator=g)
            blurry = blurry + eps * noise_variance(blurry, sigma_r[0], sigma_s[0]).sqrt()
        return {"noisy": blurry[None], "clean": sharp, "kernel": kernel}
