"""Degraded / clean pairs on disk, in the layouts the datasets ship (searched recursively
under the root):

- ``sidd``: SIDD-Medium sRGB, ``<scene>/<id>_NOISY_SRGB_<k>.PNG`` with ``<id>_GT_SRGB_<k>.PNG``
  beside it (any file whose name has ``NOISY`` pairs with the same name with ``GT``);
- ``gopro``: GoPro, ``<sequence>/blur/<frame>.png`` with ``<sequence>/sharp/<frame>.png``;
- ``polyu``: PolyU real-world noisy images, ``<name>_real.JPG`` (or ``_Real``) with
  ``<name>_mean.JPG`` (the mean of many captures) beside it.

Read by :class:`~burstkpn.data.datasets.PairedImageDataset` (training) and the restoration and
real-noise benchmarks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from burstkpn.data.io.images import IMAGE_EXTENSIONS, read_image
from burstkpn.errors import InputError, MissingInputError

LAYOUTS = ("auto", "sidd", "gopro", "polyu")


def _image_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _unmatched(kind: str, files: list[Path], root: Path) -> InputError:
    first = files[0].relative_to(root)
    more = f" and {len(files) - 1} more" if len(files) > 1 else ""
    return InputError(f"{kind} in '{root}': '{first}'{more}")


def _matched(
    pairs: list[tuple[Path, Path | None]],
    clean: set[Path],
    root: Path,
    no_clean: str,
    no_degraded: str,
) -> list[tuple[Path, Path]]:
    """``pairs`` once every degraded file's partner is among the ``clean`` files (``None``: it
    has none) and every clean file is some degraded file's partner; else the
    :func:`_unmatched` error of the first unmatched files (``no_clean`` / ``no_degraded`` name
    what they lack)."""
    missing = [p for p, q in pairs if q not in clean]
    if missing:
        raise _unmatched(no_clean, missing, root)
    lonely = sorted(clean - {q for _, q in pairs})
    if lonely:
        raise _unmatched(no_degraded, lonely, root)
    return pairs  # type: ignore[return-value]  # every partner is a clean file


def _sidd_pairs(root: Path, files: list[Path]) -> list[tuple[Path, Path]]:
    noisy = [p for p in files if re.search("noisy", p.name, re.IGNORECASE)]
    gt = {p for p in files if re.search(r"(?<![a-z])gt(?![a-z])", p.name, re.IGNORECASE)}

    def partner(p: Path) -> Path:
        swap = lambda m: "GT" if m.group(0).isupper() else "gt"  # noqa: E731
        return p.with_name(re.sub("noisy", swap, p.name, count=1, flags=re.IGNORECASE))

    pairs = [(p, partner(p)) for p in noisy]
    return _matched(
        pairs, gt, root, "no ground truth (NOISY -> GT) for", "no noisy image (GT -> NOISY) for"
    )


def _gopro_pairs(root: Path, files: list[Path]) -> list[tuple[Path, Path]]:
    blur = [p for p in files if p.parent.name.lower() == "blur"]
    sharp = {p for p in files if p.parent.name.lower() == "sharp"}
    pairs = [(p, p.parent.parent / "sharp" / p.name) for p in blur]
    return _matched(pairs, sharp, root, "no sharp/ image for", "no blur/ image for")


def _polyu_pairs(root: Path, files: list[Path]) -> list[tuple[Path, Path]]:
    real, mean = [], {}
    for p in files:
        stem = p.stem.lower()
        if stem.endswith("_real"):
            real.append(p)
        elif stem.endswith("_mean"):
            mean[(p.parent, stem[: -len("_mean")])] = p
    clean = set(mean.values())
    # each _mean image pairs once (popped): a second _real image with its stem has none
    pairs = [(p, mean.pop((p.parent, p.stem.lower()[: -len("_real")]), None)) for p in real]
    return _matched(pairs, clean, root, "no _mean image for", "no _real image for")


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
