"""Paired training data for single-image restoration (dcn_lka.md): degraded / clean pairs read
from dataset folders (SIDD, GoPro, PolyU layouts), and synthetic pairs made from clean photos
(real-noise-like pairs from our noise model; blurry / sharp pairs from random motion-blur
kernels).

Every dataset item is a dict with ``noisy`` ``(1, C, P, P)`` (the degraded input, a burst of one
frame, whatever the degradation) and ``clean`` ``(C, P, P)``, in linear light, so a DataLoader
stacks them into the package's ``(B, 1, C, H, W)`` convention. Seeding follows
:mod:`burstkpn.data.datasets`: item ``i`` of epoch ``e`` draws from its own generator seeded
with ``derive_seed(seed, e, i)``, independent of workers and of what was drawn before.

Folder layouts (searched recursively under the root; names as the datasets ship them):

- ``sidd``: SIDD-Medium sRGB, ``<scene>/<id>_NOISY_SRGB_<k>.PNG`` with ``<id>_GT_SRGB_<k>.PNG``
  beside it (any file whose name has ``NOISY`` pairs with the same name with ``GT``);
- ``gopro``: GoPro, ``<sequence>/blur/<frame>.png`` with ``<sequence>/sharp/<frame>.png``;
- ``polyu``: PolyU real-world noisy images, ``<name>_real.JPG`` (or ``_Real``) with
  ``<name>_mean.JPG`` (the mean of many captures) beside it.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from burstkpn.data.datasets import augment, derive_seed, match_channels
from burstkpn.data.images import (
    IMAGE_EXTENSIONS,
    image_to_tensor,
    list_images,
    read_image,
    srgb_to_linear,
)
from burstkpn.data.noise import (
    TRAIN_SIGMA_R,
    TRAIN_SIGMA_S,
    estimate_noise_map,
    noise_variance,
    sample_noise_params,
)
from burstkpn.errors import InputError, MissingInputError

LAYOUTS = ("auto", "sidd", "gopro", "polyu")


# --------------------------------------------------------------------------- finding pairs
def _image_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _unmatched(kind: str, files: list[Path], root: Path) -> InputError:
    first = files[0].relative_to(root)
    more = f" and {len(files) - 1} more" if len(files) > 1 else ""
    return InputError(f"{kind} in '{root}': '{first}'{more}")


def _sidd_pairs(root: Path, files: list[Path]) -> list[tuple[Path, Path]]:
    noisy = [p for p in files if re.search("noisy", p.name, re.IGNORECASE)]
    gt = {p for p in files if re.search(r"(?<![a-z])gt(?![a-z])", p.name, re.IGNORECASE)}

    def partner(p: Path) -> Path:
        swap = lambda m: "GT" if m.group(0).isupper() else "gt"  # noqa: E731
        return p.with_name(re.sub("noisy", swap, p.name, count=1, flags=re.IGNORECASE))

    pairs = [(p, partner(p)) for p in noisy]
    missing = [p for p, q in pairs if q not in gt]
    if missing:
        raise _unmatched("no ground truth (NOISY -> GT) for", missing, root)
    lonely = sorted(gt - {q for _, q in pairs})
    if lonely:
        raise _unmatched("no noisy image (GT -> NOISY) for", lonely, root)
    return pairs


def _gopro_pairs(root: Path, files: list[Path]) -> list[tuple[Path, Path]]:
    blur = [p for p in files if p.parent.name.lower() == "blur"]
    sharp = {p for p in files if p.parent.name.lower() == "sharp"}
    pairs = [(p, p.parent.parent / "sharp" / p.name) for p in blur]
    missing = [p for p, q in pairs if q not in sharp]
    if missing:
        raise _unmatched("no sharp/ image for", missing, root)
    lonely = sorted(sharp - {q for _, q in pairs})
    if lonely:
        raise _unmatched("no blur/ image for", lonely, root)
    return pairs


def _polyu_pairs(root: Path, files: list[Path]) -> list[tuple[Path, Path]]:
    real, mean = [], {}
    for p in files:
        stem = p.stem.lower()
        if stem.endswith("_real"):
            real.append(p)
        elif stem.endswith("_mean"):
            mean[(p.parent, stem[: -len("_mean")])] = p
    pairs, missing = [], []
    for p in real:
        q = mean.pop((p.parent, p.stem.lower()[: -len("_real")]), None)
        if q is None:
            missing.append(p)
        else:
            pairs.append((p, q))
    if missing:
        raise _unmatched("no _mean image for", missing, root)
    if mean:
        raise _unmatched("no _real image for", sorted(mean.values()), root)
    return pairs


_FINDERS = {"sidd": _sidd_pairs, "gopro": _gopro_pairs, "polyu": _polyu_pairs}


def detect_layout(files: list[Path]) -> str | None:
    """``gopro`` if images sit in ``blur/`` folders, ``sidd`` if names contain ``NOISY``,
    ``polyu`` if stems end in ``_real``; ``None`` otherwise."""
    if any(p.parent.name.lower() == "blur" for p in files):
        return "gopro"
    if any(re.search("noisy", p.name, re.IGNORECASE) for p in files):
        return "sidd"
    if any(p.stem.lower().endswith("_real") for p in files):
        return "polyu"
    return None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file, from its header where Pillow can read it."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            w, h = im.size
        return int(h), int(w)
    except Exception:  # formats Pillow does not know (e.g. some TIFFs): decode fully
        arr = read_image(path)
        return int(arr.shape[0]), int(arr.shape[1])


def find_pairs(root: str | os.PathLike, layout: str = "auto") -> list[tuple[Path, Path]]:
    """Sorted ``(degraded, clean)`` file pairs under ``root`` in a dataset ``layout`` (module
    docstring; ``auto`` detects it). Raises a one-line :class:`InputError` for a missing or
    empty folder, an undetectable layout, a file without its partner, or a pair whose two
    images differ in size."""
    if layout not in LAYOUTS:
        raise InputError(f"unknown pair layout '{layout}' (use one of {', '.join(LAYOUTS)})")
    root = Path(root)
    if not root.exists():
        raise MissingInputError(f"no such folder: '{root}'")
    if not root.is_dir():
        raise InputError(f"'{root}' is not a folder")
    files = _image_files(root)
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in folder '{root}'")
    if layout == "auto":
        detected = detect_layout(files)
        if detected is None:
            raise InputError(
                f"'{root}' has no SIDD (*NOISY*/*GT*), GoPro (blur/, sharp/) or PolyU "
                "(*_real/*_mean) pairs"
            )
        layout = detected
    pairs = sorted(_FINDERS[layout](root, files))
    if not pairs:
        raise InputError(f"no {layout} pairs found in '{root}'")
    for a, b in pairs:
        sa, sb = image_size(a), image_size(b)
        if sa != sb:
            raise InputError(
                f"size mismatch: '{a.relative_to(root)}' is {sa[1]}x{sa[0]} but "
                f"'{b.relative_to(root)}' is {sb[1]}x{sb[0]}"
            )
    return pairs


def _pick_channels(
    pair: torch.Tensor, channels: int | str | None, generator: torch.Generator
) -> torch.Tensor:
    """:func:`match_channels` for a stacked pair ``(2, C, H, W)``, drawing one colour plane
    for both images when ``channels="random"``."""
    if channels == "random":
        c = pair.shape[1]
        k = int(torch.randint(0, c, (1,), generator=generator)) if c > 1 else 0
        return pair[:, k : k + 1].contiguous()
    return torch.stack([match_channels(x, channels) for x in pair])


class PairedImageDataset(Dataset):
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
        if length < 1:
            raise InputError(f"dataset length must be positive, got {length}")
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
        self.length = length
        self.seed = seed
        self.channels = channels
        self.augment = augment
        self.epoch = 0

    def _read(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = (read_image(p) for p in self.pairs[k])
        if a.shape[:2] != b.shape[:2]:
            raise InputError(f"size mismatch between '{self.pairs[k][0]}' and '{self.pairs[k][1]}'")
        return a, b

    def load_pair(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair ``k`` whole: ``(degraded, clean)``, each ``(C, H, W)`` in linear light."""
        a, b = self.cache[k] if self.cache is not None else self._read(k)
        return srgb_to_linear(image_to_tensor(a)), srgb_to_linear(image_to_tensor(b))

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of patches for ``epoch`` (the same set whenever the epoch repeats)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, index))
        k = int(torch.randint(0, len(self.pairs), (1,), generator=g))
        h, w = self.sizes[k]
        p = self.patch_size
        y = int(torch.randint(0, h - p + 1, (1,), generator=g))
        x = int(torch.randint(0, w - p + 1, (1,), generator=g))
        a, b = self.cache[k] if self.cache is not None else self._read(k)
        if a.shape[2] != b.shape[2]:  # gray and colour: make both colour
            a, b = (np.repeat(z, 3, axis=2) if z.shape[2] == 1 else z for z in (a, b))
        pair = torch.stack([image_to_tensor(z[y : y + p, x : x + p]) for z in (a, b)])
        if self.augment:
            pair = augment(pair, g)
        pair = _pick_channels(srgb_to_linear(pair), self.channels, g)
        return {"noisy": pair[0][None], "clean": pair[1]}


