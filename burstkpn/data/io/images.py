"""Reading and writing user images, the embedded default photos, and the sRGB transfer pair.

Conventions: files on disk are sRGB-encoded (display-referred); inside the package images are
float tensors ``(C, H, W)`` in linear light. The transfer functions below are the only place the
two meet ([DeformKernels] eq. 8).
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from burstkpn.data.io.files import publish
from burstkpn.data.io.raw import RAW_EXTENSIONS, develop_raw_linear
from burstkpn.errors import InputError, MissingInputError

# Largest image decoded, in pixels, at every bit depth and format: Pillow's decompression-bomb
# error threshold (2 x its MAX_IMAGE_PIXELS), checked from the file's header before decoding.
MAX_PIXELS = 2 * 89_478_485
# what we write; we read these and camera raw files (burstkpn.data.io.raw, optional rawpy)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
READ_EXTENSIONS = IMAGE_EXTENSIONS + RAW_EXTENSIONS
EMBEDDED_PREFIX = "skimage:"
# Natural photographs bundled inside scikit-image (no download needed). Colour ones first;
# grayscale ones are expanded to 3 channels by the datasets when colour is asked for.
EMBEDDED_IMAGES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "coins",
    "clock",
    "brick",
    "grass",
    "gravel",
)

_SRGB_LINEAR_THRESHOLD = 0.0031308  # [DeformKernels] eq. (8)
_SRGB_ENCODED_THRESHOLD = 12.92 * _SRGB_LINEAR_THRESHOLD  # = 0.04045 (rounded)
_SRGB_ALPHA = 0.055


# --------------------------------------------------------------------------- sRGB transfer
def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Gamma correction phi of [DeformKernels] eq. (8): 12.92 x below 0.0031308, else
    (1 + a) x^(1/2.4) - a with a = 0.055. Defined (linearly) for negative inputs, which noisy
    values can be; no clipping. Differentiable everywhere with finite gradients."""
    lin = 12.92 * x
    # clamp inside the power so the unused branch never produces NaN gradients
    powed = (1 + _SRGB_ALPHA) * x.clamp_min(_SRGB_LINEAR_THRESHOLD).pow(1 / 2.4) - _SRGB_ALPHA
    return torch.where(x <= _SRGB_LINEAR_THRESHOLD, lin, powed)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`linear_to_srgb` (eq. 8 inverted): x / 12.92 below 0.04045, else
    ((x + a) / (1 + a))^2.4."""
    lin = x / 12.92
    if not x.is_floating_point() or x.requires_grad:
        powed = ((x.clamp_min(_SRGB_ENCODED_THRESHOLD) + _SRGB_ALPHA) / (1 + _SRGB_ALPHA)).pow(2.4)
    else:  # the same operations in place: one temporary instead of four (a 12 MP burst: -25 %)
        powed = x.clamp_min(_SRGB_ENCODED_THRESHOLD).add_(_SRGB_ALPHA)
        powed.div_(1 + _SRGB_ALPHA).pow_(2.4)
    return torch.where(x <= _SRGB_ENCODED_THRESHOLD, lin, powed)


# --------------------------------------------------------------------------- sources
def _is_embedded(name: str) -> str | None:
    key = name[len(EMBEDDED_PREFIX) :] if name.startswith(EMBEDDED_PREFIX) else name
    return key if key in EMBEDDED_IMAGES else None


def list_images(source: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[str]:
    """Resolve a user's image source to a sorted list of image references.

    ``source`` may be ``None`` / ``"embedded"`` (all embedded photos), an embedded name
    (``"astronaut"`` or ``"skimage:astronaut"``), an image file, a folder (searched recursively
    for .png/.jpg/.jpeg/.tif/.tiff and camera raw files, skipping hidden files and folders), a
    glob pattern (``*`` does not match hidden names), or a list of any of these.
    """
    if source is None or (isinstance(source, str) and source in ("embedded", "skimage")):
        return [EMBEDDED_PREFIX + n for n in EMBEDDED_IMAGES]
    if isinstance(source, (list, tuple)):
        refs: list[str] = []
        for s in source:
            refs.extend(list_images(s))
        if not refs:
            raise InputError("no images given")
        return refs
    text = os.fspath(source)
    path = Path(text)
    if path.is_dir():
        files = sorted(
            str(p)
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in READ_EXTENSIONS and not _hidden(p, path)
        )
        if not files:
            raise InputError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)} or camera raw) found in folder '{text}'"
            )
        return files
    if path.is_file():
        _check_extension(path)
        return [str(path)]
    embedded = _is_embedded(text)
    if embedded is not None:
        return [EMBEDDED_PREFIX + embedded]
    if any(c in text for c in "*?["):
        files = sorted(f for f in glob.glob(text, recursive=True) if os.path.isfile(f))
        files = [f for f in files if Path(f).suffix.lower() in READ_EXTENSIONS]
        if not files:
            raise InputError(f"no images match the pattern '{text}'")
        return files
    raise MissingInputError(f"no such file, folder or embedded image: '{text}'")


def _hidden(path: Path, root: Path) -> bool:
    """Whether ``path`` (under ``root``) is a hidden file or lies in a hidden folder: the
    temporary files of an interrupted write (``.out.XXXX.png``) and tool folders are no
    images of the user's."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _check_extension(path: Path) -> None:
    if path.suffix.lower() not in READ_EXTENSIONS:
        raise InputError(
            f"unsupported image format '{path.suffix or '(none)'}' for '{path}' "
            f"(supported: {', '.join(IMAGE_EXTENSIONS)} and camera raw files)"
        )


