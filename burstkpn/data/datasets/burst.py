"""Synthetic training bursts from clean photos ([AME-KPN] section 3.1):
:class:`SyntheticBurstDataset`, with independent per-value noise or the noise of a developed
camera pipeline."""

from __future__ import annotations

import math
from typing import Any

import torch

from burstkpn.data.datasets.base import (
    SyntheticDataset,
    draw_index,
    noisy_item,
    random_region,
    read_photos,
)
from burstkpn.data.degrade.camera import (
    JPEG_QUALITY,
    RAW_NOISE_SCALE,
    CameraParams,
    camera_noisy_linear,
    fit_noise_line,
    sample_camera_params,
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
from burstkpn.data.io.images import srgb_to_linear
from burstkpn.data.sampling import log_uniform, luma, match_channels, random_plane, recolor
from burstkpn.errors import InputError


class SyntheticBurstDataset(SyntheticDataset):
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

    ``color_gains`` ``(lo, hi)`` and ``channel_shuffle`` (RGB bursts only, off by default):
    recolour every clean burst before its noise (:func:`~burstkpn.data.sampling.recolor`: R, G
    and B permuted, each scaled by a gain drawn log-uniformly), from a third generator seeded
    with ``derive_seed(seed, epoch, index, 2)``, so that a model seeing the three planes at once
    cannot learn the colours of the training photos as a prior.

    The remaining keywords, ``patch_size`` to ``log_uniform``, are the crop, channel and
    noise-range options of :class:`~burstkpn.data.datasets.base.SyntheticDataset`.
    """

    def __init__(
        self,
        source: str | list[str] | None = None,
        *,
        num_frames: int = 8,
        mode: str = "auto",
        motion: MotionConfig = DEFAULT_MOTION,
        exposure_range: tuple[float, float] | None = None,
        camera_fraction: float = 0.0,
        camera_jpeg: tuple[int, int] | None = JPEG_QUALITY,
        camera_noise_scale: float = RAW_NOISE_SCALE,
        prefilter: float = 0.0,
        color_gains: tuple[float, float] | None = None,
        channel_shuffle: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if (color_gains is not None or channel_shuffle) and self.channels != 3:
            raise InputError("color_gains and channel_shuffle need RGB bursts (channels 3)")
        if not (prefilter >= 0.0 and math.isfinite(prefilter)):
            raise InputError(f"prefilter must be a sigma >= 0 in px, got {prefilter}")
        if not 0.0 <= camera_fraction <= 1.0:
            raise InputError(f"camera_fraction must be in [0, 1], got {camera_fraction}")
        if camera_jpeg is not None and not 1 <= camera_jpeg[0] <= camera_jpeg[1] <= 100:
            raise InputError(
                f"camera_jpeg must be qualities [lo, hi] in [1, 100], got {camera_jpeg}"
            )
        self.refs, self.images = read_photos(source)
        self.modes = []
        for ref, img in zip(self.refs, self.images, strict=True):
            try:
                self.modes.append(
                    resolve_mode(img.shape[0], img.shape[1], self.patch_size, mode, motion)
                )
            except InputError as exc:
                raise InputError(f"{ref}: {exc}") from None
        self.num_frames = num_frames
        self.motion = motion
        self.exposure_range = exposure_range
        self.camera_fraction = float(camera_fraction)
        self.camera_jpeg = None if camera_jpeg is None else tuple(int(q) for q in camera_jpeg)
        self.camera_noise_scale = float(camera_noise_scale)
        self.prefilter = float(prefilter)
        self.color_gains = None if color_gains is None else tuple(float(v) for v in color_gains)
        self.channel_shuffle = bool(channel_shuffle)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        g = self.generator(index)
        camera = self._draw_camera(index)
        k = draw_index(len(self.images), g)
        mode = self.modes[k]
        # cut a square region just large enough for the burst, augment it, then synthesise
        need = required_size(mode, self.patch_size, self.motion)
        region = random_region(self.images[k], need, g, self.augment)
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
        if self.color_gains is not None or self.channel_shuffle:
            # new colours for every burst, from a stream of its own (the other draws stay
            # those of the same item without it)
            clean_burst = recolor(
                clean_burst, self.generator(index, 2), self.color_gains, self.channel_shuffle
            )
        sigma_r, sigma_s = self.draw_noise(g)
        if self.exposure_range is not None:
            # darker scenes than the photos show: scale the clean linear burst by a factor
            # drawn log-uniformly (drawn last before the noise, so that geometry and noise
            # parameters are those of the unscaled burst)
            u = float(torch.rand((), generator=g))
            clean_burst = clean_burst * log_uniform(*self.exposure_range, u)
        if camera is not None:
            item = self._camera_item(clean_burst, sigma_r, sigma_s, *camera, plane, gray)
            return {**item, "offsets": geometry.offsets}
        return {**noisy_item(clean_burst, sigma_r, sigma_s, g), "offsets": geometry.offsets}

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
