"""The fixed deblurring test set: seeded synthetic motion blur on whole clean photos, written to
disk with the true kernels and a manifest (``burstkpn make-testset --task deblur``).

Layout of a test-set folder::

    manifest.json           generation parameters and one entry per image (with sha256)
    pairs/<image>_<level>.npz

Each ``.npz`` (read with ``numpy.load(allow_pickle=False)``) holds ``blurry_u16`` ``(C, H, W)``
uint16 (linear light, the 16-bit codes of
:func:`burstkpn.data.testsets.manifest.encode_noisy`, covering [-1, 3] in steps of 6.1e-5),
``sharp`` ``(C, H, W)`` float32 (linear light), ``kernel`` ``(K, K)``
float32 (the point spread function, sums to 1), ``sigma_r`` and ``sigma_s`` (0 without noise).

Generation, per image (every photo whole, converted to 3-channel linear light): one
:func:`~burstkpn.data.degrade.blur.motion_blur_kernel` of size K (default 15, extent uniform in
[1, (K - 1) / 2] px) drawn from a generator seeded by the set's seed and the image name; the
photo convolved with it in linear light (where light adds up during the exposure), keeping only
the "valid" part, so no border is invented: the blurry and sharp images are ``H - K + 1`` by
``W - K + 1``, the sharp one the photo's matching window. Levels: ``none`` (the default) adds no
noise; a noise level (``gain1``.. or ``SIGMA_R,SIGMA_S``) adds the package's noise to the blurry
image (generator seeded by the seed, image and level). The convolution is SciPy's FFT
(float64, single-threaded; :func:`~burstkpn.data.degrade.blur.convolve_valid`), so the same
inputs, seed and versions give byte-identical files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from burstkpn.data.degrade.blur import convolve_valid, motion_blur_kernel
from burstkpn.data.degrade.noise import add_noise, estimate_noise_map, parse_noise
from burstkpn.data.io.images import list_images, load_linear
from burstkpn.data.sampling import match_channels
from burstkpn.data.testsets.manifest import (
    ManifestTestSet,
    ManifestWriter,
    decode_noisy,
    encode_noisy,
    npz_bytes,
)
from burstkpn.errors import InputError

FORMAT = "burstkpn-deblur-testset"
NO_NOISE = "none"


def make_deblur_testset(
    source: str | Sequence[str] | None,
    out_dir: str | os.PathLike,
    *,
    levels: Sequence[str] = (NO_NOISE,),
    kernel_size: int = 15,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Write a deblurring test set (module docstring) and return its manifest."""
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise InputError(f"blur kernel size must be odd and at least 3, got {kernel_size}")
    parsed = [None if lv == NO_NOISE else parse_noise(lv) for lv in levels]
    if not parsed:
        raise InputError("no levels given")
    refs = list_images(source)
    writer = ManifestWriter(out_dir, seed=seed, force=force)
    for ref in tqdm(refs, desc="make-testset deblur", unit="image", disable=not progress):
        name = writer.name(ref)
        sharp_full = match_channels(load_linear(ref), 3)
        if min(sharp_full.shape[-2:]) < kernel_size + 16:
            raise InputError(f"{ref}: too small for a {kernel_size} px blur kernel")
        g = writer.generator(name)
        kernel = motion_blur_kernel(kernel_size, g)
        blurry_clean = convolve_valid(sharp_full, kernel)
        r = kernel_size // 2
        sharp = sharp_full[:, r : sharp_full.shape[1] - r, r : sharp_full.shape[2] - r]
        for level in parsed:
            blurry, sr, ss = blurry_clean, 0.0, 0.0
            if level is not None:
                gl = writer.generator(name, level.name)
                blurry = add_noise(blurry_clean[None], level.sigma_r, level.sigma_s, gl)[0]
                sr, ss = level.sigma_r, level.sigma_s
            codes, clipped = encode_noisy(blurry)
            data = npz_bytes(
                {
                    "blurry_u16": codes,
                    "sharp": sharp.numpy().astype(np.float32),
                    "kernel": kernel.numpy().astype(np.float32),
                    "sigma_r": np.float64(sr),
                    "sigma_s": np.float64(ss),
                }
            )
            tag = NO_NOISE if level is None else level.name
            writer.write(
                f"pairs/{name}_{tag}.npz",
                data,
                image=name,
                source=str(ref),
                level=tag,
                sigma_r=sr,
                sigma_s=ss,
                clipped=clipped,
                size=[int(sharp.shape[1]), int(sharp.shape[2])],
            )
    generator = {
        "seed": seed,
        "kernel_size": kernel_size,
        "kernel": "motion_blur_kernel(size, extent uniform in [1, (size - 1) / 2], steps=32, "
        "momentum=0.8, jitter=0.5)",
        "levels": [NO_NOISE if lv is None else lv.name for lv in parsed],
    }
    return writer.finish(FORMAT, "pairs", generator, encoding="blurry_encoding")


@dataclass
class RestorePair:
    """One degraded / clean pair for the restoration benchmarks, batched as the package
    expects: ``degraded`` and ``clean`` ``(1, C, H, W)`` in linear light; ``kernel`` ``(K, K)``
    (the true blur, or ``None``), ``sigma_r`` / ``sigma_s`` the added noise (``None`` where
    unknown, e.g. real pairs)."""

    image: str
    level: str
    degraded: torch.Tensor
    clean: torch.Tensor
    kernel: torch.Tensor | None = None
    sigma_r: float | None = None
    sigma_s: float | None = None

    @property
    def noisy(self) -> torch.Tensor:
        """``(1, 1, C, H, W)``: the degraded image as a burst of one frame (model input)."""
        return self.degraded[:, None]

    @property
    def noise_map(self) -> torch.Tensor | None:
        if not self.sigma_r and not self.sigma_s:
            return None
        return estimate_noise_map(self.degraded, self.sigma_r, self.sigma_s)


class DeblurTestSet(ManifestTestSet):
    """A test set written by :func:`make_deblur_testset`; iterate for :class:`RestorePair`."""

    FORMAT = FORMAT
    ENTRIES = "pairs"
    NOT_A_TEST_SET = "'{root}' is not a deblur test set (no manifest.json)"
    WRONG_FORMAT = "'{path}' is not a deblur test set (make one with make-testset --task deblur)"

    @property
    def levels(self) -> list[str]:
        return list(self.manifest["generator"]["levels"])

    def load(self, entry: dict) -> RestorePair:
        z = self.read(entry)
        return RestorePair(
            image=entry["image"],
            level=entry["level"],
            degraded=decode_noisy(z["blurry_u16"])[None],
            clean=torch.from_numpy(z["sharp"])[None],
            kernel=torch.from_numpy(z["kernel"]),
            sigma_r=float(z["sigma_r"]),
            sigma_s=float(z["sigma_s"]),
        )
