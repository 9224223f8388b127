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
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from burstkpn.data.degrade.estimate import nonnegative_line
from burstkpn.data.degrade.noise import add_noise
from burstkpn.data.io.images import linear_to_srgb, srgb_to_linear
from burstkpn.errors import InputError

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


def mosaic(rgb: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W)`` -> ``(..., 1, H, W)``: the one colour an RGGB sensor records per
    pixel (red at even rows and columns, blue at odd ones, green elsewhere)."""
    if rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise InputError(f"mosaic expects (..., 3, H, W), got shape {tuple(rgb.shape)}")
    out = rgb[..., 1:2, :, :].clone()
    out[..., 0::2, 0::2] = rgb[..., 0:1, 0::2, 0::2]
    out[..., 1::2, 1::2] = rgb[..., 2:3, 1::2, 1::2]
    return out


def _next(p: torch.Tensor, dim: int) -> torch.Tensor:
    """``p`` shifted so that index i holds i + 1 along ``dim``; the last entry repeats."""
    return torch.cat([p.narrow(dim, 1, p.shape[dim] - 1), p.narrow(dim, p.shape[dim] - 1, 1)], dim)


def _prev(p: torch.Tensor, dim: int) -> torch.Tensor:
    """``p`` shifted so that index i holds i - 1 along ``dim``; the first entry repeats."""
    return torch.cat([p.narrow(dim, 0, 1), p.narrow(dim, 0, p.shape[dim] - 1)], dim)


def demosaic_bilinear(raw: torch.Tensor) -> torch.Tensor:
    """``(..., 1, H, W)`` RGGB mosaic -> ``(..., 3, H, W)`` by bilinear interpolation: every
    missing colour is the mean of its 2 or 4 nearest samples of that colour (green: the 4 direct
    neighbours; red and blue: 2 neighbours in line or 4 diagonal ones).

    Computed on the four sample lattices (R, G at even rows, G at odd rows, B; each H/2 x W/2)
    with shifts instead of a depthwise ``conv2d`` of the masked mosaic, which gives the same
    interior values and is about 8x faster on a CPU. At the border each lattice is extended by
    repeating its edge samples, so a constant image comes back exactly everywhere. An odd
    height or width is extended by one row or column copied from two before (the same colours)
    and cropped again."""
    if raw.ndim < 3 or raw.shape[-3] != 1:
        raise InputError(f"demosaic expects (..., 1, H, W), got shape {tuple(raw.shape)}")
    *lead, _, h, w = raw.shape
    if h < 2 or w < 2:
        raise InputError(f"a Bayer mosaic needs at least 2x2 pixels, got {w}x{h}")
    x = raw.reshape(-1, h, w)
    if h % 2:
        x = torch.cat([x, x[:, -2:-1]], 1)
    if w % 2:
        x = torch.cat([x, x[:, :, -2:-1]], 2)
    red, g_even, g_odd, blue = (
        x[:, 0::2, 0::2],
        x[:, 0::2, 1::2],
        x[:, 1::2, 0::2],
        x[:, 1::2, 1::2],
    )
    rows, cols = 1, 2
    # out[c][(i, j)]: channel c at the pixels of row parity i and column parity j
    r01 = (red + _next(red, cols)) / 2
    r10 = (red + _next(red, rows)) / 2
    r11 = (r01 + _next(r01, rows)) / 2
    b10 = (blue + _prev(blue, cols)) / 2
    b01 = (blue + _prev(blue, rows)) / 2
    b00 = (b10 + _prev(b10, rows)) / 2
    g00 = (g_even + _prev(g_even, cols) + g_odd + _prev(g_odd, rows)) / 4
    g11 = (g_odd + _next(g_odd, cols) + g_even + _next(g_even, rows)) / 4
    out = x.new_empty(x.shape[0], 3, x.shape[1], x.shape[2])
    for c, phases in enumerate(
        ((red, r01, r10, r11), (g00, g_even, g_odd, g11), (b00, b01, b10, blue))
    ):
        for (i, j), plane in zip(((0, 0), (0, 1), (1, 0), (1, 1)), phases, strict=True):
            out[:, c, i::2, j::2] = plane
    return out[..., :h, :w].reshape(*lead, 3, h, w)


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
) -> torch.Tensor:
    """A clean linear burst ``(N, 3, H, W)`` (values in [0, 1]; clamped) -> noisy developed sRGB
    frames ``(N, 3, H, W)`` in [0, 1], 8-bit values (and JPEG with ``params.jpeg_quality``).

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
    return encode_8bit(developed, params.jpeg_quality)


# --------------------------------------------------------------------------- noise line
@dataclass(frozen=True)
class NoiseFit:
    """Noise variance ``a + b * x`` of a burst against its clean linear intensity x: per
    channel (``a``, ``b`` of shape ``(C,)``) and for all channels pooled."""

    a: np.ndarray
    b: np.ndarray
    a_pooled: float
    b_pooled: float

    @property
    def sigma_r(self) -> float:
        """The pooled fit in the terms of :mod:`burstkpn.data.degrade.noise`: ``sqrt(a)``."""
        return math.sqrt(self.a_pooled)

    @property
    def sigma_s(self) -> float:
        return self.b_pooled

    def noise_map(self, noisy: torch.Tensor) -> torch.Tensor:
        """``sqrt(a + b * max(x, 0))`` per channel of a noisy linear image ``(C, H, W)`` (the
        per-channel analogue of eq. 1 of [AME-KPN])."""
        a = torch.as_tensor(self.a, dtype=noisy.dtype, device=noisy.device).view(-1, 1, 1)
        b = torch.as_tensor(self.b, dtype=noisy.dtype, device=noisy.device).view(-1, 1, 1)
        return (a + b * noisy.clamp_min(0)).sqrt()


