"""Videos and frame folders in and out: decoding a video file frame by frame
(:func:`iter_video`, with PyAV), the bit depth an output is written at (:func:`sequence_bits`),
the checks that keep an output away from the inputs (:func:`check_sequence_output`) and the
writer (:class:`VideoWriter`) that publishes a video file or ``frame_NNNNNN.png`` files only
when the whole sequence is done.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from burstkpn.data.io.files import publish
from burstkpn.data.io.images import write_image
from burstkpn.errors import BurstkpnWarning, InputError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")
FRAME_NAME = "frame_{:06d}.png"  # the files a folder output gets, nothing else
LOSSLESS_VIDEO = (".mkv", ".avi")  # written with FFV1, which holds 8 or 16 bits per sample


def open_video(path: str | os.PathLike):
    """A PyAV container of the video file ``path`` and its first video stream (one-line errors
    without PyAV, for a missing file or one that is not a video)."""
    try:
        import av
    except ImportError:
        raise InputError("video needs PyAV: pip install 'burstkpn[video]'") from None
    if not os.path.isfile(path):
        raise InputError(f"no such video file: '{path}'")
    try:
        container = av.open(str(path))
        stream = container.streams.video[0]
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise InputError(f"cannot read video '{path}': {exc}") from None
    return container, stream


def video_bits(stream) -> int:
    """A video stream's bit depth for us: 16 when it stores more than 8 bits per sample
    (10-bit HEVC, 16-bit FFV1, ...), else 8."""
    fmt = stream.codec_context.format
    return 16 if fmt is not None and max(c.bits for c in fmt.components) > 8 else 8


def iter_video(path: str | os.PathLike) -> Iterator[torch.Tensor]:
    """Decode a video frame by frame: yields ``(C, H, W)`` float tensors in [0, 1] (sRGB),
    decoded at 16 bits per sample when the stream has more than 8 (:func:`video_bits`)."""
    import av

    container, stream = open_video(path)
    fmt, scale = ("rgb48le", 65535.0) if video_bits(stream) == 16 else ("rgb24", 255.0)
    try:
        for frame in container.decode(stream):
            arr = frame.to_ndarray(format=fmt).astype(np.float32)
            yield torch.from_numpy(arr).permute(2, 0, 1) / scale
    except av.error.FFmpegError as exc:
        raise InputError(f"cannot decode video '{path}': {exc}") from None
    finally:
        container.close()


def is_video_file(out: str | os.PathLike) -> bool:
    """Whether ``out`` names a video file (else a sequence output is a folder of frames)."""
    return Path(out).suffix.lower() in VIDEO_EXTENSIONS


def sequence_bits(out: str | os.PathLike, bits: int | None, input_bits: int = 8) -> int:
    """The bit depth a video / frame-folder output ``out`` is written at: ``bits`` when given,
    else the input's. 16 bits go into PNG frames or a lossless FFV1 video (.mkv, .avi); other
    video files (H.264) hold 8, so a 16-bit input falls back to 8 there and an explicit
    ``bits=16`` is a one-line :class:`InputError`."""
    deep = not is_video_file(out) or Path(out).suffix.lower() in LOSSLESS_VIDEO
    if bits is None:
        return input_bits if deep else 8
    if bits not in (8, 16):
        raise InputError(f"bit depth must be 8 or 16, got {bits}")
    if bits == 16 and not deep:
        raise InputError(
            f"'{out}' is an 8-bit video; --bits 16 needs a lossless .mkv / .avi or a folder"
        )
    return bits


def check_sequence_output(
    out: str | os.PathLike, sources: Sequence[str | os.PathLike], refs: Sequence[str]
) -> None:
    """Refuse a video / frame-folder output that would touch the inputs: the output named as
    an input, or (a folder output) a folder that holds input frames, or one inside a folder
    given as input (its frames would join that input next time)."""
    target = Path(out).resolve()
    folder = not is_video_file(out)
    for ref in refs:
        p = Path(ref)
        if not p.exists():
            continue
        if p.resolve() == target:
            raise InputError(f"output '{out}' is one of the inputs; choose another name")
        if folder and p.resolve().parent == target:
            raise InputError(f"output folder '{out}' holds the input '{ref}'; choose another")
    for src in sources:
        p = Path(src)
        if folder and p.is_dir() and target.is_relative_to(p.resolve()):
            raise InputError(f"output folder '{out}' lies inside the input folder '{src}'")


class VideoWriter:
    """Lossless FFV1 (.mkv / .avi; 8 or 16 bits per sample) or high-quality 8-bit H.264
    (.mp4 / .mov, CRF 12) at the input frame rate, written to a hidden temporary file beside
    ``out`` and published at the end; or a folder of ``bits``-bit PNGs ``frame_NNNNNN.png``,
    staged in a hidden folder inside ``out`` and then published file by file. Publishing
    replaces only those names, and only with ``overwrite`` (otherwise each is created
    exclusively); nothing else in ``out`` is touched. :meth:`abort` removes the temporary file
    or staging folder (and ``out`` if this writer created it and it is still empty)."""

    def __init__(
        self,
        out: str | os.PathLike,
        fps,
        width: int,
        height: int,
        overwrite: bool = False,
        bits: int = 8,
    ) -> None:
        self.out = Path(out)
        self.overwrite = overwrite
        self.bits = sequence_bits(out, bits)
        self.count = 0
        self.container = None
        self.made_out = False
        if is_video_file(self.out):
            import av

            fd, self.tmp = tempfile.mkstemp(
                prefix=f".{self.out.stem}.", suffix=self.out.suffix, dir=self.out.parent
            )
            os.close(fd)
            try:
                self.container = av.open(self.tmp, mode="w")
                self._add_stream(fps, width, height)
            except BaseException:
                self.abort()
                raise
        else:
            self.made_out = not self.out.exists()
            self.out.mkdir(parents=True, exist_ok=True)
            self.tmp = tempfile.mkdtemp(prefix=".burstkpn-frames.", dir=self.out)

    def _add_stream(self, fps, width: int, height: int) -> None:
        lossless = self.out.suffix.lower() in LOSSLESS_VIDEO
        rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream("ffv1" if lossless else "libx264", rate=rate)
        self.stream.width, self.stream.height = width, height
        deep = "gbrp16le" if self.bits == 16 else "bgr0"
        self.stream.pix_fmt = deep if lossless else "yuv444p"
        if not lossless:
            self.stream.options = {"crf": "12"}

    def write(self, image: torch.Tensor) -> None:
        """Add ``image`` ``(C, H, W)`` in [0, 1] as the next frame, at ``bits`` bits (grayscale
        is written as RGB)."""
        arr = image.clamp(0, 1).permute(1, 2, 0).numpy()
        if arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        if self.container is None:
            name = os.path.join(self.tmp, FRAME_NAME.format(self.count))
            write_image(name, arr, bits=self.bits)
        else:
            import av

            top, dtype = (65535, np.uint16) if self.bits == 16 else (255, np.uint8)
            q = np.ascontiguousarray(np.round(arr.astype(np.float64) * top).astype(dtype))
            frame = av.VideoFrame.from_ndarray(q, format="rgb48le" if self.bits == 16 else "rgb24")
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        self.count += 1

    def close(self) -> None:
        """Finish and publish; whatever happens, nothing temporary is left."""
        try:
            if self.container is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
                self.container.close()
                self.container = None
                publish(self.tmp, self.out, overwrite=self.overwrite)
                return
            self._publish_frames()
        finally:
            self.abort()
        _warn_stale_frames(self.out, self.count)

    def _publish_frames(self) -> None:
        done = []
        try:
            for i in range(self.count):
                name = FRAME_NAME.format(i)
                publish(os.path.join(self.tmp, name), self.out / name, overwrite=self.overwrite)
                done.append(self.out / name)
        except BaseException:
            if not self.overwrite:  # created exclusively by this run: take them back
                for path in done:
                    path.unlink(missing_ok=True)
            raise

    def abort(self) -> None:
        """Remove what this writer made and did not publish (never anything else)."""
        if self.container is not None:
            self.container.close()
            self.container = None
        if os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp)
        elif os.path.exists(self.tmp):
            os.unlink(self.tmp)
        if self.made_out and not any(self.out.iterdir()):
            self.out.rmdir()


def _warn_stale_frames(out: Path, count: int) -> None:
    stale = [p.name for p in out.iterdir() if re.fullmatch(r"frame_\d{6}\.png", p.name)]
    stale = sorted(n for n in stale if int(n[6:12]) >= count)
    if stale:
        warnings.warn(
            f"{len(stale)} frame files of an earlier, longer run remain in '{out}' "
            f"({stale[0]} to {stale[-1]}); they were left as they are",
            BurstkpnWarning,
            stacklevel=2,
        )