# --------------------------------------------------------------------------- blur kernels
def motion_blur_kernel(
    size: int,
    generator: torch.Generator,
    *,
    extent: float | tuple[float, float] | None = None,
    steps: int = 32,
    momentum: float = 0.8,
    jitter: float = 0.5,
) -> torch.Tensor:
    """A random camera-shake / motion-blur kernel ``(size, size)`` (float32, sums to 1, >= 0).

    The camera path is a random walk with momentum, uniform in time: velocity ``v_0`` a unit
    vector at a uniformly random angle, then ``v_t = momentum * v_{t-1} + jitter * n_t`` with
    ``n_t ~ N(0, I)``, position ``p_t = p_{t-1} + v_t`` for ``t = 1..steps``. High momentum
    gives smooth, nearly straight strokes; more jitter gives curved, shaky ones; speed changes
    along the path make the exposure (kernel mass) uneven, as in real shake. The path is
    sampled at the middle of ``n`` equal time slots per step, ``n`` chosen so samples are at
    most 1/4 pixel apart; the samples are centred on their mean and scaled so they reach
    ``extent`` pixels from it (Chebyshev distance; drawn uniformly from a ``(lo, hi)`` pair,
    default ``(1, (size - 1) / 2)``), and splatted bilinearly (sub-pixel accurate: bilinear
    splatting keeps the centroid) with equal weights. The kernel's centroid is therefore
    exactly the centre pixel, so a blurred image is not shifted against its sharp original.
    ``size`` must be odd (a centre pixel). ``extent=0`` gives the identity kernel.
    """
    if size < 1 or size % 2 == 0:
        raise InputError(f"blur kernel size must be odd and positive, got {size}")
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    half = (size - 1) / 2
    if extent is None:
        extent = (min(1.0, half), half)
    if isinstance(extent, (tuple, list)):
        lo, hi = (float(e) for e in extent)
        extent = lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))
    extent = float(extent)
    if not 0 <= extent <= half:
        raise InputError(f"blur extent must lie in [0, {half:g}] for a {size}x{size} kernel")
    dt = torch.float64
    angle = 2 * math.pi * float(torch.rand((), generator=generator, dtype=dt))
    noise = torch.randn(steps, 2, generator=generator, dtype=dt)
    v = torch.tensor([math.sin(angle), math.cos(angle)], dtype=dt)  # (dy, dx)
    points = [torch.zeros(2, dtype=dt)]
    for t in range(steps):
        v = momentum * v + jitter * noise[t]
        points.append(points[-1] + v)
    path = torch.stack(points)  # (steps + 1, 2)
    radius = (path - path.mean(0)).abs().max()
    if extent == 0 or radius == 0:
        kernel = torch.zeros(size, size)
        kernel[size // 2, size // 2] = 1.0
        return kernel
    path = path * (extent / radius)
    seg = path[1:] - path[:-1]
    n = max(1, math.ceil(float(seg.norm(dim=1).max()) * 4))  # samples <= 1/4 px apart
    frac = (torch.arange(n, dtype=dt) + 0.5) / n
    samples = (path[:-1, None] + frac[None, :, None] * seg[:, None]).reshape(-1, 2)
    samples = samples - samples.mean(0)
    samples = samples * (extent / samples.abs().max()) + half  # kernel coordinates
    # bilinear splat; the clamp keeps a sample on the last row / column in range
    base = samples.floor().clamp(0, size - 2)
    f = samples - base
    iy, ix = base[:, 0].long(), base[:, 1].long()
    kernel = torch.zeros(size, size, dtype=dt)
    for dy, dx, wgt in (
        (0, 0, (1 - f[:, 0]) * (1 - f[:, 1])),
        (0, 1, (1 - f[:, 0]) * f[:, 1]),
        (1, 0, f[:, 0] * (1 - f[:, 1])),
        (1, 1, f[:, 0] * f[:, 1]),
    ):
        kernel.index_put_((iy + dy, ix + dx), wgt, accumulate=True)
    kernel = kernel.clamp_min(0)
    return (kernel / kernel.sum()).float()


def blur_image(image: torch.Tensor, kernel: torch.Tensor, mode: str = "reflect") -> torch.Tensor:
    """Convolve every channel of ``image`` ``(C, H, W)`` or ``(B, C, H, W)`` with the point
    spread function ``kernel`` ``(K, K)`` (odd K; a point at ``p`` spreads to ``p + u`` with
    weight ``kernel[c + u]``, c the centre). ``mode="valid"`` returns only the pixels whose
    neighbourhood lies inside the image (``H - K + 1`` rows); ``"reflect"`` keeps the size."""
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise InputError(f"blur kernel must be square with odd size, got {tuple(kernel.shape)}")
    if mode not in ("valid", "reflect"):
        raise InputError(f"unknown blur mode '{mode}' (use 'valid' or 'reflect')")
    squeeze = image.ndim == 3
    x = image[None] if squeeze else image
    if x.ndim != 4:
        raise InputError(f"expected an image (C, H, W) or (B, C, H, W), got {tuple(image.shape)}")
    b, c, h, w = x.shape
    k = kernel.shape[0]
    x = x.reshape(b * c, 1, h, w)
    if mode == "reflect":
        r = k // 2
        x = F.pad(x, (r, r, r, r), mode="reflect" if r < min(h, w) else "replicate")
    weight = kernel.flip(0, 1).to(x.dtype)[None, None]  # conv2d correlates: flip for convolution
    y = F.conv2d(x, weight)
    y = y.reshape(b, c, *y.shape[-2:])
    return y[0] if squeeze else y


# --------------------------------------------------------------------------- synthetic pairs
def correlated_noise(
    shape: tuple[int, ...], correlation: float, generator: torch.Generator
) -> torch.Tensor:
    """Unit-variance Gaussian noise of ``shape`` (last two dims spatial), low-pass filtered by a
    Gaussian of standard deviation ``correlation`` pixels and rescaled to unit variance per pixel
    (white for 0). Demosaicing and JPEG make real sRGB camera noise spatially correlated."""
    if correlation <= 0:
        return torch.randn(shape, generator=generator)
    r = max(1, math.ceil(3 * correlation))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g1 = torch.exp(-0.5 * (t / correlation) ** 2)
    g2 = g1[:, None] * g1[None, :]
    g2 = (g2 / g2.square().sum().sqrt()).float()  # sum of squares 1: variance preserved
    *lead, h, w = shape
    white = torch.randn(math.prod(lead), 1, h + 2 * r, w + 2 * r, generator=generator)
    return F.conv2d(white, g2[None, None]).reshape(shape)


class _PhotoPairs(Dataset):
    """Square regions of clean photos (as :class:`~burstkpn.data.datasets.SyntheticBurstDataset`
    reads them), for the synthetic pair datasets below."""

    def __init__(
        self,
        source: str | list[str] | None,
        need: int,
        *,
        length: int,
        seed: int,
        channels: int | str | None,
        augment: bool,
    ) -> None:
        if length < 1:
            raise InputError(f"dataset length must be positive, got {length}")
        self.refs = list_images(source)
        self.images = [read_image(r) for r in self.refs]
        for ref, img in zip(self.refs, self.images, strict=True):
            if min(img.shape[:2]) < need:
                raise InputError(
                    f"{ref}: image of {img.shape[1]}x{img.shape[0]} px is smaller than the "
                    f"{need} px region a pair needs"
                )
        self.need = need
        self.length = length
        self.seed = seed
        self.channels = channels
        self.augment = augment
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of pairs for ``epoch`` (the same set whenever the epoch repeats)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def _region(self, index: int) -> tuple[torch.Tensor, torch.Generator]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, index))
        img = self.images[int(torch.randint(0, len(self.images), (1,), generator=g))]
        h, w = img.shape[:2]
        y = int(torch.randint(0, h - self.need + 1, (1,), generator=g))
        x = int(torch.randint(0, w - self.need + 1, (1,), generator=g))
        region = image_to_tensor(img[y : y + self.need, x : x + self.need])
        if self.augment:
            region = augment(region, g)
        return match_channels(srgb_to_linear(region), self.channels, g), g


