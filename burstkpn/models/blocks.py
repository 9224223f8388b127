"""Building blocks of the kernel-prediction models: conv blocks, CBAM channel and spatial
attention ([AME-KPN] eq. 5-6, after Woo et al.), the U-Net feature extractor M_e (eq. 1), and
the offset network of the deformable kernels ([DeformKernels] Fig. 4(b), Table 1), a U-Net with
summed skips on the same encoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from burstkpn.errors import InputError
from burstkpn.models.common import cpu_bf16_inference


def conv_block(in_ch: int, out_ch: int, num_convs: int) -> nn.Sequential:
    """``num_convs`` 3x3 convolutions with ReLU, the first mapping ``in_ch -> out_ch``."""
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, padding=1), nn.ReLU(True)]
    return nn.Sequential(*layers)


def encoder(in_ch: int, widths: Sequence[int], num_convs: int) -> nn.ModuleList:
    """A U-Net encoder: a :func:`conv_block` per level, of width ``widths[level]``."""
    blocks = nn.ModuleList()
    for w in widths:
        blocks.append(conv_block(in_ch, w, num_convs))
        in_ch = w
    return blocks


def encode(blocks: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every :func:`encoder` level, finest first (the last is the deepest), with
    2x average pooling between the levels."""
    skips = []
    for i, block in enumerate(blocks):
        if i > 0:
            x = F.avg_pool2d(x, 2)
        x = block(x)
        skips.append(x)
    return skips


def init_centre_taps(
    conv: nn.Conv2d, kernel_size: int, count: int, stride: int, value: float = 1.0
) -> None:
    """Start a head that predicts ``count`` square kernels (tap ``i * K + j`` row-major, kernel
    ``n`` from channel ``n * stride``) near a plain filter: weights scaled by 0.1, bias ``value``
    on every kernel's centre tap and 0 elsewhere (our choice; the papers do not say)."""
    centre = (kernel_size // 2) * kernel_size + kernel_size // 2
    with torch.no_grad():
        conv.weight.mul_(0.1)
        conv.bias.zero_()
        for n in range(count):
            conv.bias[n * stride + centre] = value


def channel_attention(
    x: torch.Tensor, fc1: nn.Conv2d, fc2: nn.Conv2d, stats: tuple[torch.Tensor, ...] | None = None
) -> torch.Tensor:
    """CBAM channel attention map M_Ac(F) = sigmoid(MLP(avgpool F) + MLP(maxpool F)),
    shape ``(B, ch, 1, 1)``. ``stats`` optionally supplies the pooled ``(avg, max)`` (used by
    tiled inference to give every tile the whole image's statistics)."""
    if stats is None:
        stats = (x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True))
    avg, mx = stats

    def mlp(z: torch.Tensor) -> torch.Tensor:
        return fc2(F.relu(fc1(z)))

    return torch.sigmoid(mlp(avg.to(x.dtype)) + mlp(mx.to(x.dtype)))


class ChannelAttention(nn.Module):
    """CBAM channel attention, applied as F_c = M_Ac(F_d) * F_d ([AME-KPN] eq. 5).

    Its global pooling sees the whole feature map; ``global_stats`` (set by
    :func:`burstkpn.inference.tiling.tiled_forward`) replaces the pooled statistics so a tile can
    be processed with the statistics of the full image."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.global_stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_attention(x, self.fc1, self.fc2, self.global_stats) * x


def channel_max(x: torch.Tensor) -> torch.Tensor:
    """``max_c F``, ``(B, 1, H, W)``. In bfloat16 inference on CPU it is taken in float32 and
    cast back, the same values (a maximum is one of its inputs): torch's bfloat16 reduction
    over the channels of a channels_last map ran 6x slower than the conversion and the float32
    one (32 x 136 x 136, AMD Zen 4: 0.59 against 0.09 ms, ``benchmarks/head_layout.py``;
    docs/speed/profile.md)."""
    if cpu_bf16_inference(x):
        return x.float().amax(1, keepdim=True).to(x.dtype)
    return x.amax(1, keepdim=True)


def spatial_attention(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """CBAM spatial attention map M_As(F) = sigmoid(conv7x7([mean_c F, max_c F])), ``(B,1,H,W)``."""
    pooled = torch.cat([x.mean(1, keepdim=True), channel_max(x)], dim=1)
    return torch.sigmoid(conv(pooled))


class SpatialAttention(nn.Module):
    """CBAM spatial attention, applied as F_s = M_As(F_c) * F_c ([AME-KPN] eq. 6)."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spatial_attention(x, self.conv) * x


