"""Synthetic bursts from clean photos, as [AME-KPN] section 3.1 describes (after Mildenhall
et al.).

Recipe ("full" mode), all in linear light:

1. a reference window of ``4P x 4P`` pixels is cut from the clean image (P = output patch size);
2. per burst, ``n ~ Poisson(1.5)``; each neighbour frame i = 1..N-1 is, with probability
   ``min(n / N, 1)``, offset by an integer ``(dy, dx)`` drawn uniformly from [-64, 64]^2, and
   otherwise from [-8, 8]^2 (full-resolution pixels); frame 0 (the reference) is not offset;
3. every frame is box-downsampled 4x (this also averages away compression artefacts), so the
   offsets become multiples of 1/4 output pixel;
4. the noise of :mod:`burstkpn.data.degrade.noise` is added to every frame independently.

"subpixel" mode, for images too small for a ``4P + 128`` window (CBSD68, most embedded photos):
the image is used at its own resolution, and frame i is the reference window shifted by the
equivalent output-resolution offset ``(dy, dx) / 4`` (multiples of 1/4 pixel), resampled with
cubic B-splines (``scipy.ndimage.shift``, order 3). In full mode every frame is an equally sharp
box-filtered phase of the image; a high-order interpolator keeps the shifted frames as sharp as
the reference too (bilinear interpolation would blur every neighbour by up to [1/2, 1/2] and
make the burst inconsistent). Integer offsets (multiples of 4) are exact crops, which the tests
check, as they check that quarter-pixel shifts of a band-limited image are exact to 1e-3.
"auto" picks "full" when the image is large enough, else "subpixel".

Offsets are stored as ``(dy, dx)`` in full-resolution pixels: frame i at output pixel p shows the
reference scene at ``p + (dy, dx) / 4``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from burstkpn.data.degrade.noise import (
    NoiseLevel,
    add_noise,
    estimate_noise_map,
    parse_noise,
    sample_noise_params,
)
from burstkpn.errors import InputError

MODES = ("auto", "full", "subpixel")
SPLINE_MARGIN = 8  # context for the cubic-spline prefilter (its influence decays as 0.27^k)


@dataclass(frozen=True)
class MotionConfig:
    """Parameters of the misalignment model ([AME-KPN] section 3.1)."""

    max_small: int = 8
    max_large: int = 64
    poisson_lambda: float = 1.5
    downsample: int = 4
    # local motion (ours, not the paper's): the probability that a neighbour shows a moving
    # object, a rectangle of 1/8 to 1/2 of the patch side holding the frame's own content from
    # another place of the patch (what a global alignment leaves: most pixels in register, a
    # region not); 0: off, and the random stream is that of the paper's recipe
    local_prob: float = 0.0
    # static bursts (ours): the probability that a burst has no global motion at all, every
    # neighbour at offset zero (a tripod, or a burst aligned exactly); the paper's offsets leave
    # no burst static, so a model never learns to average such frames plainly
    # (docs/benchmarks.md, "How the models weigh the frames"); 0: off, nothing drawn
    static_prob: float = 0.0


DEFAULT_MOTION = MotionConfig()
# What a global alignment by whole pixels leaves (models that declare ``prealign``): every
# neighbour within half an output pixel (2 full-resolution px before the 4x box), the large
# offsets kept, as the motion such an alignment cannot fix (local motion, a failed estimate)
ALIGNED_MOTION = MotionConfig(max_small=2)


@dataclass
class BurstGeometry:
    """Where a burst is cut from its image: resolved mode, top-left corner of the reference
    window (in image pixels), output patch size, and per-frame offsets."""

    mode: str
    top: int
    left: int
    patch_size: int
    downsample: int
    offsets: torch.Tensor  # (N, 2) int64, (dy, dx) in full-resolution pixels; row 0 is zero
    large: torch.Tensor  # (N,) bool, whether frame i drew from the large-motion range
    # (N, 6) int64 per frame, in output pixels: top, left, height, width of a moving object's
    # rectangle and the top, left its content comes from (height 0: none); None: no local motion
    local: torch.Tensor | None = None

    @property
    def offsets_px(self) -> torch.Tensor:
        """Offsets in output pixels, ``(N, 2)`` float (``offsets / downsample``)."""
        return self.offsets.to(torch.float64) / self.downsample

    def to_dict(self) -> dict:
        d = asdict(self)
        d["offsets"] = self.offsets.tolist()
        d["large"] = self.large.tolist()
        d["local"] = None if self.local is None else self.local.tolist()
        return d


@dataclass
class Burst:
    """A synthetic burst. ``noisy`` ``(B, N, C, H, W)``, ``noise_map`` and ``clean``
    ``(B, C, H, W)`` (the clean reference frame), ``sigma_r`` / ``sigma_s`` ``(B,)``; all in
    linear light. ``geometry`` describes each burst of the batch."""

    noisy: torch.Tensor
    noise_map: torch.Tensor
    clean: torch.Tensor
    sigma_r: torch.Tensor
    sigma_s: torch.Tensor
    geometry: list[BurstGeometry]


def required_size(mode: str, patch_size: int, motion: MotionConfig = DEFAULT_MOTION) -> int:
    """Smallest image side that fits a burst of output size ``patch_size`` in ``mode``."""
    if mode == "full":
        return patch_size * motion.downsample + 2 * motion.max_large
    if mode == "subpixel":
        # the spline shift reads SPLINE_MARGIN pixels of context around the shifted window
        return patch_size + 2 * (math.ceil(motion.max_large / motion.downsample) + SPLINE_MARGIN)
    raise InputError(f"unknown synthesis mode '{mode}' (use one of {', '.join(MODES)})")


def resolve_mode(
    height: int,
    width: int,
    patch_size: int,
    mode: str = "auto",
    motion: MotionConfig = DEFAULT_MOTION,
) -> str:
    """The synthesis mode to use for an image of this size, or a clear error if it is too small."""
    if mode not in MODES:
        raise InputError(f"unknown synthesis mode '{mode}' (use one of {', '.join(MODES)})")
    side = min(height, width)
    if mode in ("auto", "full") and side >= required_size("full", patch_size, motion):
        return "full"
    if mode == "full":
        raise InputError(
            f"image of {width}x{height} px is too small for a full-resolution burst of patch "
            f"{patch_size}: needs at least {required_size('full', patch_size, motion)} px per "
            "side (use mode 'subpixel' or a smaller patch)"
        )
    need = required_size("subpixel", patch_size, motion)
    if side >= need:
        return "subpixel"
    raise InputError(
        f"image of {width}x{height} px is smaller than the patch: a burst of {patch_size} px "
        f"with motion needs at least {need} px per side"
    )


def sample_offsets(
    num_frames: int, generator: torch.Generator, motion: MotionConfig = DEFAULT_MOTION
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame integer offsets ``(N, 2)`` (full-resolution pixels) and the large-motion flags
    ``(N,)``. One ``n ~ Poisson(lambda)`` per burst; each neighbour is large-motion with
    probability ``min(n / N, 1)`` ([AME-KPN] section 3.1). Frame 0 has offset zero. With
    ``motion.static_prob`` > 0 one more draw makes the whole burst static with that
    probability (after the others, so the offsets of a moving burst do not change)."""
    if num_frames < 1:
        raise InputError(f"a burst needs at least one frame, got {num_frames}")
    m = num_frames - 1
    n = torch.poisson(torch.tensor([motion.poisson_lambda], dtype=torch.float64), generator)
    p_large = min(float(n.item()) / num_frames, 1.0)
    # always draw both ranges so the random stream does not depend on the outcome
    is_large = torch.rand(m, generator=generator, dtype=torch.float64) < p_large
    small = torch.randint(-motion.max_small, motion.max_small + 1, (m, 2), generator=generator)
    large = torch.randint(-motion.max_large, motion.max_large + 1, (m, 2), generator=generator)
    offsets = torch.where(is_large[:, None], large, small)
    if motion.static_prob > 0 and float(torch.rand(1, generator=generator)) < motion.static_prob:
        offsets, is_large = torch.zeros_like(offsets), torch.zeros_like(is_large)
    zero = torch.zeros(1, 2, dtype=torch.int64)
    return torch.cat([zero, offsets]), torch.cat([torch.zeros(1, dtype=torch.bool), is_large])


