"""``burstkpn demo`` and ``burstkpn synth``: synthetic bursts of a photo, denoised side by
side with the clean image (:func:`demo`) or written out with their noise map and metadata
(:func:`synth_burst`).

The noise is the shot + read noise of [AME-KPN] section 3.1 (``x ~ N(y, sigma_r^2 +
sigma_s * y)``, :mod:`burstkpn.data.degrade.noise`), the frames those of
:func:`burstkpn.data.degrade.synth.synthesize_burst`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from burstkpn import denoising
from burstkpn.data.degrade.noise import NoiseLevel, parse_noise
from burstkpn.data.degrade.synth import synthesize_burst
from burstkpn.data.io.files import atomic_write_bytes, prepare_output_dir
from burstkpn.data.io.images import list_images, load_linear, to_display, write_image
from burstkpn.data.sampling import match_channels
from burstkpn.data.testsets.burst import burst_npz
from burstkpn.errors import InputError
from burstkpn.inference import resolve
from burstkpn.jobs.outputs import check_output, refuse_overwriting_input, write_json, write_new
from burstkpn.metrics import psnr
from burstkpn.viz import burst_sheet, contact_sheet, label_tile

DEMO_NAME = "burstkpn_demo.png"  # demo's default output: burstkpn_demo_2.png, ... when taken


@dataclass
class DemoResult:
    """What :func:`demo` did: the photo, the noise level, the PSNR (dB) of the noisy reference
    frame and of the denoised image, the noise the model's denoising measured and the sheet
    written."""

    source: str
    level: NoiseLevel
    before: float
    after: float
    sigma_r: float
    sigma_s: float
    output: Path


def demo(
    image: str = "astronaut",
    *,
    noise: str = "gain2",
    model: str = "ame_kpn",
    patch: int = 256,
    seed: int = 0,
    out: str | Path | None = None,
    force: bool = False,
) -> DemoResult:
    """``burstkpn demo``: an 8-frame synthetic burst of ``image`` at ``noise`` denoised by
    ``model`` (noise estimated, aligned); writes clean / noisy reference / denoised side by
    side, with their PSNR, to ``out`` or (default) :data:`DEMO_NAME`, or the first free
    ``burstkpn_demo_K.png`` when taken."""
    if out is not None:
        check_output(Path(out), [], force)
    else:
        check_output(Path(DEMO_NAME), [], True)  # a free name is found when writing
    level = parse_noise(noise)
    ref = list_images(image)[0]
    clean = match_channels(load_linear(ref), 3)
    burst = synthesize_burst(
        clean, torch.Generator().manual_seed(seed), patch_size=patch, noise=level
    )
    net = resolve.resolve_model(model)
    result = denoising.denoise_burst(burst.noisy[0], net, noise="auto", linear=True, align="auto")
    before = float(psnr(burst.noisy[:, 0], burst.clean)[0])
    after = float(psnr(result.image[None], burst.clean)[0])
    tiles = [
        label_tile(to_display(burst.clean[0]), "clean"),
        label_tile(to_display(burst.noisy[0, 0]), f"noisy reference {before:.2f} dB"),
        label_tile(to_display(result.image), f"{model} {after:.2f} dB"),
    ]
    sheet = contact_sheet(tiles, columns=3).astype(np.float64) / 255
    if out is not None:
        written = write_image(out, sheet, overwrite=force)
    else:
        written = write_new(DEMO_NAME, sheet)
    return DemoResult(ref, level, before, after, result.sigma_r, result.sigma_s, written)


def synth_burst(
    image: str,
    out: str | Path,
    *,
    noise: str = "gain3",
    frames: int = 8,
    patch: int = 256,
    seed: int = 0,
    mode: str = "auto",
    channels: int | None = 3,
    force: bool = False,
) -> tuple[Path, dict]:
    """``burstkpn synth``: one synthetic noisy burst of ``image`` written to the folder
    ``out``: ``clean.png``, ``noise_map.png``, ``frame_NN.png``, ``contact_sheet.png``,
    ``burst.npz`` and ``meta.json``. Returns the folder and the metadata written."""
    refs = list_images(image)
    if len(refs) != 1:
        raise InputError(f"synth takes one image, '{image}' names {len(refs)}")
    level = parse_noise(noise)
    if frames < 2:
        raise InputError(f"a burst needs at least 2 frames, got {frames}")
    clean = match_channels(load_linear(refs[0]), channels)
    folder = prepare_output_dir(out, force)
    refuse_overwriting_input(folder, refs)
    g = torch.Generator().manual_seed(seed)
    burst = synthesize_burst(clean, g, num_frames=frames, patch_size=patch, noise=level, mode=mode)
    geometry = burst.geometry[0]
    noisy = burst.noisy[0]

    clean_img = to_display(burst.clean[0])
    write_image(folder / "clean.png", clean_img)
    nmap = burst.noise_map[0]
    nmax = float(nmap.max())
    nmap_img = (nmap / nmax).mean(0, keepdim=True).permute(1, 2, 0).numpy()
    write_image(folder / "noise_map.png", nmap_img)
    shown = []
    for i, frame in enumerate(noisy):
        shown.append(to_display(frame))
        write_image(folder / f"frame_{i:02d}.png", shown[-1])
    sheet = burst_sheet(clean_img, nmap_img, nmax, shown, geometry.offsets_px, columns=5)
    write_image(folder / "contact_sheet.png", sheet.astype(np.float64) / 255)
    data, clipped = burst_npz(noisy, burst.clean[0], geometry.offsets, level)
    atomic_write_bytes(folder / "burst.npz", data)
    meta = {
        "source": refs[0],
        "seed": seed,
        "noise": {"name": level.name, "sigma_r": level.sigma_r, "sigma_s": level.sigma_s},
        "clipped": clipped,
        **geometry.to_dict(),
    }
    write_json(folder / "meta.json", meta)
    return folder, meta
