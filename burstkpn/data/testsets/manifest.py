"""What the three test sets (:mod:`~burstkpn.data.testsets.burst`,
:mod:`~burstkpn.data.testsets.video`, :mod:`~burstkpn.data.testsets.deblur`) share: the folder
format, its writer (:class:`ManifestWriter` and the helpers it uses) and the reader base class
:class:`ManifestTestSet`.

A test-set folder holds ``manifest.json`` (``format``, ``version``, a ``generator`` block with
the generation parameters, and one entry per file with its sha256) and the ``.npz`` files it
lists. Each ``.npz`` is a plain zip of ``.npy`` arrays written with fixed timestamps and member
order (:func:`npz_bytes`, byte-reproducible) and read with ``numpy.load(allow_pickle=False)``.
Noisy (or blurry) values are linear light, which noise pushes outside [0, 1], so they are stored
as 16-bit codes ``x = code * NOISY_SCALE + NOISY_OFFSET`` covering [-1, 3] in steps of 6.1e-5:
the quantisation noise (variance 3e-10) is five orders of magnitude below the smallest noise
variance of any named level, and values beyond the range (more than 12 standard deviations of
Gain 4 read noise) are counted in the manifest as ``clipped``.

Seeding: the random draws of an image (or window) come from generators seeded by the set's
seed and the crc32 keys of its name and, for the noise, of the level's name
(:func:`seeded_generator`), so every file is reproducible on its own.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from burstkpn import __version__
from burstkpn.data.degrade.noise import NoiseLevel, estimate_noise_map
from burstkpn.data.io.files import atomic_write_bytes, prepare_output_dir, sha256_file
from burstkpn.data.io.images import image_name
from burstkpn.data.sampling import derive_seed
from burstkpn.errors import InputError, MissingInputError

FORMAT_VERSION = 1
NOISY_OFFSET = -1.0
NOISY_SCALE = 4.0 / 65535


# --------------------------------------------------------------------------- file format
def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive with fixed timestamps and member order (byte-reproducible, unlike
    ``numpy.savez`` which stamps the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            arr = np.asarray(arrays[name])  # (ascontiguousarray would turn scalars into 1-d)
            member = io.BytesIO()
            np.lib.format.write_array(member, np.array(arr, order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue(), compresslevel=1)
    return buf.getvalue()


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read burst file '{path}': {exc}") from None


def encode_noisy(x: torch.Tensor) -> tuple[np.ndarray, int]:
    """Linear values -> uint16 codes, and the number of values clipped to the code range."""
    codes = torch.round((x.double() - NOISY_OFFSET) / NOISY_SCALE)
    clipped = int(((codes < 0) | (codes > 65535)).sum())
    return codes.clamp(0, 65535).to(torch.int32).numpy().astype(np.uint16), clipped


def decode_noisy(codes: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(codes.astype(np.float64)) * NOISY_SCALE + NOISY_OFFSET).float()


# --------------------------------------------------------------------------- writing
def name_key(name: str) -> int:
    """The seed key of an image, window or level name (crc32 of its UTF-8 bytes)."""
    return zlib.crc32(name.encode("utf-8"))


def seeded_generator(seed: int, *keys: int | str) -> torch.Generator:
    """A generator seeded with ``derive_seed(seed, *keys)``, names replaced by
    :func:`name_key`."""
    ints = [name_key(k) if isinstance(k, str) else k for k in keys]
    return torch.Generator().manual_seed(derive_seed(seed, *ints))


def unique_name(ref: str, taken: dict[str, int]) -> str:
    """The name of image ``ref`` in a test set: its stem, with ``_1``, ``_2``.. appended for a
    stem seen before (two files with one stem in different folders); records it in
    ``taken``."""
    name = image_name(ref)
    if name in taken:
        taken[name] += 1
        name = f"{name}_{taken[name]}"
    taken.setdefault(name, 0)
    return name


def write_manifest(out: Path, fmt: str, generator: dict, key: str, entries: list[dict]) -> dict:
    """Write ``manifest.json`` (format, version, the ``generator`` block after the package and
    torch versions, then the ``entries`` under ``key``) and return the manifest."""
    manifest = {
        "format": fmt,
        "version": FORMAT_VERSION,
        "generator": {
            "burstkpn": __version__,
            "torch": torch.__version__.split("+")[0],
            **generator,
        },
        key: entries,
    }
    atomic_write_bytes(out / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


def level_records(levels: Sequence[NoiseLevel]) -> list[dict]:
    """The noise levels of a test set as its generator block lists them."""
    return [{"name": lv.name, "sigma_r": lv.sigma_r, "sigma_s": lv.sigma_s} for lv in levels]


def sample_npz(
    noisy: torch.Tensor,
    clean: torch.Tensor,
    sigma_r: float,
    sigma_s: float,
    **arrays: np.ndarray,
) -> tuple[bytes, int]:
    """The ``.npz`` bytes of one noisy sample as :meth:`TestSample.from_npz` reads it
    (``noisy`` ``(N, C, H, W)`` as 16-bit codes, ``clean`` ``(C, H, W)`` as float32, the noise
    parameters, and the test set's own ``arrays``) and the number of noisy values clipped by the
    16-bit encoding."""
    codes, clipped = encode_noisy(noisy)
    data = npz_bytes(
        {
            "noisy_u16": codes,
            "clean": clean.numpy().astype(np.float32),
            "sigma_r": np.float64(sigma_r),
            "sigma_s": np.float64(sigma_s),
            **arrays,
        }
    )
    return data, clipped


class ManifestWriter:
    """Writes one test-set folder: prepares ``out_dir``
    (:func:`~burstkpn.data.io.files.prepare_output_dir`), names the images uniquely
    (:meth:`name`), seeds their generators from the set's ``seed`` (:meth:`generator`), writes
    each file atomically with its manifest entry (:meth:`write`) and ``manifest.json`` last
    (:meth:`finish`)."""

    def __init__(self, out_dir: str | os.PathLike, *, seed: int, force: bool) -> None:
        self.out = prepare_output_dir(out_dir, force)
        self.seed = seed
        self.entries: list[dict] = []
        self._taken: dict[str, int] = {}

    def name(self, ref: str) -> str:
        """The unique name of image ``ref`` in this set (:func:`unique_name`)."""
        return unique_name(ref, self._taken)

    def generator(self, *keys: int | str) -> torch.Generator:
        """:func:`seeded_generator` of the set's seed and ``keys``."""
        return seeded_generator(self.seed, *keys)

    def write(self, rel: str, data: bytes, **fields) -> None:
        """Write ``data`` to ``rel`` in the folder and add its entry: ``file``, ``sha256``,
        then ``fields``."""
        atomic_write_bytes(self.out / rel, data)
        self.entries.append({"file": rel, "sha256": hashlib.sha256(data).hexdigest(), **fields})

    def finish(
        self, fmt: str, key: str, generator: dict, *, encoding: str = "noisy_encoding"
    ) -> dict:
        """Write ``manifest.json`` with the entries under ``key`` and return it. The
        ``generator`` block ends with the 16-bit code range of the degraded values, under
        ``encoding``."""
        codes = {"offset": NOISY_OFFSET, "scale": NOISY_SCALE, "dtype": "uint16"}
        return write_manifest(self.out, fmt, {**generator, encoding: codes}, key, self.entries)


# --------------------------------------------------------------------------- reading
@dataclass
class TestSample:
    """One noisy benchmark sample, batched as the package expects: ``noisy`` ``(1, N, C, H,
    W)`` (reference frame first), ``noise_map`` / ``clean`` ``(1, C, H, W)``, linear light;
    the subclasses add what their test set stores."""

    __test__ = False  # not a pytest class

    image: str
    level: str
    noisy: torch.Tensor
    noise_map: torch.Tensor
    clean: torch.Tensor
    sigma_r: float
    sigma_s: float

    @classmethod
    def from_npz(cls, entry: dict, z: dict[str, np.ndarray], **extra):
        """The sample of manifest ``entry`` from its arrays ``z`` (``noisy_u16``, ``clean``,
        ``sigma_r``, ``sigma_s``; the noise map is the oracle one), plus ``extra`` fields."""
        noisy = decode_noisy(z["noisy_u16"])[None]
        sigma_r, sigma_s = float(z["sigma_r"]), float(z["sigma_s"])
        return cls(
            image=entry["image"],
            level=entry["level"],
            noisy=noisy,
            noise_map=estimate_noise_map(noisy[:, 0], sigma_r, sigma_s),
            clean=torch.from_numpy(z["clean"])[None],
            sigma_r=sigma_r,
            sigma_s=sigma_s,
            **extra,
        )


class ManifestTestSet:
    """A test-set folder: the manifest read and checked on opening, its entries (listed under
    :attr:`ENTRIES`) loaded in order when iterated, each file checked against its sha256 unless
    ``verify=False``. Subclasses name the format and implement :meth:`load`."""

    __test__ = False

    FORMAT: str
    ENTRIES: str
    NOT_A_TEST_SET = "'{root}' is not a test set (no manifest.json)"
    WRONG_FORMAT = "'{path}' is not a burstkpn test-set manifest"

    def __init__(self, root: str | os.PathLike, *, verify: bool = True) -> None:
        self.root = Path(root)
        path = self.root / "manifest.json"
        if not path.is_file():
            raise MissingInputError(self.NOT_A_TEST_SET.format(root=root))
        try:
            self.manifest = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"corrupt manifest '{path}': {exc}") from None
        if self.manifest.get("format") != self.FORMAT:
            raise InputError(self.WRONG_FORMAT.format(root=root, path=path))
        self.verify = verify

    @property
    def levels(self) -> list[str]:
        return [lv["name"] for lv in self.manifest["generator"]["levels"]]

    @property
    def entries(self) -> list[dict]:
        return self.manifest[self.ENTRIES]

    def __len__(self) -> int:
        return len(self.entries)

    def read(self, entry: dict) -> dict[str, np.ndarray]:
        """The arrays of ``entry``'s file, checked against its sha256 (unless not verifying)."""
        path = self.root / entry["file"]
        if not path.is_file():
            raise MissingInputError(f"test-set file missing: '{path}'")
        if self.verify and sha256_file(path) != entry["sha256"]:
            raise InputError(f"test-set file '{path}' does not match its sha256 in the manifest")
        return read_npz(path)

    def load(self, entry: dict):
        raise NotImplementedError

    def __iter__(self) -> Iterator:
        for entry in self.entries:
            yield self.load(entry)