def sample_geometry(
    height: int,
    width: int,
    generator: torch.Generator,
    *,
    num_frames: int = 8,
    patch_size: int = 128,
    mode: str = "auto",
    motion: MotionConfig = DEFAULT_MOTION,
) -> BurstGeometry:
    """Resolve the mode, draw the offsets and a uniformly random reference window position that
    keeps every possible offset inside the image."""
    mode = resolve_mode(height, width, patch_size, mode, motion)
    offsets, large = sample_offsets(num_frames, generator, motion)
    if mode == "full":
        margin, size = motion.max_large, patch_size * motion.downsample
    else:  # the spline shift reads SPLINE_MARGIN pixels of context beyond the window
        margin = math.ceil(motion.max_large / motion.downsample) + SPLINE_MARGIN
        size = patch_size
    top = int(torch.randint(margin, height - size - margin + 1, (1,), generator=generator))
    left = int(torch.randint(margin, width - size - margin + 1, (1,), generator=generator))
    ds = motion.downsample
    local = sample_local_motion(num_frames, patch_size, generator, motion.local_prob)
    return BurstGeometry(mode, top, left, patch_size, ds, offsets, large, local)


def sample_local_motion(
    num_frames: int, patch_size: int, generator: torch.Generator, prob: float
) -> torch.Tensor | None:
    """The moving objects of a burst, ``(N, 6)`` rows of :attr:`BurstGeometry.local`: each
    neighbour has one with probability ``prob``, a rectangle with sides drawn uniformly from
    ``[P / 8, P / 2]`` at a uniform position, filled from another uniform position of the same
    frame. ``None`` when ``prob`` is 0 (nothing drawn). Every value is drawn whatever the
    outcome, so the stream after it depends on ``prob > 0`` only."""
    if prob <= 0:
        return None
    m, p = num_frames - 1, patch_size
    lo, hi = max(p // 8, 1), max(p // 2, 1)
    use = torch.rand(m, generator=generator, dtype=torch.float64) < prob
    size = torch.randint(lo, hi + 1, (m, 2), generator=generator)
    u = torch.rand(m, 4, generator=generator, dtype=torch.float64)
    room = (p - size).repeat(1, 2).to(torch.float64)  # top, left, src top, src left
    corners = (u * (room + 1)).floor().to(torch.int64).clamp(min=0)
    rows = torch.cat([corners[:, :2], size, corners[:, 2:]], dim=1)
    rows[~use] = 0
    return torch.cat([torch.zeros(1, 6, dtype=torch.int64), rows])


def _spline_crop(img: torch.Tensor, y: float, x: float, h: int, w: int) -> torch.Tensor:
    """``img[:, y:y+h, x:x+w]`` for fractional ``(y, x)``, by cubic B-spline interpolation of a
    window with :data:`SPLINE_MARGIN` pixels of context."""
    from scipy.ndimage import shift as nd_shift

    y0, x0 = math.floor(y), math.floor(x)
    fy, fx = y - y0, x - x0
    m = SPLINE_MARGIN
    if y0 - m < 0 or x0 - m < 0 or y0 + h + m > img.shape[-2] or x0 + w + m > img.shape[-1]:
        raise InputError("burst window falls outside the image")
    if fy == 0 and fx == 0:
        return img[:, y0 : y0 + h, x0 : x0 + w].clone()
    win = img[:, y0 - m : y0 + h + m, x0 - m : x0 + w + m].double().numpy()
    out = [nd_shift(p, (-fy, -fx), order=3, mode="mirror")[m : m + h, m : m + w] for p in win]
    return torch.from_numpy(np.stack(out)).to(img.dtype)


def band_limit(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """A linear image ``(C, H, W)`` blurred by a Gaussian of ``sigma`` px (``torchvision``'s
    ``gaussian_blur``, reflected borders, kernel to 3 sigma): an optical point-spread function
    before the full mode's box downsampling. Without it the 4x box of a sharp photo aliases, so
    frames cut at quarter-pixel offsets are not translates of the reference: moved back onto it
    by cubic splines, Urban100 regions still differ by 13 % (RMS over the mean) at no noise, more
    than the noise at Gain 1; sigma 2 leaves 2.4 %, sigma 3 0.6 % (training/README.md,
    "Candidate g"). A camera's lens and demosaicking band-limit its frames in the same way."""
    from torchvision.transforms.v2.functional import gaussian_blur

    if sigma <= 0:
        return image
    size = 2 * math.ceil(3 * sigma) + 1
    return gaussian_blur(image, [size, size], [sigma, sigma])


def crop_burst(image: torch.Tensor, geometry: BurstGeometry) -> torch.Tensor:
    """Cut the clean burst ``(N, C, P, P)`` described by ``geometry`` from a linear image
    ``(C, H, W)`` (steps 1-3 of the recipe). Frame 0 is the clean reference target."""
    g, p = geometry, geometry.patch_size
    frames = []
    for dy, dx in g.offsets.tolist():
        if g.mode == "full":
            size = p * g.downsample
            y, x = g.top + dy, g.left + dx
            if y < 0 or x < 0 or y + size > image.shape[-2] or x + size > image.shape[-1]:
                raise InputError("burst window falls outside the image")
            window = image[:, y : y + size, x : x + size]
            frames.append(F.avg_pool2d(window[None], g.downsample)[0])
        else:
            y, x = g.top + dy / g.downsample, g.left + dx / g.downsample
            frames.append(_spline_crop(image, y, x, p, p))
    if g.local is not None:  # moving objects, pasted after the crop (output pixels)
        for frame, (t, left, h, w, st, sl) in zip(frames, g.local.tolist(), strict=True):
            if h > 0 and w > 0:
                frame[:, t : t + h, left : left + w] = frame[:, st : st + h, sl : sl + w].clone()
    return torch.stack(frames)


def synthesize_burst(
    image: torch.Tensor,
    generator: torch.Generator,
    *,
    num_frames: int = 8,
    patch_size: int = 128,
    noise: NoiseLevel | str | tuple[float, float] | None = None,
    mode: str = "auto",
    motion: MotionConfig = DEFAULT_MOTION,
    log_uniform: bool = True,
) -> Burst:
    """One synthetic burst (batch of 1) from a clean linear image ``(C, H, W)``.

    ``noise``: a named level / ``NoiseLevel`` / ``(sigma_r, sigma_s)``, or ``None`` to draw
    from the training ranges (see :func:`sample_noise_params`). The random stream is consumed
    in a fixed order (offsets, position, noise parameters, noise), so one seed gives one burst.
    """
    if image.ndim != 3:
        raise InputError(f"expected an image (C, H, W), got shape {tuple(image.shape)}")
    geometry = sample_geometry(
        image.shape[-2],
        image.shape[-1],
        generator,
        num_frames=num_frames,
        patch_size=patch_size,
        mode=mode,
        motion=motion,
    )
    clean_burst = crop_burst(image, geometry)[None]  # (1, N, C, P, P)
    if noise is None:
        sigma_r, sigma_s = sample_noise_params(1, generator, log_uniform=log_uniform)
    else:
        level = parse_noise(noise) if not isinstance(noise, tuple) else NoiseLevel("user", *noise)
        sigma_r = torch.tensor([level.sigma_r], dtype=torch.float32)
        sigma_s = torch.tensor([level.sigma_s], dtype=torch.float32)
    noisy = add_noise(clean_burst, sigma_r, sigma_s, generator)
    noise_map = estimate_noise_map(noisy[:, 0], sigma_r, sigma_s)
    return Burst(noisy, noise_map, clean_burst[:, 0], sigma_r, sigma_s, [geometry])
