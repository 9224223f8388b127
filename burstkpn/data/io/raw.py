"""Camera raw files (DNG, CR2, NEF, ARW, ...) through ``rawpy`` (LibRaw), an optional extra:
``pip install "burstkpn[raw]"``.

A raw frame is developed to a 16-bit sRGB image and from then on handled like any 16-bit
photo, so the model sees linear light exactly as it does for other inputs:

1. LibRaw subtracts the black level and scales by the white level (per channel, from the
   file's metadata), applies the camera's white balance ("as shot") and demosaics (AHD);
2. the camera colour matrix maps to linear sRGB primaries, with no automatic brightening,
   no tone curve and no highlight blending (``gamma=(1, 1)``, ``no_auto_bright=True``);
3. our sRGB transfer function ([DeformKernels] eq. 8) encodes the result, quantised to
   16 bits (65,536 levels, far below the noise of any raw frame). Step 3 is
   :func:`burstkpn.data.io.images.read_raw`, beside the transfer pair, so that this module
   does not import the image module that reads through it.

The denoiser then undoes step 3 exactly (in float) and runs in linear light; its output is
written sRGB-encoded, i.e. developed. Note that demosaicing mixes neighbouring samples, so the
noise the model sees is slightly correlated across pixels and colour planes (the training
bursts are not); ``--noise auto`` estimates its level from the developed frames.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from burstkpn.errors import InputError

RAW_EXTENSIONS = (
    ".dng",
    ".cr2",
    ".cr3",
    ".nef",
    ".arw",
    ".raf",
    ".orf",
    ".rw2",
    ".pef",
    ".srw",
)


def is_raw(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in RAW_EXTENSIONS


def _rawpy():
    try:
        import rawpy
    except ImportError:
        raise InputError(
            "reading camera raw files needs rawpy: pip install 'burstkpn[raw]'"
        ) from None
    return rawpy


def develop_raw_linear(path: str | os.PathLike) -> np.ndarray:
    """Steps 1-2 above: ``(H, W, 3)`` float32 linear sRGB in [0, 1]."""
    rawpy = _rawpy()
    try:
        with rawpy.imread(os.fspath(path)) as raw:
            rgb = raw.postprocess(
                gamma=(1, 1),
                no_auto_bright=True,
                output_bps=16,
                use_camera_wb=True,
                output_color=rawpy.ColorSpace.sRGB,
                highlight_mode=rawpy.HighlightMode.Clip,
                user_flip=0,
            )
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read raw file '{path}': {reason}") from None
    return rgb.astype(np.float32) / 65535.0
