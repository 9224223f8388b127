"""Data layer, imports flowing one way: file I/O (``io``: atomic writes, images and sRGB, camera
raw, pair and clip folders) <- degradations (``degrade``: noise model and estimation, burst,
camera-pipeline and clip synthesis, motion blur) <- training datasets (``datasets``, on one
seeded-epoch base class) and benchmark test sets (``testsets``, on one manifest base class);
``sampling`` holds the seeds and channel helpers the last two share. The names below are the
most used ones."""

from burstkpn.data.degrade.noise import (
    NOISE_LEVELS,
    NoiseLevel,
    add_noise,
    estimate_noise_map,
    parse_noise,
    sample_noise_params,
)
from burstkpn.data.degrade.synth import Burst, crop_burst, sample_offsets, synthesize_burst
from burstkpn.data.io.images import (
    EMBEDDED_IMAGES,
    image_to_tensor,
    linear_to_srgb,
    list_images,
    read_image,
    srgb_to_linear,
    write_image,
)

__all__ = [
    "EMBEDDED_IMAGES",
    "NOISE_LEVELS",
    "Burst",
    "NoiseLevel",
    "add_noise",
    "crop_burst",
    "estimate_noise_map",
    "image_to_tensor",
    "linear_to_srgb",
    "list_images",
    "parse_noise",
    "read_image",
    "sample_noise_params",
    "sample_offsets",
    "srgb_to_linear",
    "synthesize_burst",
    "write_image",
]
