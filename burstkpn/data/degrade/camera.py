"""Camera-pipeline synthesis: the noise of developed (sRGB, JPEG) frames rather than raw ones.

The noise model of :mod:`burstkpn.data.degrade.noise` adds independent Gaussian noise to every
value of a linear image. That is what a raw sensor readout looks like, but a burst of JPEG frames
from a phone was developed by the camera after the noise was added on the sensor, and each stage of
that development changes the noise:

* the sensor sits behind a Bayer colour filter and records one colour per pixel, so the noise
  is drawn once per pixel on a mosaic, not three times;
* demosaicking interpolates the two missing colours of every pixel from its neighbours, which
  spreads one sample's noise over several pixels and several channels (spatially and
  cross-channel correlated noise);
* white-balance gains amplify the red and blue noise about twice;
* the colour-correction matrix from camera RGB to sRGB has large diagonal and negative
  off-diagonal entries, so it amplifies the differences between channels: chroma blotches;
* the tone curve and the sRGB gamma make the noise depend on intensity in a new way;
* sharpening lifts the high frequencies of the noise, and 8-bit quantisation and JPEG
  compression (with chroma subsampling) smear it further and clip it at black and white.

Brooks et al., "Unprocessing images for learned raw denoising" (CVPR 2019), section 3, make raw
training data from ordinary photos by inverting a simple model of such a pipeline: undo the
tone curve and the gamma, go from sRGB to camera colours with an inverse colour-correction
matrix and divide by the white-balance gains. Shot and read noise are then added where they
physically occur, in the raw mosaic. Our frames are developed images, so we run the same model
forward again after the noise (:func:`process`), and add the stages Brooks et al. leave out
because their network works on raw data: sharpening, 8-bit quantisation and JPEG.

Departures from their recipe, and why:

* The clean target is the input photo itself. With ``demosaic_signal=False`` (the default)
  only the noise goes through the mosaic and the interpolation (demosaicking is linear, so
  ``demosaic(noisy mosaic) = demosaic(clean mosaic) + demosaic(noise)``) and the signal is the
  exact unprocessed photo. The noise then has exactly the correlations demosaicking gives it,
  while the network is not asked to undo the blur and zippering of bilinear demosaicking, which
  the training photos (developed by better demosaickers) do not have. ``demosaic_signal=True``
  demosaics the whole noisy mosaic, which is what a camera does, at the price of a target that
  is sharper than the frames. Sharpening follows the same switch: the photos were sharpened by
  their camera already, so by default only the noise is sharpened again.
* Brooks et al. also draw a random overall brightness; our datasets draw their own exposure
  (``exposure_range``) before this pipeline, so there is none here.
* Their highlight-preserving inverse white balance (near-white pixels keep a raw value near
  the white level instead of being divided by the gains) is available
  (``CameraParams.preserve_highlights``) but off by default: :func:`process` cannot invert
  it, and on the embedded photos it turns about 0.5 % of the pixels, the near-white ones, up
  to 9/255 brighter or faintly magenta once developed, which the network would then learn to
  undo. Without it :func:`process` inverts :func:`unprocess` exactly for every input in
  [0, 1], and the clipping of the developed frames at white still removes most of the noise
  of saturated areas.
* The camera matrices are not measured ones: :data:`CAMERA_MATRICES` are a few made-up
  matrices of the shape real ones have (an inverse colour correction with positive entries,
  i.e. camera colours less saturated than sRGB, whose inverse has a diagonal of 1.5-2).

The tone curve is the smoothstep ``3x^2 - 2x^3`` applied to gamma-encoded values, as Brooks et
al. approximate a camera's global tone mapping; :func:`unprocess` applies its inverse first.

The Bayer stages (:func:`mosaic`, :func:`demosaic_bilinear`) live in
:mod:`burstkpn.data.degrade.bayer` and the noise line of a developed burst
(:func:`fit_noise_line`) in :mod:`burstkpn.data.degrade.noise_fit`; both are re-exported here.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from burstkpn.data.degrade.bayer import demosaic_bilinear, mosaic
from burstkpn.data.degrade.noise import add_noise
from burstkpn.data.degrade.noise_fit import NoiseFit, fit_noise_line
from burstkpn.data.io.images import linear_to_srgb, srgb_to_linear
from burstkpn.errors import InputError

__all__ = [
    "BLUE_GAIN",
    "CAMERA_MATRICES",
    "HIGHLIGHT_KNEE",
    "JPEG_QUALITY",
    "RAW_NOISE_SCALE",
    "RED_GAIN",
    "SHARPEN",
    "CameraParams",
    "Matrix3",
    "NoiseFit",
    "camera_noisy_burst",
    "camera_noisy_linear",
    "demosaic_bilinear",
    "encode_8bit",
    "fit_noise_line",
    "inverse_tone_curve",
    "mosaic",
    "process",
    "sample_camera_params",
    "tone_curve",
    "unprocess",
    "unsharp_mask",
]

Matrix3 = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]

# Inverse colour corrections (linear sRGB -> camera RGB), rows summing to 1 so that white stays
# white. Illustrative values: each camera colour is a positive mix of neighbouring sRGB
# primaries, which is how overlapping colour-filter responses desaturate raw colours.
CAMERA_MATRICES: tuple[Matrix3, ...] = (
    ((0.62, 0.30, 0.08), (0.12, 0.74, 0.14), (0.04, 0.30, 0.66)),
    ((0.70, 0.24, 0.06), (0.18, 0.66, 0.16), (0.06, 0.24, 0.70)),
    ((0.56, 0.34, 0.10), (0.14, 0.70, 0.16), (0.03, 0.37, 0.60)),
    ((0.66, 0.26, 0.08), (0.10, 0.78, 0.12), (0.05, 0.28, 0.67)),
)
# Brooks et al. section 3 draw the white-balance gains from these ranges.
RED_GAIN = (1.9, 2.4)
BLUE_GAIN = (1.5, 1.9)
JPEG_QUALITY = (70, 95)
SHARPEN = (0.0, 1.0)
# Above this grey level (camera space, linear) the inverse gains fade out (see unprocess).
HIGHLIGHT_KNEE = 0.9


@dataclass(frozen=True)
class CameraParams:
    """One camera: ``rgb2cam`` (inverse colour correction, linear sRGB -> camera RGB, rows
    summing to 1), white-balance gains of red and blue (green has gain 1), whether the
    smoothstep tone curve is applied, the unsharp-mask amount (0: none), the JPEG quality
    (``None``: 8-bit PNG-like frames, no compression), whether the signal is demosaicked too
    and whether :func:`unprocess` preserves highlights (both: see the module docstring)."""

    rgb2cam: Matrix3 = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    red_gain: float = 2.0
    blue_gain: float = 1.7
    tone_curve: bool = True
    sharpen: float = 0.0
    jpeg_quality: int | None = None
    demosaic_signal: bool = False
    preserve_highlights: bool = False

    def __post_init__(self) -> None:
        m = np.asarray(self.rgb2cam, dtype=np.float64)
        if m.shape != (3, 3) or not np.isfinite(m).all():
            raise InputError(f"rgb2cam must be a finite 3x3 matrix, got {self.rgb2cam}")
        if abs(np.linalg.det(m)) < 1e-6:
            raise InputError("rgb2cam must be invertible")
        if not (self.red_gain > 0 and self.blue_gain > 0):
            raise InputError("white-balance gains must be positive")
        if self.sharpen < 0:
            raise InputError(f"sharpen must be non-negative, got {self.sharpen}")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise InputError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")

    @property
    def gains(self) -> tuple[float, float, float]:
        return (self.red_gain, 1.0, self.blue_gain)

    def to_dict(self) -> dict:
        """Plain JSON-ready values (for a test-set manifest)."""
        d = asdict(self)
        d["rgb2cam"] = [list(row) for row in self.rgb2cam]
        return d


def _normalise_rows(m: np.ndarray) -> Matrix3:
    m = m / m.sum(axis=1, keepdims=True)
    return tuple(tuple(float(v) for v in row) for row in m)  # type: ignore[return-value]


def sample_camera_params(
    generator: torch.Generator,
    *,
    jpeg: tuple[int, int] | None = JPEG_QUALITY,
    sharpen: tuple[float, float] = SHARPEN,
    tone_curve: bool = True,
    demosaic_signal: bool = False,
    preserve_highlights: bool = False,
) -> CameraParams:
    """A random camera: a uniformly random convex mix of :data:`CAMERA_MATRICES` (rows
    renormalised), white-balance gains uniform in :data:`RED_GAIN` / :data:`BLUE_GAIN`, an
    unsharp-mask amount uniform in ``sharpen`` and a JPEG quality uniform over the integers of
    ``jpeg`` (``None``: no JPEG).

    All values are drawn every time, in one call, so the generator advances by the same amount
    whatever the options: what is drawn after this does not depend on them."""
    if jpeg is not None and not 1 <= jpeg[0] <= jpeg[1] <= 100:
        raise InputError(f"jpeg must be a quality range (lo, hi) in [1, 100], got {jpeg}")
    if not 0 <= sharpen[0] <= sharpen[1]:
        raise InputError(f"sharpen must be a range (lo, hi) with 0 <= lo <= hi, got {sharpen}")
    k = len(CAMERA_MATRICES)
    u = torch.rand(k + 4, generator=generator, dtype=torch.float64).numpy()
    # exponentials normalised to sum 1: uniform on the simplex (Dirichlet(1, ..., 1))
    w = -np.log1p(-u[:k])
    w = w / w.sum()
    mix = np.einsum("k,kij->ij", w, np.asarray(CAMERA_MATRICES, dtype=np.float64))
    red = RED_GAIN[0] + u[k] * (RED_GAIN[1] - RED_GAIN[0])
    blue = BLUE_GAIN[0] + u[k + 1] * (BLUE_GAIN[1] - BLUE_GAIN[0])
    amount = sharpen[0] + u[k + 2] * (sharpen[1] - sharpen[0])
    quality = None
    if jpeg is not None:
        quality = min(jpeg[0] + int(u[k + 3] * (jpeg[1] - jpeg[0] + 1)), jpeg[1])
    return CameraParams(
        rgb2cam=_normalise_rows(mix),
        red_gain=float(red),
        blue_gain=float(blue),
        tone_curve=tone_curve,
        sharpen=float(amount),
        jpeg_quality=quality,
        demosaic_signal=demosaic_signal,
        preserve_highlights=preserve_highlights,
    )


# --------------------------------------------------------------------------- pure stages
# White balance, colour correction and the tone curve amplify raw noise about 3x (developed
# level / raw level measured on the embedded photos): raw noise drawn from the independent-noise
# ranges or levels is scaled by this (standard deviations) so that a camera burst "at Gain 2"
# is developed to about the noise of an independent Gain 2 burst.
RAW_NOISE_SCALE = 1 / 3


def tone_curve(x: torch.Tensor) -> torch.Tensor:
    """Smoothstep ``3x^2 - 2x^3`` on [0, 1] (inputs clamped: outside it the cubic turns back)."""
    x = x.clamp(0, 1)
    return x * x * (3 - 2 * x)


def inverse_tone_curve(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`tone_curve` on [0, 1]: the root of ``3x^2 - 2x^3 = y`` in [0, 1],
    ``1/2 - sin(asin(1 - 2y) / 3)`` (the trigonometric solution of the cubic)."""
    y = y.clamp(0, 1)
    return 0.5 - torch.sin(torch.asin(1 - 2 * y) / 3)


