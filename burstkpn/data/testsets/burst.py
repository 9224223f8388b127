"""The fixed benchmark test set: seeded synthetic bursts written to disk with a manifest.

Layout of a test-set folder::

    manifest.json            generation parameters and one entry per burst (with sha256)
    bursts/<image>_<level>.npz

Each ``.npz`` (a plain zip of ``.npy`` arrays, read with ``numpy.load(allow_pickle=False)``)
holds ``noisy_u16`` ``(N, C, H, W)`` uint16, ``clean`` ``(C, H, W)`` float32 (linear light),
``offsets`` ``(N, 2)`` int64 (full-resolution pixels, see :mod:`burstkpn.data.degrade.synth`),
``sigma_r`` and ``sigma_s``. Noisy values are stored as the 16-bit codes of
:mod:`burstkpn.data.testsets.manifest` (covering [-1, 3] in steps of 6.1e-5; values beyond
counted in the manifest as ``clipped``).

``pipeline="camera"`` makes the noise of developed camera frames instead
(:mod:`burstkpn.data.degrade.camera`): each image gets a camera (colour matrix, white balance,
sharpening, JPEG quality) drawn from the set's seed and the image name, shared by its noise
levels; each level's shot and read noise, scaled by ``RAW_NOISE_SCALE`` (1/3: development
amplifies it about 3x, so "gain2" is developed to about the noise of an independent Gain 2
burst), is added on the camera's raw mosaic and the frames are developed to 8-bit (JPEG) sRGB.
``noisy`` then holds the developed frames in linear light, and ``sigma_r`` / ``sigma_s`` the
noise line fitted to the random part of the reference's error (against the reference developed
without noise; :func:`~burstkpn.data.degrade.camera.fit_noise_line`, pooled over channels), so the
noise maps the reader makes are the oracle ones; the manifest entry keeps the raw noise, the
fitted line per channel and the camera. Manifests record ``pipeline`` in their generator block
(older ones, without it, are ``"independent"``).

Reproducibility: every burst has its own generators, seeded from the set's seed and the image
name (geometry: crop position and offsets, shared by all noise levels so that the Gain 1-4
columns compare the same scenes) and from the level name (noise). Files are written with fixed
zip timestamps, so the same inputs, seed and torch version give byte-identical files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from burstkpn.data.degrade.camera import (
    RAW_NOISE_SCALE,
    CameraParams,
    camera_noisy_linear,
    fit_noise_line,
    sample_camera_params,
)
from burstkpn.data.degrade.noise import NoiseLevel, add_noise, parse_noise
from burstkpn.data.degrade.synth import MotionConfig, crop_burst, sample_geometry
from burstkpn.data.io.images import list_images, load_linear
from burstkpn.data.sampling import match_channels
from burstkpn.data.testsets.manifest import (
    ManifestTestSet,
    ManifestWriter,
    TestSample,
    level_records,
    sample_npz,
)
from burstkpn.errors import InputError

FORMAT = "burstkpn-testset"
DEFAULT_LEVELS = ("gain1", "gain2", "gain3", "gain4")
PIPELINES = ("independent", "camera")


def burst_npz(
    noisy: torch.Tensor, clean: torch.Tensor, offsets: torch.Tensor, level: NoiseLevel
) -> tuple[bytes, int]:
    """The ``.npz`` bytes of one burst (``noisy`` ``(N, C, H, W)``, ``clean`` ``(C, H, W)``)
    and the number of noisy values clipped by the 16-bit encoding."""
    offsets = offsets.numpy().astype(np.int64)
    return sample_npz(noisy, clean, level.sigma_r, level.sigma_s, offsets=offsets)


# --------------------------------------------------------------------------- writing
CAMERA_KEY = 1  # third key of an image's camera seed (level keys are crc32 values of names)


def _camera_burst(
    clean_burst: torch.Tensor,
    level: NoiseLevel,
    generator: torch.Generator,
    camera: CameraParams,
) -> tuple[torch.Tensor, NoiseLevel, dict]:
    """Noisy linear burst through the camera pipeline, the fitted pooled noise line as the
    level to store, and the manifest fields of the camera burst. A grayscale burst (kept with
    ``channels=None``) is developed as a neutral colour scene and reduced to its luma."""
    gray = clean_burst.shape[-3] == 1
    rgb = clean_burst.expand(-1, 3, -1, -1) if gray else clean_burst
    raw_r, raw_s = level.sigma_r * RAW_NOISE_SCALE, level.sigma_s * RAW_NOISE_SCALE**2
    noisy = camera_noisy_linear(rgb, raw_r, raw_s, generator, camera)
    # the random part of the error: against the reference developed without noise (what the
    # burst estimator measures and a burst can average away; not JPEG's loss of clean detail)
    base = camera_noisy_linear(rgb[:1], 0.0, 0.0, generator, camera)
    if gray:
        noisy = torch.stack([match_channels(frame, 1) for frame in noisy])
        base = torch.stack([match_channels(frame, 1) for frame in base])
    fit = fit_noise_line(base, noisy[:1])
    stored = NoiseLevel(level.name, fit.sigma_r, fit.sigma_s, "fit_noise_line")
    extra = {
        "raw_sigma_r": raw_r,
        "raw_sigma_s": raw_s,
        "noise_line": {"a": fit.a.tolist(), "b": fit.b.tolist()},
        "camera": camera.to_dict(),
    }
    return noisy, stored, extra


def make_testset(
    source: str | Sequence[str] | None,
    out_dir: str | os.PathLike,
    *,
    levels: Sequence[str | NoiseLevel] = DEFAULT_LEVELS,
    num_frames: int = 8,
    patch_size: int = 128,
    seed: int = 0,
    mode: str = "auto",
    channels: int | None = 3,
    force: bool = False,
    progress: bool = True,
    pipeline: str = "independent",
) -> dict:
    """Write a benchmark test set (see the module docstring) and return its manifest."""
    if pipeline not in PIPELINES:
        raise InputError(f"unknown pipeline '{pipeline}' (use one of {', '.join(PIPELINES)})")
    if num_frames < 1:  # 1: a single-image test set ([DeformKernels] Table 2)
        raise InputError(f"a test burst needs at least 1 frame, got {num_frames}")
    noise_levels = [parse_noise(lv) for lv in levels]
    if not noise_levels:
        raise InputError("no noise levels given")
    refs = list_images(source)
    writer = ManifestWriter(out_dir, seed=seed, force=force)
    motion = MotionConfig()
    for ref in tqdm(refs, desc="make-testset", unit="image", disable=not progress):
        name = writer.name(ref)
        image = match_channels(load_linear(ref), channels)
        try:
            g = writer.generator(name)
            geometry = sample_geometry(
                image.shape[-2],
                image.shape[-1],
                g,
                num_frames=num_frames,
                patch_size=patch_size,
                mode=mode,
                motion=motion,
            )
        except InputError as exc:
            raise InputError(f"{ref}: {exc}") from None
        clean_burst = crop_burst(image, geometry)
        camera = None
        if pipeline == "camera":
            gc = writer.generator(name, CAMERA_KEY)
            camera = sample_camera_params(gc)
        for level in noise_levels:
            gl = writer.generator(name, level.name)
            extra: dict = {}
            if camera is None:
                noisy = add_noise(clean_burst, level.sigma_r, level.sigma_s, gl)
                stored = level
            else:
                noisy, stored, extra = _camera_burst(clean_burst, level, gl, camera)
            data, clipped = burst_npz(noisy, clean_burst[0], geometry.offsets, stored)
            writer.write(
                f"bursts/{name}_{level.name}.npz",
                data,
                image=name,
                source=str(ref),
                level=level.name,
                sigma_r=stored.sigma_r,
                sigma_s=stored.sigma_s,
                clipped=clipped,
                **geometry.to_dict(),
                **extra,
            )
    generator = {
        "seed": seed,
        "num_frames": num_frames,
        "patch_size": patch_size,
        "mode": mode,
        "channels": channels,
        "pipeline": pipeline,
        "levels": level_records(noise_levels),
        "motion": {
            "max_small": motion.max_small,
            "max_large": motion.max_large,
            "poisson_lambda": motion.poisson_lambda,
            "downsample": motion.downsample,
        },
    }
    return writer.finish(FORMAT, "bursts", generator)


# --------------------------------------------------------------------------- reading
@dataclass
class TestBurst(TestSample):
    """One benchmark burst (:class:`~burstkpn.data.testsets.manifest.TestSample`: ``noisy``
    ``(1, N, C, H, W)``, ``noise_map`` / ``clean`` ``(1, C, H, W)``, linear light) and its
    ``offsets`` ``(N, 2)``."""

    __test__ = False  # not a pytest class

    offsets: torch.Tensor


class TestSet(ManifestTestSet):
    """A test set written by :func:`make_testset`; iterate for :class:`TestBurst` items."""

    __test__ = False

    FORMAT = FORMAT
    ENTRIES = "bursts"

    @property
    def pipeline(self) -> str:
        """How the noise was made (``"independent"`` for manifests older than the field)."""
        return self.manifest["generator"].get("pipeline", "independent")

    def load(self, entry: dict) -> TestBurst:
        z = self.read(entry)
        return TestBurst.from_npz(entry, z, offsets=torch.from_numpy(z["offsets"]))
