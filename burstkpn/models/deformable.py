"""Deformable kernels for image and video denoising ([DeformKernels]): ``deform2d`` (one
image, a 5x5 deformable kernel per pixel) and ``deform3d`` (a clip of ``2 tau + 1`` frames, a
3x3x3 deformable space-time kernel per pixel).

Data flow (Fig. 3): the offset network (a U-Net with summed skips, Table 1 / Fig. 4(b)) reads the
noisy frame(s) and, unless ``blind``, the noise map, and predicts the offsets ``V`` of every tap
(``tanh``, scaled to ``max_offset`` pixels and, in 3D, ``tau`` frames); the taps are sampled
from the noisy input at the rigid grid plus ``V`` (bilinearly, eq. 3-4, or trilinearly, eq. 7;
:mod:`burstkpn.ops.deform`); three conv layers predict the dynamic weights ``F`` from the
sampled pixels, the input and the offset network's last features; the output is
``Y = sum_n X(sampled at n) F(n)`` (eq. 1 / 6). For the 3D model the taps are also split into
``s`` groups whose predictions ``Y_i`` (eq. 10) are returned as ``frames`` for the
group-annealed regulariser of eq. (11) (:func:`burstkpn.losses.group_annealed_loss`).

Frame convention. The package's bursts have the reference at frame 0, and so do these models'
inputs: ``deform2d`` uses frame 0 of any burst; ``deform3d`` takes exactly ``2 tau + 1`` frames
ordered ``[X_0, X_-tau, ..., X_-1, X_1, ..., X_tau]`` (reference first, then its neighbours in
temporal order) and rearranges them internally into the clip ``[X_-tau, ..., X_tau]``
(:func:`burst_to_clip`), so the paper's time axis (eq. 6-7, reference at ``t = 0``) is the real
one and trilinear sampling blends temporally adjacent frames. :func:`video_window` gives the
frame indices of such a burst for frame ``t`` of a video. Colour: R, G and B go through the same
network independently (channels folded into the batch; the paper's appendix B).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from burstkpn.errors import InputError
from burstkpn.models.blocks import conv_block
from burstkpn.models.kpn import (
    DenoiseOutput,
    fold_channels,
    pad_to_multiple,
    unfold_channels,
)
from burstkpn.models.traits import ModelTraits
from burstkpn.ops.deform import (
    BACKENDS,
    base_grid,
    deform_sample,
    group_filter,
    sampling_positions,
)

__all__ = [
    "SIZES",
    "DeformableKernelNet",
    "OffsetNet",
    "burst_to_clip",
    "clip_to_burst",
    "deform2d",
    "deform3d",
    "video_window",
]

# Table 1: offset network C1-15 (encoder + bottleneck, 3 convs per level), C16-24 (decoder
# 512-256-128), C25-26 (128, full resolution), C27 (the offsets); conv layers C1-2 64, C3 N.
# "cpu" halves the widths and drops a level (as the KPN family's cpu size); "tiny" is for tests.
SIZES: dict[str, dict] = {
    "paper": {"widths": (64, 128, 256, 512, 512), "num_convs": 3, "head_width": 64},
    "cpu": {"widths": (32, 64, 128, 256), "num_convs": 2, "head_width": 32},
    "tiny": {"widths": (8, 16), "num_convs": 1, "head_width": 8},
}

MAX_OFFSET = 8.0  # pixels; our choice (the paper reports sampling ranges of about +-4 to +-15)


def size_config(size: str) -> dict:
    if size not in SIZES:
        raise InputError(f"unknown model size '{size}' (use one of {', '.join(SIZES)})")
    return dict(SIZES[size])


def deformable_traits(
    tau: int, blind: bool, max_offset: float, multiple: int, tile_margin: int
) -> ModelTraits:
    """deform2d (``tau = 0``): one image; deform3d: a clip of ``2 tau + 1`` frames."""
    return ModelTraits(
        kind="clip" if tau >= 1 else "single",
        frames=2 * int(tau) + 1,
        tile_margin=int(tile_margin),
        blind=bool(blind),
        max_offset=float(max_offset),
        size_multiple=int(multiple),
        independent_channels=True,
    )


def reach(widths: Sequence[int], num_convs: int, max_offset: float, kernel_size: int) -> int:
    """:attr:`DeformableKernelNet.tile_margin` from the constructor arguments (the property
    counts the built layers; ``tests/models/test_traits.py`` checks that both agree)."""
    levels, top = len(widths), max(num_convs - 1, 1)
    r = num_convs
    for lv in range(1, levels):
        r += 2 ** (lv - 1) + num_convs * 2**lv
    for lv in reversed(range(1, levels - 1)):
        r += 2 ** (lv + 1) + num_convs * 2**lv
    r += 2 + top + 1
    return r + 3 + math.ceil(max_offset) + kernel_size // 2 + 1


def config_traits(args: dict) -> ModelTraits:
    """The traits of ``deform2d`` / ``deform3d`` from their constructor arguments."""
    cfg = size_config(args["size"])
    tau = args.get("tau", 0)  # deform2d has no tau
    margin = reach(cfg["widths"], cfg["num_convs"], args["max_offset"], args["kernel_size"])
    multiple = 2 ** (len(cfg["widths"]) - 1)
    return deformable_traits(tau, args["blind"], args["max_offset"], multiple, margin)


# --------------------------------------------------------------------------- frame order
def burst_to_clip(burst: torch.Tensor) -> torch.Tensor:
    """``(B, 2 tau + 1, ...)`` in burst order ``[X_0, X_-tau..X_-1, X_1..X_tau]`` -> the clip
    ``[X_-tau, ..., X_tau]`` (temporal order, reference in the centre)."""
    n = burst.shape[1]
    if n % 2 == 0:
        raise InputError(f"a clip needs an odd number of frames (2 tau + 1), got {n}")
    tau = n // 2
    order = [*range(1, tau + 1), 0, *range(tau + 1, n)]
    return burst[:, order]


def clip_to_burst(clip: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`burst_to_clip`: the centre frame first, then the others in order."""
    n = clip.shape[1]
    if n % 2 == 0:
        raise InputError(f"a clip needs an odd number of frames (2 tau + 1), got {n}")
    tau = n // 2
    return clip[:, [tau, *range(tau), *range(tau + 1, n)]]