class DecoderBlock(nn.Module):
    """Upsample the deeper features 2x (bilinear), concatenate the skip, convolve, then refine
    with channel attention (eq. 5) and spatial attention (eq. 6) when enabled (Fig. 1: attention
    sits in every decoder block)."""

    def __init__(
        self,
        in_ch: int,
        skip_ch: int,
        out_ch: int,
        num_convs: int,
        channel_attention: bool = False,
        spatial_attention: bool = False,
    ) -> None:
        super().__init__()
        self.convs = conv_block(in_ch + skip_ch, out_ch, num_convs)
        self.ca = ChannelAttention(out_ch) if channel_attention else nn.Identity()
        self.sa = SpatialAttention() if spatial_attention else nn.Identity()

    def convolve(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Upsampling, skip and convolutions: everything before the attention (whose channel
        statistics need the whole feature map; staged tiled inference stops here)."""
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, skip], dim=1))

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """Channel then spatial attention (eq. 5, then eq. 6)."""
        return self.sa(self.ca(x))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.attend(self.convolve(x, skip))


class UNet(nn.Module):
    """The feature extractor M_e: an encoder of conv blocks with 2x average pooling between
    them and a decoder of :class:`DecoderBlock` with concatenated skips, back to full
    resolution. Output: ``widths[0]`` channels at the input's size, which must be a multiple of
    :attr:`multiple`."""

    def __init__(
        self,
        in_ch: int,
        widths: Sequence[int],
        num_convs: int = 3,
        channel_attention: bool = False,
        spatial_attention: bool = False,
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        self.encoder = encoder(in_ch, widths, num_convs)
        prev = widths[-1]
        self.decoder = nn.ModuleList()
        for level in reversed(range(len(widths) - 1)):
            self.decoder.append(
                DecoderBlock(
                    prev,
                    widths[level],
                    widths[level],
                    num_convs,
                    channel_attention,
                    spatial_attention,
                )
            )
            prev = widths[level]
        self.out_channels = widths[0]
        self.multiple = 2 ** (len(widths) - 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's output at every level, finest first (the last is the deepest)."""
        return encode(self.encoder, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = self.encode(x)
        x = skips.pop()
        for block in self.decoder:
            x = block(x, skips.pop())
        return x


def plane_mean(t: torch.Tensor, batch: int) -> torch.Tensor:
    """The mean over the planes of ``t`` (``batch * C`` items, plane-minor), ``(batch, ...)``,
    symmetric in the planes, in ``t``'s memory format: a sum of the planes' slices (``.mean``
    over the plane axis of a channels-last map takes torch's slow strided reduction on CPU
    and returns a contiguous map; docs/speed/profile.md, "Shared coarse levels")."""
    planes = t.unflatten(0, (batch, -1))
    n = planes.shape[1]
    if n == 1:
        return planes[:, 0]
    total = planes[:, 0] + planes[:, 1]
    for i in range(2, n):
        total.add_(planes[:, i])
    return total.div_(n)


def shared_coarse_features(unet: UNet, x: torch.Tensor, batch: int) -> torch.Tensor:
    """The U-Net's output when the colour planes share its coarse levels (``shared_coarse``,
    our addition, issue 25): ``x`` holds ``batch`` bursts of C planes each as ``batch * C``
    items, plane-minor (the layout of the KPN family's ``network_input``). Every plane gets
    the first encoder level and the last decoder block (full resolution) on its own; the
    levels between run once per burst, on the mean over its planes of the first level's
    features, and their output goes to every plane's last decoder block. With one plane, or
    C equal planes, it is ``unet(x)``."""
    fine = unet.encoder[0](x)  # (B*C, f0, H, W)
    skips = encode(unet.encoder[1:], F.avg_pool2d(plane_mean(fine, batch), 2))
    y = skips.pop()
    for block in unet.decoder[:-1]:
        y = block(y, skips.pop())
    y = y.repeat_interleave(fine.shape[0] // batch, dim=0)
    return unet.decoder[-1](y, fine)


def _add_skip(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """Pixel-wise summation with a skip ([DeformKernels] Fig. 4(b)). Where Table 1's widths
    differ (128 decoder channels against 64 encoder ones at full resolution) the skip is added
    to the first channels, i.e. zero-padded: our choice, the paper does not say."""
    extra = x.shape[1] - skip.shape[1]
    if extra > 0:
        skip = F.pad(skip, (0, 0, 0, 0, 0, extra))
    elif extra < 0:
        skip = skip[:, : x.shape[1]]
    return x + skip


class OffsetNet(nn.Module):
    """The offset network of [DeformKernels] Fig. 4(b) / Table 1: an :func:`encoder` of
    ``len(widths)`` levels (C1-15 for ``widths = (64, 128, 256, 512, 512)``), a decoder that
    upsamples 2x (bilinear), convolves to the width of the level and adds that level's encoder
    features (C16-24: 512, 256, 128), a full-resolution block of ``num_convs - 1`` convs of
    width ``widths[1]`` plus the summed full-resolution skip (C25-26: 128), and C27 predicting
    ``out_ch`` offset channels. ``forward`` returns ``(features, raw offsets)``: the features of
    the last hidden layer (``widths[1]`` channels, fed to the weight layers) and C27's output
    before ``tanh``. Inputs must be a multiple of :attr:`multiple` in size."""

    def __init__(self, in_ch: int, widths: Sequence[int], num_convs: int, out_ch: int) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2:
            raise InputError(f"the offset network needs at least 2 levels, got {widths}")
        self.encoder = encoder(in_ch, widths, num_convs)
        prev = widths[-1]
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
        skips = encode(self.encoder, x)
        x = skips.pop()  # the bottleneck (C13-15)
        for block in [*self.decoder, self.top]:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = _add_skip(block(x), skip)
        return x, self.head(x)
