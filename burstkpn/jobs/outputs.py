"""The outputs of the jobs: checks made before any heavy work (a known extension, never an
input, never an existing file without ``force``, writable) and the writers of the files that
are not images of a model (a free name for the demo, JSON, the ablation report)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from burstkpn.data.io.files import atomic_write_bytes, check_folder_writable, check_writable
from burstkpn.data.io.images import IMAGE_EXTENSIONS, write_image
from burstkpn.data.io.raw import is_raw
from burstkpn.denoising import is_video_file
from burstkpn.errors import InputError, OutputExistsError


def check_new_file(path: Path, force: bool) -> None:
    """A file output: without ``force`` it must not exist; it must be writable."""
    if path.exists() and not path.is_dir() and not force:
        raise InputError(f"output '{path}' exists (use --force to overwrite it)")
    check_writable(path)


def check_output(path: Path, inputs: Sequence[str], force: bool) -> None:
    """An output image: a known extension, not an input, not existing (without ``force``)
    and writable, all checked before any work."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(f"output '{path}' must end in one of {', '.join(IMAGE_EXTENSIONS)}")
    for ref in inputs:
        if Path(ref).exists() and Path(ref).resolve() == path.resolve():
            raise InputError(f"output '{path}' is one of the inputs; choose another name")
    check_new_file(path, force)


def check_sequence_target(out: Path, force: bool) -> None:
    """A video file or frame-folder output, before any work: without ``force`` a video file
    must not exist and a folder must be empty; either must be writable. (With ``force`` a
    folder keeps everything but the ``frame_NNNNNN.png`` files this run writes.)"""
    if is_video_file(out):
        check_new_file(out, force)
        return
    check_folder_writable(out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(
            f"output folder '{out}' is not empty (--force writes its frame_NNNNNN.png files "
            "there, leaving everything else)"
        )


def refuse_overwriting_input(out: Path, refs: Sequence[str]) -> None:
    """An output folder that holds one of the inputs: a one-line error."""
    out = out.resolve()
    for ref in refs:
        p = Path(ref)
        if p.exists() and p.resolve().parent == out:
            raise InputError(f"output folder '{out}' holds the input '{ref}'; choose another")


def refuse_linear_raw(linear: bool, inputs: Sequence[str]) -> None:
    """``linear`` with camera raw files, which are developed to sRGB: a one-line error."""
    if linear and any(is_raw(i) for i in inputs):
        raise InputError("raw files are developed to sRGB before denoising: drop --linear")


def write_new(name: str | Path, image: np.ndarray) -> Path:
    """Write ``image`` under ``name`` or, when taken, the first free ``STEM_K.EXT`` (K = 2,
    3, ...), each created exclusively: reruns never overwrite anything."""
    path = Path(name)
    for k in range(1, 10_000):
        candidate = path if k == 1 else path.with_name(f"{path.stem}_{k}{path.suffix}")
        if candidate.exists():
            continue
        try:
            return write_image(candidate, image, overwrite=False)
        except OutputExistsError:  # taken meanwhile by another run
            continue
    raise InputError(f"no free name for '{name}': remove some of the earlier outputs")


def write_json(path: str | Path, data) -> None:
    """``data`` as indented JSON (one trailing newline), written atomically."""
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())


def write_ablation_report(
    out: Path,
    *,
    command: str,
    testset: str,
    checkpoints: Path,
    limit: int | None,
    table: str,
    scores: dict,
    note: str = "",
) -> None:
    """``bench ablation --out``: ``report.md`` (the table of
    :func:`burstkpn.bench.quality.run_ablation`, how it was made, ``note`` on missing
    checkpoints) and ``results.json`` in the folder ``out``."""
    text = (
        "# [AME-KPN] Table 2: ablation of the AME units\n\n"
        f"Produced by:\n\n```bash\n{command}\n```\n\n"
        f"Mean PSNR (dB) over every burst of `{testset}`"
        + (f" (first {limit} images)" if limit else "")
        + f", checkpoints `{checkpoints}/ame_kpn_model{{1..6}}.safetensors` "
        "(their training budget is in their cards).\n\n"
        + table
        + "\n"
        + (f"\n{note}\n" if note else "")
    )
    results = {"command": command, "testset": str(testset), "psnr": scores}
    atomic_write_bytes(out / "report.md", text.encode())
    write_json(out / "results.json", results)
