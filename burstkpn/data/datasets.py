"""Training dataset: synthetic bursts drawn on the fly from a folder of clean photos.

Seeding: item ``i`` of epoch ``e`` is generated from its own ``torch.Generator`` seeded with
``derive_seed(seed, e, i)``. An item therefore does not depend on which DataLoader worker makes
it, on the number of workers, or on what was drawn before it, so runs are reproducible with any
``num_workers`` and a resumed run sees exactly the bursts an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from burstkpn.data.camera import (
    JPEG_QUALITY,
    RAW_NOISE_SCALE,
    CameraParams,
    camera_noisy_linear,
    fit_noise_line,
    sample_camera_params,
)
from burstkpn.data.images import image_to_tensor, list_images, read_image, srgb_to_linear
from burstkpn.data.noise import (
    TRAIN_SIGMA_R,
    TRAIN_SIGMA_S,
    add_noise,
    estimate_noise_map,
    sample_noise_params,
)
from burstkpn.data.synth import (
    DEFAULT_MOTION,
    MotionConfig,
    crop_burst,
    required_size,
    resolve_mode,
    sample_geometry,
)
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


def _luma(x: torch.Tensor) -> torch.Tensor:
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
        return _luma(x)
    raise InputError(f"cannot convert a {c}-channel image to {channels} channels")


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 90-degree rotation and horizontal flip of a square ``(C, S, S)`` region (the 8
    symmetries of the square)."""
    k = int(torch.randint(0, 4, (1,), generator=generator))
    flip = bool(torch.randint(0, 2, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if flip else x


class SyntheticBurstDataset(Dataset):
    """Random synthetic bursts from clean photos (ame_kpn.md section 3.1).

    Each item is a dict with ``noisy`` ``(N, C, P, P)``, ``noise_map`` and ``clean``
    ``(C, P, P)``, ``sigma_r`` / ``sigma_s`` (scalars) and ``offsets`` ``(N, 2)``; a DataLoader
    stacks them into the package's ``(B, N, C, H, W)`` convention.

    Images are read once and kept in their stored dtype (uint8 / uint16), so memory is about
    the size of the files decoded; only the region a burst needs is converted to linear light.

    ``camera_fraction``: the share of items whose noise goes through the camera pipeline of
    :mod:`burstkpn.data.camera` (mosaic, demosaicking, colour correction, tone curve,
    sharpening, 8 bits, JPEG with a quality drawn from ``camera_jpeg``; ``None``: no JPEG)
    instead of being added independently per pixel. Such an item's ``noisy`` is the developed
    frames in linear light, its ``clean`` the same clean reference, and its ``noise_map``,
    ``sigma_r`` and ``sigma_s`` come from the noise line fitted to the burst
    (:func:`~burstkpn.data.camera.fit_noise_line`; per channel for the map, pooled for the
    scalars), fitted to the random part of the reference's error (against its noise-free
    development). ``camera_noise_scale`` scales the drawn raw noise (standard deviations;
    default 1/3): white balance, colour correction and the tone curve amplify raw noise about
    3x, so without it camera items would be three times noisier than the independent ones
    drawn from the same ranges. The camera decision, parameters and noise are drawn from a
    second generator seeded with ``derive_seed(seed, epoch, index, 1)``, and only when
    ``camera_fraction > 0``: everything else an item draws, and every item of
    ``camera_fraction = 0``, is unchanged.
    """

    def __init__(
        self,
        source: str | list[str] | None = None,
        *,
        patch_size: int = 64,
        num_frames: int = 8,
        length: int = 1000,
        seed: int = 0,
        mode: str = "auto",
        channels: int | str | None = 3,
        sigma_r_range: tuple[float, float] = TRAIN_SIGMA_R,
        sigma_s_range: tuple[float, float] = TRAIN_SIGMA_S,
        log_uniform: bool = True,
        augment: bool = True,
        motion: MotionConfig = DEFAULT_MOTION,
        exposure_range: tuple[float, float] | None = None,
        camera_fraction: float = 0.0,
        camera_jpeg: tuple[int, int] | None = JPEG_QUALITY,
        camera_noise_scale: float = RAW_NOISE_SCALE,
    ) -> None:
        if length < 1:
            raise InputError(f"dataset length must be positive, got {length}")
        if not 0.0 <= camera_fraction <= 1.0:
            raise InputError(f"camera_fraction must be in [0, 1], got {camera_fraction}")
        if camera_jpeg is not None and not 1 <= camera_jpeg[0] <= camera_jpeg[1] <= 100:
            raise InputError(
                f"camera_jpeg must be qualities [lo, hi] in [1, 100], got {camera_jpeg}"
            )
        self.refs = list_images(source)
        self.images = [read_image(r) for r in self.refs]
        self.modes = []
        for ref, img in zip(self.refs, self.images, strict=True):
            try:
                self.modes.append(
                    resolve_mode(img.shape[0], img.shape[1], patch_size, mode, motion)
                )
            except InputError as exc:
                raise InputError(f"{ref}: {exc}") from None
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.length = length
        self.seed = seed
        self.channels = channels
        self.sigma_r_range = sigma_r_range
        self.sigma_s_range = sigma_s_range
        self.log_uniform = log_uniform
        self.augment = augment
        self.motion = motion
        self.exposure_range = exposure_range
        self.camera_fraction = float(camera_fraction)
        self.camera_jpeg = None if camera_jpeg is None else tuple(int(q) for q in camera_jpeg)
        self.camera_noise_scale = float(camera_noise_scale)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of bursts for ``epoch`` (the same set whenever the epoch repeats)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, index))
        camera = self._draw_camera(index)
        k = int(torch.randint(0, len(self.images), (1,), generator=g))
        img, mode = self.images[k], self.modes[k]
        # cut a square region just large enough for the burst, augment it, then synthesise
        need = required_size(mode, self.patch_size, self.motion)
        h, w = img.shape[:2]
        y = int(torch.randint(0, h - need + 1, (1,), generator=g))
        x = int(torch.randint(0, w - need + 1, (1,), generator=g))
        region = image_to_tensor(img[y : y + need, x : x + need])
        if self.augment:
            region = augment(region, g)
        gray = region.shape[0] == 1
        plane = None
        if camera is not None:
            # the camera develops colour frames: the whole region in RGB, channels picked after
            # (the plane is drawn where match_channels would draw it)
            if self.channels == "random":
                plane = random_plane(region.shape[0], g)
            region = match_channels(srgb_to_linear(region), 3)
        elif self.channels == "random":  # one plane drawn, then linearised: a third of the work
            region = srgb_to_linear(match_channels(region, self.channels, g))
        else:
            region = match_channels(srgb_to_linear(region), self.channels, g)
        geometry = sample_geometry(
            need,
            need,
            g,
            num_frames=self.num_frames,
            patch_size=self.patch_size,
            mode=mode,
            motion=self.motion,
        )
        clean_burst = crop_burst(region, geometry)
        sigma_r, sigma_s = sample_noise_params(
            1, g, self.sigma_r_range, self.sigma_s_range, self.log_uniform
        )
        if self.exposure_range is not None:
            # darker scenes than the photos show: scale the clean linear burst by a factor
            # drawn log-uniformly (drawn last before the noise, so that geometry and noise
            # parameters are those of the unscaled burst)
            lo, hi = self.exposure_range
            u = float(torch.rand((), generator=g))
            clean_burst = clean_burst * (lo * (hi / lo) ** u)
        if camera is not None:
            item = self._camera_item(clean_burst, sigma_r, sigma_s, *camera, plane, gray)
            return {**item, "offsets": geometry.offsets}
        noisy = add_noise(clean_burst[None], sigma_r, sigma_s, g)[0]
        return {
            "noisy": noisy,
            "noise_map": estimate_noise_map(noisy[:1], sigma_r, sigma_s)[0],
            "clean": clean_burst[0],
            "sigma_r": sigma_r[0],
            "sigma_s": sigma_s[0],
            "offsets": geometry.offsets,
        }

    def _draw_camera(self, index: int) -> tuple[torch.Generator, CameraParams] | None:
        """The camera generator and parameters of item ``index``, or ``None`` for an item with
        independent noise. The parameters are drawn whatever the decision, so the noise that
        follows on the same generator does not depend on it."""
        if self.camera_fraction <= 0:
            return None
        gc = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, index, 1))
        use = float(torch.rand((), generator=gc, dtype=torch.float64)) < self.camera_fraction
        params = sample_camera_params(gc, jpeg=self.camera_jpeg)
        return (gc, params) if use else None

    def _camera_item(
        self,
        clean_burst: torch.Tensor,
        sigma_r: torch.Tensor,
        sigma_s: torch.Tensor,
        generator: torch.Generator,
        params: CameraParams,
        plane: int | None,
        gray: bool,
    ) -> dict[str, torch.Tensor]:
        """``noisy`` / ``noise_map`` / ``clean`` / ``sigma_r`` / ``sigma_s`` of a camera item
        from its clean RGB burst ``(N, 3, P, P)``, in the dataset's channels: a drawn plane
        (``"random"``), luma (1 channel, or a grayscale photo, developed as a neutral colour
        scene) or all three."""
        scale = self.camera_noise_scale
        sigma_r, sigma_s = sigma_r * scale, sigma_s * scale * scale
        noisy = camera_noisy_linear(clean_burst, sigma_r, sigma_s, generator, params)
        # the reference developed without noise: what the network's noise map describes is the
        # random part of the error (what a burst can average away and what the burst estimator
        # measures), not JPEG's deterministic loss of the clean detail
        base = camera_noisy_linear(clean_burst[:1], 0.0, 0.0, generator, params)
        if self.channels == "random" and plane is not None:
            pick = slice(plane, plane + 1)
            clean_burst, noisy = clean_burst[:, pick].contiguous(), noisy[:, pick].contiguous()
            base = base[:, pick].contiguous()
        elif self.channels == 1 or (gray and self.channels != 3):
            clean_burst = clean_burst[:, :1] if gray else _luma(clean_burst)
            noisy, base = _luma(noisy), _luma(base)
        fit = fit_noise_line(base, noisy[:1], bins=32)
        return {
            "noisy": noisy,
            "noise_map": fit.noise_map(noisy[0]),
            "clean": clean_burst[0],
            "sigma_r": torch.tensor(fit.sigma_r, dtype=torch.float32),
            "sigma_s": torch.tensor(fit.sigma_s, dtype=torch.float32),
        }