def video_window(t: int, num_frames: int, tau: int = 2) -> list[int]:
    """Frame indices of the ``deform3d`` burst for frame ``t`` of a ``num_frames``-frame video:
    ``[t, t - tau, ..., t - 1, t + 1, ..., t + tau]``. Beyond the ends of the video the indices
    are mirrored (``-1 -> 1``, ``num_frames -> num_frames - 2``), then clamped for very short
    videos, so the window never runs off the video."""
    if not 0 <= t < num_frames:
        raise InputError(f"frame {t} is outside a video of {num_frames} frames")
    last = num_frames - 1

    def fix(i: int) -> int:
        if i < 0:
            i = -i
        if i > last:
            i = 2 * last - i
        return min(max(i, 0), last)

    return [t] + [fix(t + k) for k in range(-tau, tau + 1) if k != 0]


# --------------------------------------------------------------------------- networks
def _add_skip(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """Pixel-wise summation with a skip (Fig. 4(b)). Where Table 1's widths differ (128 decoder
    channels against 64 encoder ones at full resolution) the skip is added to the first
    channels, i.e. zero-padded: our choice, the paper does not say."""
    extra = x.shape[1] - skip.shape[1]
    if extra > 0:
        skip = F.pad(skip, (0, 0, 0, 0, 0, extra))
    elif extra < 0:
        skip = skip[:, : x.shape[1]]
    return x + skip


class OffsetNet(nn.Module):
    """The offset network of Fig. 4(b) / Table 1: an encoder of ``len(widths)`` conv blocks with
    2x average pooling between them (C1-15 for ``widths = (64, 128, 256, 512, 512)``), a decoder
    that upsamples 2x (bilinear), convolves to the width of the level and adds that level's
    encoder features (C16-24: 512, 256, 128), a full-resolution block of ``num_convs - 1`` convs
    of width ``widths[1]`` plus the summed full-resolution skip (C25-26: 128), and C27 predicting
    ``out_ch`` offset channels. ``forward`` returns ``(features, raw offsets)``: the features of
    the last hidden layer (``widths[1]`` channels, fed to the weight layers) and C27's output
    before ``tanh``. Inputs must be a multiple of :attr:`multiple` in size."""

    def __init__(self, in_ch: int, widths: Sequence[int], num_convs: int, out_ch: int) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2:
            raise InputError(f"the offset network needs at least 2 levels, got {widths}")
        self.encoder = nn.ModuleList()
        prev = in_ch
        for w in widths:
            self.encoder.append(conv_block(prev, w, num_convs))
            prev = w
        self.decoder = nn.ModuleList()
        for level in reversed(range(1, len(widths) - 1)):
            self.decoder.append(conv_block(prev, widths[level], num_convs))
            prev = widths[level]
        self.top = conv_block(prev, widths[1], max(num_convs - 1, 1))
        self.head = nn.Conv2d(widths[1], out_ch, 3, padding=1)  # C27
        # zero offsets at the start: the kernels begin as rigid K x K (x Kt) grids
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.out_channels = widths[1]
        self.multiple = 2 ** (len(widths) - 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skips = []
        for i, block in enumerate(self.encoder):
            if i > 0:
                x = F.avg_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        x = skips.pop()  # the bottleneck (C13-15)
        for block in [*self.decoder, self.top]:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = _add_skip(block(x), skip)
        return x, self.head(x)


class DeformableKernelNet(nn.Module):
    """The 2D and 3D deformable-kernel denoisers ([DeformKernels] Fig. 3).

    Args:
        dims: 2 (one image, eq. 1-4) or 3 (a clip of ``2 tau + 1`` frames, eq. 6-7).
        kernel_size: ``K``: a ``K x K`` kernel in 2D, ``K x K x K`` in 3D.
        tau: half the clip length (0 in 2D).
        widths, num_convs: offset-network encoder widths and convs per level (Table 1).
        head_width: width of the first two weight-prediction layers (Table 1 "conv layers").
        blind: no noise-map input ("sigma blind").
        max_offset: the spatial offsets are ``max_offset * tanh(.)`` pixels; the temporal ones
            ``tau * tanh(.)`` frames.
        groups: the ``s`` tap groups of eq. (10) (``K`` in 3D: one per temporal slice of the
            base grid; 1 in 2D, which returns no group predictions).
        spread_time: 3D base grid times ``linspace(-tau, tau, K)`` (``-2, 0, 2`` for the 3x3x3
            kernel over 5 frames, so the rigid kernel already sees the whole clip) instead of the
            centred ``-1, 0, 1``; our choice, the paper does not say.
        backend: the sampling backend of :func:`burstkpn.ops.deform.deform_sample`.
    """

    # colour planes are separate batch items (offsets, weights and samples per plane), so
    # tiled inference may run them one at a time
    independent_channels = True

    def __init__(
        self,
        *,
        dims: int = 2,
        kernel_size: int = 5,
        tau: int = 0,
        widths: Sequence[int] = SIZES["cpu"]["widths"],
        num_convs: int = SIZES["cpu"]["num_convs"],
        head_width: int = SIZES["cpu"]["head_width"],
        blind: bool = False,
        max_offset: float = MAX_OFFSET,
        groups: int | None = None,
        spread_time: bool = True,
        backend: str = "gather",
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise InputError(f"dims must be 2 or 3, got {dims}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise InputError(f"kernel size must be odd and positive, got {kernel_size}")
        if tau < 0 or (dims == 2 and tau != 0) or (dims == 3 and tau < 1):
            raise InputError(f"tau must be 0 for 2D kernels and >= 1 for 3D ones, got {tau}")
        if max_offset < 0:
            raise InputError(f"max_offset must be >= 0, got {max_offset}")
        if backend not in BACKENDS:
            raise InputError(f"unknown sampling backend '{backend}' (use one of {BACKENDS})")
        self.dims = dims
        self.kernel_size = int(kernel_size)
        self.tau = int(tau)
        self.num_frames = 2 * tau + 1
        self.blind = blind
        self.max_offset = float(max_offset)  # px: also the motion denoise leaves unaligned
        self.backend = backend
        k = self.kernel_size
        self.kernel_dims: tuple[int, ...] = (k, k) if dims == 2 else (k, k, k)
        self.taps = k**dims
        self.groups = int(groups) if groups is not None else (k if dims == 3 else 1)
        if self.groups < 1 or self.taps % self.groups:
            raise InputError(f"{self.taps} taps cannot be split into {self.groups} groups")
        if dims == 3:
            if spread_time and k > 1:
                self.time_positions = tuple(-tau + 2 * tau * i / (k - 1) for i in range(k))
            else:
                self.time_positions = tuple(float(i - k // 2) for i in range(k))
        else:
            self.time_positions = None
        # offset limits per component (x, y(, t)), eq. (3)-(4)
        limits = [max_offset, max_offset] + ([float(tau)] if dims == 3 else [])
        self.register_buffer("offset_scale", torch.tensor(limits), persistent=False)
        self.register_buffer(
            "base",
            base_grid(self.kernel_dims, dims=dims, time_positions=self.time_positions),
            persistent=False,
        )
        # MACs per output pixel outside the convolutions: 2^D corner blends and 1 weight per tap
        self.extra_macs_per_pixel = self.taps * (2**dims + 1)

        in_ch = self.num_frames + (0 if blind else 1)
        self.offset_net = OffsetNet(in_ch, widths, num_convs, self.taps * dims)
        feat = self.offset_net.out_channels
        # "conv layers" of Fig. 3: sampled pixels + input + offset features -> F (eq. 1 / 6)
        self.weight_net = nn.Sequential(
            nn.Conv2d(self.taps + in_ch + feat, head_width, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(head_width, head_width, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(head_width, self.taps, 3, padding=1),
        )
        self._init_weight_head()
        self.config: dict = {}  # name + constructor kwargs, filled by the constructors

    @property
    def traits(self) -> ModelTraits:
        return deformable_traits(
            self.tau, self.blind, self.max_offset, self.offset_net.multiple, self.tile_margin
        )

    @property
    def tile_margin(self) -> int:
        """Context (px) a tile needs for exact tiled inference: the offset network's receptive
        radius, plus the weight layers' 3 convs, plus the farthest sample (``max_offset``
        beyond the rigid grid's ``K // 2``, and 1 px for the bilinear corner). The offsets are
        bounded by ``tanh``, so unlike dcn_lka the reach is exact."""
        net = self.offset_net

        def convs(block: nn.Module) -> int:
            return sum(isinstance(m, nn.Conv2d) for m in block.modules())

        levels = len(net.encoder)
        r = convs(net.encoder[0])
        for lv in range(1, levels):
            r += 2 ** (lv - 1) + convs(net.encoder[lv]) * 2**lv  # pooling, convs
        for block, lv in zip(net.decoder, reversed(range(1, levels - 1)), strict=True):
            r += 2 ** (lv + 1) + convs(block) * 2**lv  # bilinear upsampling, convs
        r += 2 + convs(net.top) + 1  # upsampling to full resolution, C25-26, C27
        return r + 3 + math.ceil(self.max_offset) + self.kernel_size // 2 + 1

    def _init_weight_head(self) -> None:
        """Start near a plain filter (our choice, the paper does not say): small weights and a
        bias on the centre tap: 1 in 2D (the identity), ``1 / K`` on the centre of each temporal
        slice in 3D (the mean of the base grid's frames; each group of eq. 10 starts as its own
        frame)."""
        last = self.weight_net[-1]
        with torch.no_grad():
            last.weight.mul_(0.1)
            last.bias.zero_()
            k = self.kernel_size
            centre = (k // 2) * k + k // 2
            slices = 1 if self.dims == 2 else k
            for s in range(slices):
                last.bias[s * k * k + centre] = 1.0 / slices

    def forward(
        self,
        burst: torch.Tensor,
        noise_map: torch.Tensor | None = None,
        *,
        return_aux: bool = False,
    ) -> DenoiseOutput:
        """``burst`` ``(B, N, C, H, W)`` linear light (2D: frame 0 is used; 3D: ``N = 2 tau + 1``
        in burst order, see the module docstring), ``noise_map`` ``(B, C, H, W)`` unless blind.

        Returns ``image`` ``(B, C, H, W)``; ``frames`` the group predictions ``Y_i`` of eq. (10)
        ``(B, s, C, H, W)`` (3D; ``None`` in 2D); with ``return_aux``: ``offsets`` and
        ``positions`` ``(B, C, T, D, H, W)`` (components ``x, y(, t)``; positions absolute, in
        pixels, ``t`` relative to the reference at 0), ``weights`` (``F``) and ``samples``
        ``(B, C, T, H, W)``, and ``base`` ``(T, D)`` the rigid grid."""
        if burst.ndim != 5:
            raise InputError(f"expected a burst (B, N, C, H, W), got shape {tuple(burst.shape)}")
        b, n, c, h, w = burst.shape
        if self.dims == 2:
            burst = burst[:, :1]
        elif n != self.num_frames:
            raise InputError(f"this model takes bursts of {self.num_frames} frames, got {n}")
        clip = burst if self.dims == 2 else burst_to_clip(burst)
        frames = fold_channels(clip)  # (B*C, F, H, W), temporal order
        inputs = [frames]
        if not self.blind:
            if noise_map is None:
                raise InputError("this model needs a noise map (B, C, H, W)")
            if noise_map.shape != (b, c, h, w):
                raise InputError(
                    f"noise map of shape {tuple(noise_map.shape)} does not match {(b, c, h, w)}"
                )
            inputs.append(noise_map.reshape(b * c, 1, h, w).to(frames.dtype))
        x_in = torch.cat(inputs, dim=1)
        x = pad_to_multiple(x_in, self.offset_net.multiple)
        if self.offset_net.encoder[0][0].weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        feat, raw = self.offset_net(x)
        feat, raw = feat[..., :h, :w], raw[..., :h, :w]  # crop back: sample the real image
        bc, t, d = b * c, self.taps, self.dims
        scale = self.offset_scale.view(1, 1, d, 1, 1)
        offsets = torch.tanh(raw.float()).reshape(bc, t, d, h, w) * scale  # V, eq. (3)-(4)
        source = frames[:, :1] if d == 2 else frames.unsqueeze(2)  # (BC, 1, H, W) / (BC, F, 1..)
        samples = deform_sample(
            source,
            offsets,
            self.kernel_dims,
            time_positions=self.time_positions,
            backend=self.backend,
        )  # (BC, 1, T, H, W), eq. (4) / (7)
        wn_in = torch.cat([samples[:, 0].to(feat.dtype), x_in.to(feat.dtype), feat], dim=1)
        weights = self.weight_net(wn_in).float()  # F, (BC, T, H, W)
        # per-group sums (BC, s, 1, H, W); their sum is eq. (1) / (6), s times each is eq. (10)
        per_group = group_filter(samples, weights, self.groups, scale=False)
        image = per_group.sum(1)[:, 0].reshape(b, c, h, w)
        group_frames = None
        if self.groups > 1:
            group_frames = unfold_channels(self.groups * per_group[:, :, 0], b)  # (B, s, C, H, W)
        aux = None
        if return_aux:

            def per_channel(z: torch.Tensor) -> torch.Tensor:
                return z.reshape(b, c, *z.shape[1:])

            aux = {
                "offsets": per_channel(offsets),
                "positions": per_channel(sampling_positions(offsets, self.base)),
                "weights": per_channel(weights),
                "samples": per_channel(samples[:, 0]),
                "base": self.base.clone(),
            }
        return DenoiseOutput(image, group_frames, aux)


def deform2d(
    size: str = "cpu",
    *,
    kernel_size: int = 5,
    blind: bool = False,
    max_offset: float = MAX_OFFSET,
    backend: str = "gather",
) -> DeformableKernelNet:
    """Single-image denoiser with a ``kernel_size`` x ``kernel_size`` deformable kernel per pixel
    (5x5 in the paper); reads frame 0 of any burst."""
    args = dict(locals())
    model = DeformableKernelNet(
        **size_config(size),
        dims=2,
        kernel_size=kernel_size,
        blind=blind,
        max_offset=max_offset,
        backend=backend,
    )
    model.config = {"name": "deform2d", "kwargs": args}
    return model


def deform3d(
    size: str = "cpu",
    *,
    kernel_size: int = 3,
    tau: int = 2,
    blind: bool = False,
    max_offset: float = MAX_OFFSET,
    groups: int | None = None,
    spread_time: bool = True,
    backend: str = "gather",
) -> DeformableKernelNet:
    """Video / burst denoiser with a ``kernel_size``^3 deformable space-time kernel per pixel
    over ``2 tau + 1`` frames (3x3x3 over 5 in the paper), reference first (module docstring)."""
    args = dict(locals())
    model = DeformableKernelNet(
        **size_config(size),
        dims=3,
        kernel_size=kernel_size,
        tau=tau,
        blind=blind,
        max_offset=max_offset,
        groups=groups,
        spread_time=spread_time,
        backend=backend,
    )
    model.config = {"name": "deform3d", "kwargs": args}
    return model