class SyntheticNoisyPairs(_PhotoPairs):
    """Noisy / clean pairs from clean photos with the package's noise model
    (:mod:`burstkpn.data.noise`): ``x ~ N(y, sigma_r^2 + sigma_s y)`` in linear light, the
    parameters drawn per item from the training ranges (log-uniform by default), so after the
    sRGB encoding the noise is signal-dependent as a camera's. ``correlation`` ``(lo, hi)``
    draws a spatial correlation per item (:func:`correlated_noise`; ``(0, 0)``, the default, is
    white noise, the noise model as the papers state it; ``(0, 1)`` imitates demosaiced JPEGs
    such as PolyU's). Items add ``noise_map`` ``(C, P, P)`` (eq. 1) and ``sigma_r`` /
    ``sigma_s`` to ``noisy`` / ``clean``."""

    def __init__(
        self,
        source: str | list[str] | None = None,
        *,
        patch_size: int = 64,
        length: int = 1000,
        seed: int = 0,
        channels: int | str | None = 3,
        augment: bool = True,
        sigma_r_range: tuple[float, float] = TRAIN_SIGMA_R,
        sigma_s_range: tuple[float, float] = TRAIN_SIGMA_S,
        log_uniform: bool = True,
        correlation: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        super().__init__(
            source, patch_size, length=length, seed=seed, channels=channels, augment=augment
        )
        if min(correlation) < 0 or correlation[0] > correlation[1]:
            raise InputError(
                f"correlation must be a range (lo, hi) with 0 <= lo <= hi, got {correlation}"
            )
        self.sigma_r_range = sigma_r_range
        self.sigma_s_range = sigma_s_range
        self.log_uniform = log_uniform
        self.correlation = tuple(float(c) for c in correlation)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clean, g = self._region(index)
        sigma_r, sigma_s = sample_noise_params(
            1, g, self.sigma_r_range, self.sigma_s_range, self.log_uniform
        )
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
    :func:`motion_blur_kernel` of size ``K = kernel_size`` and only the valid ``P x P`` part is
    kept, so no border is invented; the sharp target is the same ``P x P`` window. With
    ``noise=True`` the blurry image also gets the package's noise (parameters drawn from
    ``sigma_r_range`` / ``sigma_s_range``, log-uniform). Items add ``kernel`` ``(K, K)``."""

    def __init__(
        self,
        source: str | list[str] | None = None,
        *,
        patch_size: int = 64,
        length: int = 1000,
        seed: int = 0,
        channels: int | str | None = 3,
        augment: bool = True,
        kernel_size: int = 15,
        extent: tuple[float, float] | None = None,
        noise: bool = False,
        sigma_r_range: tuple[float, float] = (1e-3, 1e-2),
        sigma_s_range: tuple[float, float] = (1e-4, 1e-3),
    ) -> None:
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise InputError(f"blur kernel size must be odd and positive, got {kernel_size}")
        super().__init__(
            source,
            patch_size + kernel_size - 1,
            length=length,
            seed=seed,
            channels=channels,
            augment=augment,
        )
        self.patch_size = patch_size
        self.kernel_size = kernel_size
        self.extent = extent
        self.noise = noise
        self.sigma_r_range = sigma_r_range
        self.sigma_s_range = sigma_s_range

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        region, g = self._region(index)
        kernel = motion_blur_kernel(self.kernel_size, g, extent=self.extent)
        blurry = blur_image(region, kernel, mode="valid")
        r = self.kernel_size // 2
        p = self.patch_size
        sharp = region[:, r : r + p, r : r + p].contiguous()
        if self.noise:
            sigma_r, sigma_s = sample_noise_params(1, g, self.sigma_r_range, self.sigma_s_range)
            eps = torch.randn(blurry.shape, generator=g)
            blurry = blurry + eps * noise_variance(blurry, sigma_r[0], sigma_s[0]).sqrt()
        return {"noisy": blurry[None], "clean": sharp, "kernel": kernel}
