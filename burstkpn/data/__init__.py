"""Data layer: image I/O and sRGB (images), the noise model (noise), burst synthesis (synth),
training datasets (datasets) and the fixed benchmark test set (testset)."""

from burstkpn.data.images import (
    EMBEDDED_IMAGES,
    image_to_tensor,
    linear_to_srgb,
    list_images,
    read_image,
    srgb_to_linear,
    write_image,
)
from burstkpn.data.noise import (
    NOISE_LEVELS,
    NoiseLevel,
    add_noise,
    estimate_noise_map,
    parse_noise,
    sample_noise_params,
)
from burstkpn.data.synth import Burst, crop_burst, sample_offsets, synthesize_burst

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
