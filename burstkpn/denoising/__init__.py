"""The main job: denoise a real burst of photos, a video or a folder of video frames with a
shipped (or any) model.

``denoise(frames, model="ame_kpn", noise="auto")`` (:mod:`.burst`) takes image files / a folder /
an array stack, works in linear light (inputs are sRGB-encoded unless ``linear=True``), estimates
the noise unless it is given, pre-aligns the frames globally when they moved more than the
kernels reach, runs the model tile by tile in bounded memory and returns the image encoded back.
:func:`denoise_video` and :func:`denoise_frames` (:mod:`.video`) do the same for every frame of
a video, with the window of frames around it; :mod:`.video_io` reads and writes the videos and
frame folders.

Burst length: the models are built for 8 frames. Longer bursts use the reference and the 7
frames after it; shorter ones (at least 2 frames) repeat their frames cyclically to fill 8
slots (a repeated frame adds no information but keeps the input distribution the model knows).

Clip models (``deform3d``, :func:`burstkpn.restoration.is_video_model`) read the frames as a
video in temporal order: the reference and its ``tau`` neighbours on each side
(:func:`burstkpn.models.deformable.video_window`, mirrored at the ends), centre first. They
sample across motion themselves, so ``align="auto"`` shifts frames only when the global motion
exceeds their offset limit (``max_offset``, 8 px), not the 2 px of rigid 5x5 kernels.
"""

from burstkpn.denoising.burst import (
    ALIGN_THRESHOLD,
    DenoiseResult,
    check_frame_sizes,
    check_tile,
    denoise,
    denoise_burst,
    load_frames,
)
from burstkpn.denoising.video import (
    _denoise_sequence,  # noqa: F401  # called through the package, where a test may replace it
    denoise_frames,
    denoise_video,
)
from burstkpn.denoising.video_io import (
    FRAME_NAME,
    LOSSLESS_VIDEO,
    VIDEO_EXTENSIONS,
    VideoWriter,
    check_sequence_output,
    is_video_file,
    iter_video,
    sequence_bits,
    video_bits,
)

__all__ = [
    "ALIGN_THRESHOLD",
    "FRAME_NAME",
    "LOSSLESS_VIDEO",
    "VIDEO_EXTENSIONS",
    "DenoiseResult",
    "VideoWriter",
    "check_frame_sizes",
    "check_sequence_output",
    "check_tile",
    "denoise",
    "denoise_burst",
    "denoise_frames",
    "denoise_video",
    "is_video_file",
    "iter_video",
    "load_frames",
    "sequence_bits",
    "video_bits",
]
