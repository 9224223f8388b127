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
from torch import nn

from burstkpn.errors import InputError
from burstkpn.models.blocks import OffsetNet, init_centre_taps
from burstkpn.models.common import (
    DenoiseOutput,
    build,
    conv_input,
    fold_channels,
    model_frames,
    noise_planes,
    size_config,
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
    cfg = size_config(SIZES, args["size"])
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


# --------------------------------------------------------------------------- the network
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
        k = self.kernel_size
        slices = 1 if self.dims == 2 else k
        init_centre_taps(self.weight_net[-1], k, slices, k * k, 1.0 / slices)

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
        burst = model_frames(burst, self.num_frames)  # 2D: frame 0
        b, _, c, h, w = burst.shape
        clip = burst if self.dims == 2 else burst_to_clip(burst)
        frames = fold_channels(clip)  # (B*C, F, H, W), temporal order
        inputs = [frames]
        if not self.blind:
            inputs.append(noise_planes(noise_map, (b, c, h, w)).to(frames.dtype))
        x_in = torch.cat(inputs, dim=1)
        net = self.offset_net
        feat, raw = net(conv_input(x_in, net.multiple, net.encoder[0][0].weight))
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
    return build(DeformableKernelNet, "deform2d", SIZES, dict(locals()), dims=2)


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
    return build(DeformableKernelNet, "deform3d", SIZES, dict(locals()), dims=3)