def image_name(ref: str) -> str:
    """A short name for an image reference (file stem or embedded name)."""
    embedded = _is_embedded(ref) if ref.startswith(EMBEDDED_PREFIX) else None
    return embedded if embedded is not None else Path(ref).stem


# --------------------------------------------------------------------------- reading
def read_image(ref: str | os.PathLike) -> np.ndarray:
    """Read one image as an array ``(H, W, C)`` in its stored dtype (uint8, uint16 or float),
    with C = 1 (grayscale) or 3 (colour; an alpha channel is dropped).

    Raises :class:`InputError` with a one-line message for a missing, unsupported, corrupt,
    multi-page or non-finite image.
    """
    text = os.fspath(ref)
    embedded = None if os.path.exists(text) else _is_embedded(text)
    if embedded is not None:
        from skimage import data as skdata

        arr = np.asarray(getattr(skdata, embedded)())
    else:
        path = Path(text)
        if not path.exists():
            raise MissingInputError(f"no such image file: '{text}'")
        if path.is_dir():
            raise InputError(f"'{text}' is a folder, expected an image file")
        _check_extension(path)
        image_size(path)  # refuses an image over MAX_PIXELS before decoding it
        arr = _decode(path)
        _check_pixels(arr.shape[0], arr.shape[1], text)
    return _normalise_layout(arr, text)


def image_size(ref: str | os.PathLike) -> tuple[int, int] | None:
    """``(height, width)`` of an image file read from its header alone (nothing is decoded),
    or ``None`` where the header is not read (embedded photos, camera raw files). One-line
    :class:`InputError` for a missing or unreadable file and for an image over
    :data:`MAX_PIXELS` (any bit depth)."""
    text = os.fspath(ref)
    path = Path(text)
    if not path.exists():
        if _is_embedded(text) is not None:
            return None
        raise MissingInputError(f"no such image file: '{text}'")
    if path.is_dir():
        raise InputError(f"'{text}' is a folder, expected an image file")
    _check_extension(path)
    ext = path.suffix.lower()
    if ext in RAW_EXTENSIONS:
        return None
    if ext == ".png":
        width, height, _ = _png_header(path)
        size, pages = (height, width), 1
    else:
        try:
            size, pages = _tiff_size(path) if ext in (".tif", ".tiff") else (_pil_size(path), 1)
        except Exception as exc:  # any header-parsing failure means the file is unreadable
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"cannot read image '{path}': {reason}") from None
    _check_pixels(size[0], size[1] * pages, text)
    return size


def _check_pixels(height: int, width: int, name: str) -> None:
    if height * width > MAX_PIXELS:
        raise InputError(
            f"image '{name}' is {width}x{height} ({height * width / 1e6:.0f} MP), over the "
            f"limit of {MAX_PIXELS / 1e6:.0f} MP"
        )


def _png_header(path: Path) -> tuple[int, int, int]:
    """``(width, height, bit depth)`` from a PNG's IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(25)
    if len(head) < 25 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise InputError(f"cannot read image '{path}': not a PNG file")
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if width == 0 or height == 0:
        raise InputError(f"image '{path}' is empty")
    return width, height, head[24]


def _png_bit_depth(path: Path) -> int:
    return _png_header(path)[2]


def _pil_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:  # lazy: reads the header only
        return im.size[1], im.size[0]


def _tiff_size(path: Path) -> tuple[tuple[int, int], int]:
    """``(height, width)`` of the first page and the number of pages."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        return (int(page.imagelength), int(page.imagewidth)), len(tif.pages)


def _read_png16(path: Path) -> np.ndarray:
    # Pillow (and so imageio) decodes 16-bit colour PNGs to 8 bits; pypng keeps all 16.
    import png

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows])
    return arr.reshape(height, width, info["planes"])


def read_raw(path: str | os.PathLike) -> np.ndarray:
    """A camera raw file developed to an ``(H, W, 3)`` uint16 sRGB-encoded image: linear light
    from :func:`~burstkpn.data.io.raw.develop_raw_linear` (steps 1-2 there), encoded with
    :func:`linear_to_srgb` and quantised to 16 bits (step 3)."""
    linear = torch.from_numpy(develop_raw_linear(path))
    encoded = linear_to_srgb(linear.clamp(0, 1)).numpy()
    return np.round(encoded * 65535.0).astype(np.uint16)


