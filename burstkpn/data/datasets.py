"""Training datasets: random items made on the fly from clean photos, clips or dataset folders.

Seeding: item ``i`` of epoch ``e`` is generated from its own ``torch.Generator`` seeded with
``derive_seed(seed, e, i)`` (:class:`SeededEpochDataset`, the base of every dataset here). An
item therefore does not depend on which DataLoader worker makes it, on the number of workers,
or on what was drawn before it, so runs are reproducible with any ``num_workers`` and a resumed
run sees exactly the items an uninterrupted one would.

- :class:`SyntheticBurstDataset`: synthetic bursts from photos ([AME-KPN] section 3.1);
- :class:`SyntheticClipDataset`: noisy clips of ``2 tau + 1`` frames for ``deform3d``, from
  photos with synthetic motion and / or clean clips on disk;
- :class:`PairedImageDataset`: degraded / clean pairs from a dataset folder (SIDD, GoPro,
  PolyU; :mod:`burstkpn.data.io.pairs`);
- :class:`SyntheticNoisyPairs`, :class:`SyntheticBlurPairs`: single-image pairs made from
  photos ([DCN-LKA]): real-noise-like pairs from our noise model, blurry / sharp pairs from
  random motion-blur kernels.

Pair items are dicts with ``noisy`` ``(1, C, P, P)`` (the degraded input, a burst of one
frame, whatever the degradation) and ``clean`` ``(C, P, P)``, in linear light, so a DataLoader
stacks them into the package's ``(B, 1, C, H, W)`` convention.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from burstkpn.data.degrade.blur import blur_image, motion_blur_kernel
from burstkpn.data.degrade.camera import (
    JPEG_QUALITY,
    RAW_NOISE_SCALE,
    CameraParams,
    camera_noisy_linear,
    fit_noise_line,
    sample_camera_params,
)
from burstkpn.data.degrade.noise import (
    TRAIN_SIGMA_R,
    TRAIN_SIGMA_S,
    add_noise,
    correlated_noise,
    estimate_noise_map,
    noise_variance,
    sample_noise_params,
)
from burstkpn.data.degrade.synth import (
    DEFAULT_MOTION,
    MotionConfig,
    band_limit,
    crop_burst,
    required_size,
    resolve_mode,
    sample_geometry,
)
from burstkpn.data.degrade.video import (
    DEFAULT_CLIP_MOTION,
    ClipMotion,
    burst_order,
    crop_clip,
    motion_margin,
    sample_trajectory,
)
from burstkpn.data.io.clips import VideoClip, find_clips
from burstkpn.data.io.images import image_to_tensor, list_images, read_image, srgb_to_linear
from burstkpn.data.io.pairs import find_pairs, image_size
from burstkpn.data.sampling import augment, derive_seed, luma, match_channels, random_plane
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


# --------------------------------------------------------------------------- bursts
class SyntheticBurstDataset(SeededEpochDataset):
    """Random synthetic bursts from clean photos ([AME-KPN] section 3.1).

    Each item is a dict with ``noisy`` ``(N, C, P, P)``, ``noise_map`` and ``clean``
    ``(C, P, P)``, ``sigma_r`` / ``sigma_s`` (scalars) and ``offsets`` ``(N, 2)``; a DataLoader
    stacks them into the package's ``(B, N, C, H, W)`` convention.

    Images are read once and kept in their stored dtype (uint8 / uint16), so memory is about
    the size of the files decoded; only the region a burst needs is converted to linear light.

    ``camera_fraction``: the share of items whose noise goes through the camera pipeline of
    :mod:`burstkpn.data.degrade.camera` (mosaic, demosaicking, colour correction, tone curve,
    sharpening, 8 bits, JPEG with a quality drawn from ``camera_jpeg``; ``None``: no JPEG)
    instead of being added independently per pixel. Such an item's ``noisy`` is the developed
    frames in linear light, its ``clean`` the same clean reference, and its ``noise_map``,
    ``sigma_r`` and ``sigma_s`` come from the noise line fitted to the burst
    (:func:`~burstkpn.data.degrade.camera.fit_noise_line`; per channel for the map, pooled for the
    scalars), fitted to the random part of the reference's error (against its noise-free
    development). ``camera_noise_scale`` scales the drawn raw noise (standard deviations;
    default 1/3): white balance, colour correction and the tone curve amplify raw noise about
    3x, so without it camera items would be three times noisier than the independent ones
    drawn from the same ranges. The camera decision, parameters and noise are drawn from a
    second generator seeded with ``derive_seed(seed, epoch, index, 1)``, and only when
    ``camera_fraction > 0``: everything else an item draws, and every item of
    ``camera_fraction = 0``, is unchanged.

    ``prefilter``: in full mode, blur the linear region by a Gaussian of this sigma (px of the
    photo) before the box downsampling (:func:`~burstkpn.data.degrade.synth.band_limit`), so
    that sub-pixel neighbours are translates of the reference as a camera's optics make them;
    0 (the default) is the paper's plain box. It draws nothing from the generator.
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
        prefilter: float = 0.0,
    ) -> None:
        super().__init__(length=length, seed=seed)
        if not (prefilter >= 0.0 and math.isfinite(prefilter)):
            raise InputError(f"prefilter must be a sigma >= 0 in px, got {prefilter}")
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
        self.prefilter = float(prefilter)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        g = self.generator(index)
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
        if self.prefilter > 0 and mode == "full":
            region = band_limit(region, self.prefilter)
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
        gc = self.generator(index, 1)
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
            clean_burst = clean_burst[:, :1] if gray else luma(clean_burst)
            noisy, base = luma(noisy), luma(base)
        fit = fit_noise_line(base, noisy[:1], bins=32)
        return {
            "noisy": noisy,
            "noise_map": fit.noise_map(noisy[0]),
            "clean": clean_burst[0],
            "sigma_r": torch.tensor(fit.sigma_r, dtype=torch.float32),
            "sigma_s": torch.tensor(fit.sigma_s, dtype=torch.float32),
        }