def _line_from_bins(
    x: np.ndarray, y: np.ndarray, n: np.ndarray, iterations: int = 3
) -> tuple[float, float]:
    """Weighted least-squares line ``y = a + b x`` through bin means ``(x, y)`` of ``n``
    squared residuals each, constrained to ``a, b >= 0``. A mean of n squared Gaussian residuals
    of variance v has variance ``2 v^2 / n``, so the weights are ``n / v^2`` with v from the
    previous iteration (first: the observed means)."""
    if x.size == 0:
        return 0.0, 0.0
    v = np.maximum(y, 1e-12)
    a = b = 0.0
    for _ in range(iterations):
        a, b = nonnegative_line(x, y, n / np.square(v))
        v = np.maximum(a + b * x, 1e-12)
    return a, b


def _bin_statistics(
    x: torch.Tensor, r2: torch.Tensor, bins: int, edge: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, sum of x and sum of r2 per channel and intensity bin, ``(C, bins)`` each (float64),
    from clean values ``x`` and squared errors ``r2`` of shape ``(C, P)``; values within
    ``edge`` of 0 or 1 go to a discarded extra bin. One ``bincount`` pass per statistic for all
    channels, in float32 with int32 indices (conversions to float64 / int64 cost more than the
    rest of the fit on a CPU; float32 sums of 1e6 values are good to 1e-4)."""
    c = x.shape[0]
    idx = (x * bins).clamp_(0, bins - 1).floor_()
    idx += bins * torch.arange(c, dtype=idx.dtype, device=x.device)[:, None]
    idx.masked_fill_((x <= edge) | (x >= 1 - edge), c * bins)
    idx = idx.flatten().int()

    def count(weights: torch.Tensor | None) -> np.ndarray:
        w = None if weights is None else weights.flatten()
        out = torch.bincount(idx, weights=w, minlength=c * bins + 1)
        return out[:-1].view(c, bins).cpu().numpy().astype(np.float64)

    return count(None), count(x), count(r2)


def _fit_bins(n: np.ndarray, sx: np.ndarray, sy: np.ndarray, margin: float) -> tuple[float, float]:
    """The noise line through one set of intensity bins (see :func:`fit_noise_line`)."""
    used = n > 0
    if not used.any():
        return 0.0, 0.0
    n, x, y = n[used], sx[used] / n[used], sy[used] / n[used]
    a, b = _line_from_bins(x, y, n)
    # Developed frames are clipped at black and white: where the clean value lies within a few
    # noise deviations of 0 or 1, part of the noise was clipped away and the squared error
    # underestimates the variance. Drop those bins with the current fit and refit.
    for _ in range(2):
        s = np.sqrt(np.maximum(a + b * x, 0))
        inner = (x > margin * s) & (x < 1 - margin * s)
        if inner.sum() < 2:
            break
        a, b = _line_from_bins(x[inner], y[inner], n[inner])
    return a, b


def fit_noise_line(
    clean_linear: torch.Tensor,
    noisy_linear: torch.Tensor,
    *,
    bins: int = 128,
    margin: float = 3.0,
    edge: float = 1e-3,
) -> NoiseFit:
    """Least-squares line ``(noisy - clean)^2 = a + b * clean`` of bursts or images
    ``(..., C, H, W)`` in linear light, per channel and pooled; ``a, b >= 0``.

    For a camera burst, ``noisy`` is the developed frames linearised (``srgb_to_linear``) and
    ``clean`` the linear photo; the line is then the shot / read model that best describes the
    noise as it reaches the network, i.e. what a burst noise estimator should find and what the
    noise map of such a burst is made of (``sigma_r = sqrt(a)``, ``sigma_s = b``).

    The squared errors are averaged in ``bins`` equal intensity bins and the line is fitted
    through the bin means by weighted least squares (:func:`_line_from_bins`). Clean values
    within ``edge`` of 0 or 1 are left out, and then the bins within ``margin`` fitted noise
    deviations of them, because clipping at black and white shrinks their errors."""
    if clean_linear.shape != noisy_linear.shape or clean_linear.ndim < 3:
        raise InputError(
            f"clean {tuple(clean_linear.shape)} and noisy {tuple(noisy_linear.shape)} must be "
            "images or bursts (..., C, H, W) of one shape"
        )
    c = clean_linear.shape[-3]
    clean = clean_linear.detach().float()
    x = clean.movedim(-3, 0).reshape(c, -1)
    r2 = (noisy_linear.detach().float() - clean).square_().movedim(-3, 0).reshape(c, -1)
    n, sx, sy = _bin_statistics(x, r2, bins, edge)
    per = [_fit_bins(n[k], sx[k], sy[k], margin) for k in range(c)]
    a_pooled, b_pooled = _fit_bins(n.sum(0), sx.sum(0), sy.sum(0), margin)
    return NoiseFit(
        a=np.array([p[0] for p in per]),
        b=np.array([p[1] for p in per]),
        a_pooled=a_pooled,
        b_pooled=b_pooled,
    )


def camera_noisy_linear(
    clean_linear: torch.Tensor,
    sigma_r: float | torch.Tensor,
    sigma_s: float | torch.Tensor,
    generator: torch.Generator,
    params: CameraParams,
) -> torch.Tensor:
    """:func:`camera_noisy_burst` linearised: the noisy burst in linear light, as the rest of
    the package takes it (``(N, 3, H, W)``, values in [0, 1])."""
    return srgb_to_linear(camera_noisy_burst(clean_linear, sigma_r, sigma_s, generator, params))