def _decode(path: Path) -> np.ndarray:
    if path.suffix.lower() in RAW_EXTENSIONS:
        return read_raw(path)  # developed to 16-bit sRGB (burstkpn.data.io.raw)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(path))
        if path.suffix.lower() == ".png" and _png_bit_depth(path) == 16:
            return _read_png16(path)
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except InputError:
        raise
    except Exception as exc:  # any decoder failure means the file is unreadable for us
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read image '{path}': {reason}") from None


def _normalise_layout(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise InputError(
            f"image '{name}' has shape {tuple(arr.shape)}; expected a single grayscale or "
            "RGB(A) image (multi-page files are not supported)"
        )
    if arr.shape[2] == 2:  # gray + alpha
        arr = arr[:, :, :1]
    elif arr.shape[2] == 4:  # RGBA
        arr = arr[:, :, :3]
    if arr.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise InputError(f"image '{name}' has unsupported sample type {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(f"image '{name}' contains NaN or Inf values")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(f"image '{name}' is empty")
    return np.ascontiguousarray(arr)


def image_to_tensor(arr: np.ndarray, *, permuted: bool = False) -> torch.Tensor:
    """``(H, W, C)`` uint8 / uint16 / float array -> float32 tensor ``(C, H, W)`` in [0, 1]
    (still sRGB-encoded; apply :func:`srgb_to_linear` for linear light). ``permuted``: return
    the ``(C, H, W)`` view of an ``(H, W, C)`` tensor instead of a contiguous copy (for a
    caller that copies it into place)."""
    if arr.dtype == np.uint8:
        scale = 255.0
    elif arr.dtype == np.uint16:
        scale = 65535.0
    else:
        scale = 1.0
    t = torch.from_numpy(np.ascontiguousarray(arr).astype(np.float32, copy=False))
    t = (t / scale).permute(2, 0, 1)
    return t if permuted else t.contiguous()


def load_linear(ref: str | os.PathLike) -> torch.Tensor:
    """Read an sRGB image file and return it in linear light as ``(C, H, W)`` float32."""
    return srgb_to_linear(image_to_tensor(read_image(ref)))


# --------------------------------------------------------------------------- writing
def to_display(x: torch.Tensor, *, linear: bool = True) -> np.ndarray:
    """``(C, H, W)`` tensor (linear light unless ``linear=False``) -> ``(H, W, C)`` float64
    array in [0, 1], sRGB-encoded and clipped, ready for :func:`write_image`."""
    x = x.detach().to(torch.float64).cpu()
    if linear:
        x = linear_to_srgb(x)
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


PNG_COMPRESS_LEVEL = 1  # zlib level of written PNGs: fastest; see _encode


def write_image(
    path: str | os.PathLike, img: np.ndarray, *, bits: int = 8, overwrite: bool = True
) -> Path:
    """Write an sRGB-encoded ``(H, W, C)`` float image in [0, 1] atomically (hidden temporary
    file in the same folder, then :func:`~burstkpn.data.io.files.publish`), as 8- or 16-bit
    PNG/TIFF or 8-bit JPEG. ``overwrite=False`` creates ``path`` exclusively: a one-line
    :class:`InputError` if it exists, even when another process wrote it meanwhile."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise InputError(f"cannot write '{path}': unsupported extension (use .png, .tif or .jpg)")
    if bits not in (8, 16):
        raise InputError(f"bit depth must be 8 or 16, got {bits}")
    if bits == 16 and ext in (".jpg", ".jpeg"):
        raise InputError(f"JPEG cannot hold 16-bit samples: '{path}'")
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not np.isfinite(arr).all():
        raise InputError(f"refusing to write '{path}': the image contains NaN or Inf")
    maxval = 255 if bits == 8 else 65535
    q = np.round(np.clip(arr, 0.0, 1.0) * maxval).astype(np.uint8 if bits == 8 else np.uint16)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=ext, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise InputError(f"cannot write '{path}': {exc.strerror or exc}") from None
    try:
        _encode(tmp, q, ext, bits)
        publish(tmp, path, overwrite=overwrite)
    except OSError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot write '{path}': {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _encode(tmp: str, q: np.ndarray, ext: str, bits: int) -> None:
    if ext in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(tmp, q)
    elif bits == 16:  # Pillow cannot write 16-bit colour PNGs
        import png

        planes = 1 if q.ndim == 2 else q.shape[2]
        writer = png.Writer(
            q.shape[1],
            q.shape[0],
            greyscale=planes == 1,
            bitdepth=16,
            compression=PNG_COMPRESS_LEVEL,
        )
        with open(tmp, "wb") as f:
            writer.write(f, q.reshape(q.shape[0], -1))
    else:
        import imageio.v3 as iio

        # PNG at zlib level 1 (OpenCV's default): 12 MP in about 3 s instead of 15 s at
        # Pillow's 6, for files about 20 % larger; lossless either way
        extra = {"compress_level": PNG_COMPRESS_LEVEL} if ext == ".png" else {}
        iio.imwrite(tmp, q, extension=ext, **extra)
