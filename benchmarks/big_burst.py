"""A large synthetic colour burst for speed profiling (docs/speed/profile.md).

The embedded astronaut photo, mirrored into a ``width x height`` canvas, in linear light; frame
``i`` is the canvas moved by a whole-pixel global shift (up to 6 px, so ``--align auto``
aligns), with Gain-2 noise (sigma_r 0.02, sigma_s 0.0043), sRGB-encoded into 8-bit PNGs
``frame_0.png`` ... in ``OUT``. ``--crop WxH`` also writes a centred crop of each frame into
``OUT_WxH``.

    python benchmarks/big_burst.py /tmp/burst12mp --width 4000 --height 3000 --crop 2000x1500
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from burstkpn.data.degrade.noise import NOISE_LEVELS, add_noise
from burstkpn.data.io.images import linear_to_srgb, load_linear, write_image

SHIFTS = ((0, 0), (3, -4), (-5, 2), (1, 6), (-2, -3), (4, 1), (-6, -1), (2, -5))


def mirrored_canvas(image: torch.Tensor, height: int, width: int, margin: int) -> torch.Tensor:
    """``image`` ``(C, h, w)`` mirrored (``numpy.pad`` symmetric) to cover
    ``(height + 2 margin, width + 2 margin)``."""
    c, h, w = image.shape
    ph, pw = height + 2 * margin - h, width + 2 * margin - w
    arr = np.pad(image.numpy(), ((0, 0), (0, max(ph, 0)), (0, max(pw, 0))), mode="symmetric")
    return torch.from_numpy(arr[:, : height + 2 * margin, : width + 2 * margin].copy())


def clean_reference(height: int, width: int) -> np.ndarray:
    """The noise-free frame 0 ``(H, W, 3)``, sRGB-encoded, in [0, 1]."""
    margin = 8
    canvas = mirrored_canvas(load_linear("astronaut"), height, width, margin)
    clean = canvas[:, margin : margin + height, margin : margin + width]
    return linear_to_srgb(clean).clamp(0, 1).permute(1, 2, 0).numpy()


def burst_frames(
    height: int, width: int, frames: int, seed: int = 0, level: str = "gain2"
) -> list[np.ndarray]:
    """The ``frames`` noisy sRGB frames ``(H, W, 3)`` in [0, 1]."""
    margin = 8
    canvas = mirrored_canvas(load_linear("astronaut"), height, width, margin)
    lv = NOISE_LEVELS[level]
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(frames):
        dy, dx = SHIFTS[i % len(SHIFTS)]
        clean = canvas[:, margin + dy : margin + dy + height, margin + dx : margin + dx + width]
        noisy = add_noise(clean.contiguous(), lv.sigma_r, lv.sigma_s, g)
        out.append(linear_to_srgb(noisy).clamp(0, 1).permute(1, 2, 0).numpy())
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--width", type=int, default=4000)
    p.add_argument("--height", type=int, default=3000)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crop", help="also write a centred crop WxH of every frame to OUT_WxH")
    args = p.parse_args(argv)
    out = Path(args.out)
    crop = tuple(int(v) for v in args.crop.split("x")) if args.crop else None
    for i, frame in enumerate(burst_frames(args.height, args.width, args.frames, args.seed)):
        write_image(out / f"frame_{i}.png", frame)
        if crop is not None:
            cw, ch = crop
            y0, x0 = (args.height - ch) // 2, (args.width - cw) // 2
            write_image(
                Path(f"{out}_{cw}x{ch}") / f"frame_{i}.png", frame[y0 : y0 + ch, x0 : x0 + cw]
            )
    print(f"wrote {args.frames} frames of {args.width}x{args.height} to {out}")


if __name__ == "__main__":
    main()