def _apply_matrix(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``out[c] = sum_k m[c, k] x[k]`` over the channel axis of ``(..., 3, H, W)`` (a batched
    matmul: much faster than ``einsum`` or a 1x1 convolution on a CPU)."""
    *lead, c, h, w = x.shape
    return (m.to(x.dtype) @ x.reshape(-1, c, h * w)).reshape(*lead, c, h, w)


def _matrices(params: CameraParams, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    rgb2cam = torch.tensor(params.rgb2cam, dtype=torch.float64)
    cam2rgb = torch.linalg.inv(rgb2cam)
    return rgb2cam.to(device), cam2rgb.to(device)


def _gains(params: CameraParams, x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(params.gains, dtype=x.dtype, device=x.device).view(3, 1, 1)


def _check_rgb(x: torch.Tensor, what: str) -> None:
    if x.ndim < 3 or x.shape[-3] != 3:
        raise InputError(f"{what} expects colour images (..., 3, H, W), got {tuple(x.shape)}")


def unprocess(srgb: torch.Tensor, params: CameraParams) -> torch.Tensor:
    """sRGB frames ``(..., 3, H, W)`` in [0, 1] -> raw camera RGB before white balance (linear,
    same shape): inverse tone curve, inverse sRGB gamma, ``rgb2cam``, division by the gains.

    ``params.preserve_highlights`` (after Brooks et al. section 3): near-white pixels of a photo
    were at the sensor's white level, where the sensor clips, but plain division by the gains
    turns a white sky into a raw red of about 0.45 that carries noise. With the option, above a
    camera-space grey level of 0.9 the inverse gains fade quadratically towards 1, so such pixels
    stay near the white level, and the forward gains of :func:`process` push their red and blue
    past it into clipping. :func:`process` is then no exact inverse above that grey level (see
    the module docstring); without the option it is one everywhere."""
    _check_rgb(srgb, "unprocess")
    x = srgb.clamp(0, 1)
    if params.tone_curve:
        x = inverse_tone_curve(x)
    x = srgb_to_linear(x)
    rgb2cam, _ = _matrices(params, x.device)
    cam = _apply_matrix(x, rgb2cam)
    inverse = 1 / _gains(params, cam)
    if params.preserve_highlights:
        grey = cam.mean(-3, keepdim=True)
        fade = ((grey - HIGHLIGHT_KNEE).clamp_min(0) / (1 - HIGHLIGHT_KNEE)).square()
        # only gains above 1 are faded: a gain below 1 would otherwise push values past 1
        inverse = inverse + fade * (1 - inverse).clamp_min(0)
    return cam * inverse


def process(raw: torch.Tensor, params: CameraParams) -> torch.Tensor:
    """Camera linear RGB ``(..., 3, H, W)`` -> sRGB in [0, 1] (the inverse of
    :func:`unprocess`): white-balance gains, clipping at the white level, ``inv(rgb2cam)``,
    clipping, sRGB gamma, tone curve.

    Clipping right after the gains (as camera pipelines do) keeps saturated highlights white:
    a colour correction of unclipped, unequal channels would tint them."""
    _check_rgb(raw, "process")
    _, cam2rgb = _matrices(params, raw.device)
    x = (raw * _gains(params, raw)).clamp(0, 1)
    x = _apply_matrix(x, cam2rgb).clamp(0, 1)
    x = linear_to_srgb(x)
    if params.tone_curve:
        x = tone_curve(x)
    return x.clamp(0, 1)


def _box_blur(x: torch.Tensor) -> torch.Tensor:
    """3x3 mean of every plane of ``(..., H, W)``, edges repeated (separable sums of shifted
    views: three times faster than ``avg_pool2d`` on a CPU)."""
    *lead, h, w = x.shape
    p = F.pad(x.reshape(-1, 1, h, w), (1, 1, 1, 1), mode="replicate")
    rows = p[..., :, :-2] + p[..., :, 1:-1] + p[..., :, 2:]
    return ((rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]) / 9).reshape(*lead, h, w)


def unsharp_mask(x: torch.Tensor, amount: float) -> torch.Tensor:
    """``x + amount * (x - blur(x))`` with a 3x3 box blur: in-camera sharpening, which lifts
    fine detail and the high frequencies of the noise alike. Not clipped."""
    if amount == 0:
        return x
    return x + amount * (x - _box_blur(x))


def encode_8bit(srgb: torch.Tensor, jpeg_quality: int | None = None) -> torch.Tensor:
    """Round sRGB frames ``(N, 3, H, W)`` in [0, 1] to 8 bits and, with a quality, through an
    in-memory JPEG file per frame (Pillow, its default 4:2:0 chroma subsampling, as most
    cameras write); back as float [0, 1]."""
    codes = torch.round(srgb.clamp(0, 1) * 255).to(torch.uint8)
    if jpeg_quality is None:
        return codes.to(srgb.dtype) / 255
    from PIL import Image

    frames = []
    for frame in codes.permute(0, 2, 3, 1).cpu().numpy():
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=int(jpeg_quality))
        buf.seek(0)
        with Image.open(buf) as im:
            frames.append(np.asarray(im.convert("RGB")))
    out = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
    return out.to(device=srgb.device, dtype=srgb.dtype) / 255


def camera_noisy_burst(
    clean_linear: torch.Tensor,
    sigma_r: float | torch.Tensor,
    sigma_s: float | torch.Tensor,
    generator: torch.Generator,
    params: CameraParams,
    *,
    linear: bool = False,
) -> torch.Tensor:
    """A clean linear burst ``(N, 3, H, W)`` (values in [0, 1]; clamped) -> noisy developed sRGB
    frames ``(N, 3, H, W)`` in [0, 1], 8-bit values (and JPEG with ``params.jpeg_quality``);
    with ``linear``, those frames linearised (``srgb_to_linear``), as the rest of the package
    takes them (:data:`camera_noisy_linear`).

    Steps: sRGB encoding, :func:`unprocess`, RGGB :func:`mosaic`, shot and read noise
    ``N(0, sigma_r^2 + sigma_s * y)`` drawn on the mosaic (y the raw value, where the sensor
    counts photons), :func:`demosaic_bilinear` (of the noise alone unless
    ``params.demosaic_signal``; see the module docstring), :func:`process`, sharpening, 8 bits,
    JPEG. Every frame gets its own noise, all share ``params``; all frames are done at once."""
    if clean_linear.ndim != 4:
        raise InputError(f"expected a burst (N, 3, H, W), got shape {tuple(clean_linear.shape)}")
    _check_rgb(clean_linear, "camera_noisy_burst")
    srgb = linear_to_srgb(clean_linear.clamp(0, 1))
    raw = unprocess(srgb, params)
    clean_mosaic = mosaic(raw)
    noisy_mosaic = add_noise(clean_mosaic, float(sigma_r), float(sigma_s), generator)
    if params.demosaic_signal:
        noisy_raw = demosaic_bilinear(noisy_mosaic)
    else:
        noisy_raw = raw + demosaic_bilinear(noisy_mosaic - clean_mosaic)
    developed = process(noisy_raw, params)
    if params.sharpen > 0:
        if params.demosaic_signal:
            developed = unsharp_mask(developed, params.sharpen)
        else:
            # The photo was sharpened by its own camera: sharpen the noise only (the clean
            # developed frame is the photo itself, up to highlights with preserve_highlights)
            developed = srgb + unsharp_mask(developed - srgb, params.sharpen)
    frames = encode_8bit(developed, params.jpeg_quality)
    return srgb_to_linear(frames) if linear else frames


# :func:`camera_noisy_burst` in linear light: the noisy burst ``(N, 3, H, W)`` as the datasets
# and test sets take it (values in [0, 1])
camera_noisy_linear = partial(camera_noisy_burst, linear=True)