# --------------------------------------------------------------------------- clips
def _noisy_item(clip: torch.Tensor, g: torch.Generator, sr_range, ss_range, log_uniform) -> dict:
    """Noise on a temporal clip ``(F, C, P, P)``; the item in burst order."""
    burst = clip[burst_order(clip.shape[0])]
    sigma_r, sigma_s = sample_noise_params(1, g, sr_range, ss_range, log_uniform)
    noisy = add_noise(burst[None], sigma_r, sigma_s, g)[0]
    return {
        "noisy": noisy,
        "noise_map": estimate_noise_map(noisy[:1], sigma_r, sigma_s)[0],
        "clean": burst[0],
        "sigma_r": sigma_r[0],
        "sigma_s": sigma_s[0],
    }


class SyntheticClipDataset(SeededEpochDataset):
    """Random noisy clips of ``2 tau + 1`` frames, from photos with synthetic motion and / or
    from clean clips on disk.

    Photos: a clean clip with a random motion trajectory
    (:func:`~burstkpn.data.degrade.video.sample_trajectory`, cubic B-spline crops). Clips on
    disk (:func:`~burstkpn.data.io.clips.find_clips`): a random window of ``2 tau + 1``
    consecutive frames (every window of every clip equally likely), cropped at one random place
    in all frames, with the same random rotation / flip for all frames and a random temporal
    reversal. Both get the noise model of :mod:`burstkpn.data.degrade.noise` with parameters
    drawn from the training ranges, independently per frame, and the noise map of the noisy
    reference (eq. 1 of [AME-KPN]; the paper's ``sqrt(sigma_r^2 + sigma_s q_ref)``).

    Each item: ``noisy`` ``(F, C, P, P)`` in burst order (reference first), ``noise_map`` and
    ``clean`` ``(C, P, P)`` (the clean reference), ``sigma_r`` / ``sigma_s``, ``motion``
    ``(F, 2)`` (the synthetic displacements in burst order; NaN for clips from disk) and
    ``from_clip`` (0 / 1). Item ``i`` of epoch ``e`` comes from its own generator seeded with
    ``derive_seed(seed, e, i)``, which first decides the source: a clip with probability
    ``clip_fraction`` (when ``clips`` is given), else a photo. Photos and clip frames are
    decoded once and kept in their stored dtype.
    """

    def __init__(
        self,
        photos: str | list[str] | None = None,
        clips: str | os.PathLike | None = None,
        *,
        clip_fraction: float = 0.5,
        patch_size: int = 64,
        tau: int = 2,
        length: int = 1000,
        seed: int = 0,
        channels: int | str | None = 3,
        sigma_r_range: tuple[float, float] = TRAIN_SIGMA_R,
        sigma_s_range: tuple[float, float] = TRAIN_SIGMA_S,
        log_uniform: bool = True,
        augment: bool = True,
        motion: ClipMotion = DEFAULT_CLIP_MOTION,
    ) -> None:
        super().__init__(length=length, seed=seed)
        if not 0.0 <= clip_fraction <= 1.0:
            raise InputError(f"clip_fraction must be in [0, 1], got {clip_fraction}")
        if tau < 1:
            raise InputError(f"a clip needs tau >= 1, got {tau}")
        self.num_frames = 2 * tau + 1
        self.clip_fraction = clip_fraction if clips is not None else 0.0
        self.photo_need = patch_size + 2 * motion_margin(motion.reach(tau))
        self.refs: list[str] = []
        self.images = []
        if self.clip_fraction < 1.0:
            self.refs = list_images(photos)
            self.images = [read_image(r) for r in self.refs]
            for ref, img in zip(self.refs, self.images, strict=True):
                if min(img.shape[:2]) < self.photo_need:
                    raise InputError(
                        f"{ref}: image of {img.shape[1]}x{img.shape[0]} px is too small for "
                        f"clips of {patch_size} px with {motion.reach(tau):.1f} px of motion "
                        f"(needs {self.photo_need} px per side)"
                    )
        self.clips: list[VideoClip] = []
        self.clip_frames: list[list] = []
        self.windows: list[tuple[int, int]] = []  # (clip, first frame)
        if self.clip_fraction > 0.0:
            self.clips = find_clips(clips, self.num_frames)
            for c, clip in enumerate(self.clips):
                frames = [read_image(f) for f in clip.frames]
                shape = frames[0].shape
                if any(f.shape != shape for f in frames):
                    raise InputError(f"clip '{clip.name}': frames differ in size")
                if min(shape[:2]) < patch_size:
                    raise InputError(
                        f"clip '{clip.name}': frames of {shape[1]}x{shape[0]} px are smaller "
                        f"than the patch ({patch_size} px)"
                    )
                self.clip_frames.append(frames)
                self.windows += [(c, s) for s in range(len(frames) - self.num_frames + 1)]
        self.tau = tau
        self.patch_size = patch_size
        self.channels = channels
        self.sigma_r_range = sigma_r_range
        self.sigma_s_range = sigma_s_range
        self.log_uniform = log_uniform
        self.augment = augment
        self.motion = motion

    def _photo_clip(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        k = int(torch.randint(0, len(self.images), (1,), generator=g))
        img, need = self.images[k], self.photo_need
        h, w = img.shape[:2]
        y = int(torch.randint(0, h - need + 1, (1,), generator=g))
        x = int(torch.randint(0, w - need + 1, (1,), generator=g))
        region = image_to_tensor(img[y : y + need, x : x + need])
        if self.augment:
            region = augment(region, g)
        region = match_channels(srgb_to_linear(region), self.channels, g)
        trajectory = sample_trajectory(self.tau, g, self.motion)
        margin = (need - self.patch_size) // 2
        return crop_clip(region, trajectory, margin, margin, self.patch_size), trajectory

    def _disk_clip(self, g: torch.Generator) -> torch.Tensor:
        c, start = self.windows[int(torch.randint(0, len(self.windows), (1,), generator=g))]
        frames = self.clip_frames[c][start : start + self.num_frames]
        h, w = frames[0].shape[:2]
        p = self.patch_size
        y = int(torch.randint(0, h - p + 1, (1,), generator=g))
        x = int(torch.randint(0, w - p + 1, (1,), generator=g))
        clip = torch.stack([image_to_tensor(f[y : y + p, x : x + p]) for f in frames])
        reverse = bool(torch.randint(0, 2, (1,), generator=g))
        if self.augment:
            clip = augment(clip, g)  # one rotation / flip for every frame
            if reverse:
                clip = clip.flip(0)
        clip = srgb_to_linear(clip)
        if self.channels == "random" and clip.shape[1] > 1:  # one plane for all frames
            k = int(torch.randint(0, clip.shape[1], (1,), generator=g))
            return clip[:, k : k + 1].contiguous()
        return torch.stack([match_channels(f, self.channels) for f in clip])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        g = self.generator(index)
        from_clip = float(torch.rand(1, generator=g, dtype=torch.float64)) < self.clip_fraction
        if from_clip:
            clip = self._disk_clip(g)
            motion = torch.full((self.num_frames, 2), math.nan)
        else:
            clip, trajectory = self._photo_clip(g)
            motion = trajectory[burst_order(self.num_frames)].float()
        item = _noisy_item(clip, g, self.sigma_r_range, self.sigma_s_range, self.log_uniform)
        return {**item, "motion": motion, "from_clip": torch.tensor(int(from_clip))}


# --------------------------------------------------------------------------- pairs
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


class _PhotoPairs(SeededEpochDataset):
    """Square regions of clean photos (as :class:`SyntheticBurstDataset` reads them), for the
    synthetic pair datasets below."""

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
        super().__init__(length=length, seed=seed)
        self.refs = list_images(source)
        self.images = [read_image(r) for r in self.refs]
        for ref, img in zip(self.refs, self.images, strict=True):
            if min(img.shape[:2]) < need:
                raise InputError(
                    f"{ref}: image of {img.shape[1]}x{img.shape[0]} px is smaller than the "
                    f"{need} px region a pair needs"
                )
        self.need = need
        self.channels = channels
        self.augment = augment

    def _region(self, index: int) -> tuple[torch.Tensor, torch.Generator]:
        g = self.generator(index)
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
    (:mod:`burstkpn.data.degrade.noise`): ``x ~ N(y, sigma_r^2 + sigma_s y)`` in linear light,
    the parameters drawn per item from the training ranges (log-uniform by default), so after
    the sRGB encoding the noise is signal-dependent as a camera's. ``correlation`` ``(lo, hi)``
    draws a spatial correlation per item
    (:func:`~burstkpn.data.degrade.noise.correlated_noise`; ``(0, 0)``, the default, is white
    noise, the noise model as the papers state it; ``(0, 1)`` imitates demosaiced JPEGs such as
    PolyU's). Items add ``noise_map`` ``(C, P, P)`` (eq. 1) and ``sigma_r`` / ``sigma_s`` to
    ``noisy`` / ``clean``."""

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
    :func:`~burstkpn.data.degrade.blur.motion_blur_kernel` of size ``K = kernel_size`` and only
    the valid ``P x P`` part is kept, so no border is invented; the sharp target is the same
    ``P x P`` window. With ``noise=True`` the blurry image also gets the package's noise
    (parameters drawn from ``sigma_r_range`` / ``sigma_s_range``, log-uniform). Items add
    ``kernel`` ``(K, K)``."""

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
