"""Blocks of the DCN-LKA restoration network ([DCN-LKA]): a modulated deformable convolution
(section IV-A, Fig. 8; DCNv2 [2]), Large Kernel Attention (section IV-B, Fig. 6; VAN [12]), the
ResNet basic block (Fig. 7), the modified residual block with LKA (Fig. 9) and the channel
attention module (section VI-D).

Each operation is a pure function of its inputs and weights plus a thin ``nn.Module`` that owns
the weights. Table 1's "per block parameters" are the weights of each block's main 3x3
convolutions, and these blocks reproduce them exactly at the paper's widths (32 and 128
channels): 18,432 = 2 x 32*32*9 (:class:`DeformableBlock`), 73,728 = 64*128*9 (the first conv
of the :class:`ResidualBlock` entering the 128-channel stage) and 147,456 = 128*128*9
(:class:`LKAResidualBlock`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from burstkpn.errors import InputError

# The paper's channel attention module ("we produce a channel attention map by exploiting the
# inter-channel relationship of features ... channel attention focuses on what is meaningful")
# is CBAM's (Woo et al.), which blocks.py already implements ([AME-KPN] eq. 5); reused here.
from burstkpn.models.blocks import ChannelAttention, channel_attention

__all__ = [
    "DEFORM_BACKENDS",
    "ChannelAttention",
    "DeformableBlock",
    "DeformableConv2d",
    "LKAResidualBlock",
    "LargeKernelAttention",
    "Mlp",
    "ResidualBlock",
    "channel_attention",
    "dilated_depthwise_conv2d",
    "large_kernel_attention",
    "lka_receptive_field",
    "modulated_deform_conv2d",
]


# --------------------------------------------------------------------------- deformable conv
def same_padding(kernel_size: int) -> tuple[int, int]:
    """(before, after) zero padding that keeps the size for a stride-1 ``kernel_size`` conv:
    symmetric for odd sizes, one more after for even sizes (the 4x4 kernels of Table 2)."""
    return (kernel_size - 1) // 2, kernel_size // 2


DEFORM_BACKENDS = ("auto", "torchvision", "grid_sample")


def modulated_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Modulated deformable convolution ([DCN-LKA] eq. 2 with DCNv2's modulation), stride 1,
    output the size of the input:

        y(p0) = sum_n w(p_n) * m_n(p0) * x(p0 + p_n + dp_n(p0)),

    x sampled bilinearly (eq. 3-4) and zero outside the image. ``x`` ``(B, Cin, H, W)``,
    ``offset`` ``(B, 2*K*K, H, W)`` as ``(dy, dx)`` per tap in row-major tap order, ``mask``
    ``(B, K*K, H, W)``, ``weight`` ``(Cout, Cin, K, K)``; tap ``(i, j)`` reads ``p0 + (i - (K-1)//2,
    j - (K-1)//2)`` before its offset (even ``K`` reaches one pixel further down / right).

    ``backend``: ``"torchvision"`` (:func:`torchvision.ops.deform_conv2d`), ``"grid_sample"``
    (all taps sampled by one :func:`torch.nn.functional.grid_sample`, then a 1x1 conv over the
    ``Cin*K*K`` sampled planes; the same numbers to float rounding, and 5x faster forward +
    backward on CPU, where torchvision's backward kernel is slow: 1.3 s against 0.23 s for
    8x16x64x64, K = 3, 2 threads), or ``"auto"`` (torchvision on CUDA, grid_sample elsewhere).
    Computed in float32, also under autocast (torchvision's kernel has no bfloat16 path)."""
    k = weight.shape[-1]
    if weight.shape[-2] != k:
        raise InputError(f"deformable kernels must be square, got {tuple(weight.shape[-2:])}")
    if backend not in DEFORM_BACKENDS:
        raise InputError(
            f"unknown deformable backend '{backend}' (use one of {', '.join(DEFORM_BACKENDS)})"
        )
    if backend == "auto":
        backend = "torchvision" if x.device.type == "cuda" else "grid_sample"
    with torch.autocast(x.device.type, enabled=False):
        x, offset, mask = x.float().contiguous(), offset.float(), mask.float()
        weight = weight.float()
        bias = None if bias is None else bias.float()
        if backend == "grid_sample":
            return _deform_conv_grid_sample(x, offset, mask, weight, bias)
        from torchvision.ops import deform_conv2d

        before, after = same_padding(k)
        xp = F.pad(x, (before, after, before, after))
        return deform_conv2d(xp, offset.contiguous(), weight, bias, mask=mask.contiguous())


def _deform_conv_grid_sample(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    b, c, h, w = x.shape
    k = weight.shape[-1]
    taps = k * k
    before = (k - 1) // 2
    idx = torch.arange(k, dtype=x.dtype, device=x.device) - before
    tap_y = idx.repeat_interleave(k).view(1, taps, 1, 1)  # row-major taps (i, j)
    tap_x = idx.repeat(k).view(1, taps, 1, 1)
    ys = torch.arange(h, dtype=x.dtype, device=x.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, 1, w)
    off = offset.reshape(b, taps, 2, h, w)
    py = ys + tap_y + off[:, :, 0]  # (B, K*K, H, W) sampling rows, eq. (2)
    px = xs + tap_x + off[:, :, 1]
    # pixel centres -> [-1, 1] (align_corners=False); zeros outside, like a zero-padded input
    grid = torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1], dim=-1)
    cols = F.grid_sample(
        x, grid.view(b, taps * h, w, 2), mode="bilinear", padding_mode="zeros", align_corners=False
    )  # (B, C, K*K*H, W): eq. (3)-(4)
    cols = cols.view(b, c, taps, h, w) * mask.unsqueeze(1)
    return F.conv2d(cols.view(b, c * taps, h, w), weight.reshape(weight.shape[0], -1, 1, 1), bias)


class DeformableConv2d(nn.Module):
    """Modulated deformable ``kernel_size`` convolution whose offsets and masks are predicted
    from its input by a 3x3 convolution (Fig. 8: "offsets ... learn-able from the preceding
    feature maps using additional convolutional layers").

    The predictor starts at zero, and the masks are ``2 * sigmoid(.)``, so an untrained layer is
    exactly a plain convolution (zero offsets, unit masks) and training moves away from it."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        bias: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if backend not in DEFORM_BACKENDS:
            raise InputError(
                f"unknown deformable backend '{backend}' (use one of {', '.join(DEFORM_BACKENDS)})"
            )
        self.backend = backend
        if kernel_size < 1:
            raise InputError(f"kernel size must be positive, got {kernel_size}")
        self.kernel_size = kernel_size
        taps = kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Conv2d's default
        self.offset_mask = nn.Conv2d(in_ch, 3 * taps, 3, padding=1)  # 2 K*K offsets, K*K masks
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)

    def offsets_and_masks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offsets ``(B, 2*K*K, H, W)`` in pixels and masks ``(B, K*K, H, W)`` in (0, 2)."""
        om = self.offset_mask(x)
        taps = self.kernel_size * self.kernel_size
        return om[:, : 2 * taps], 2 * torch.sigmoid(om[:, 2 * taps :])

    def forward(
        self, x: torch.Tensor, *, return_offsets: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        offset, mask = self.offsets_and_masks(x)
        y = modulated_deform_conv2d(x, offset, mask, self.weight, self.bias, backend=self.backend)
        y = y.to(x.dtype)
        return (y, offset, mask) if return_offsets else y


class DeformableBlock(nn.Module):
    """Table 1 row 1, "Deformable Convolutional block" (C x H x W -> C x H x W): a ResNet basic
    block (Fig. 7) whose first convolution is deformable (Fig. 8):
    ``relu(x + bn(conv3x3(relu(bn(deform_conv_K(x))))))``. Its two convolutions hold
    ``2 * C*C*9`` = 18,432 weights at C = 32, K = 3, as Table 1 says."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.deform = DeformableConv2d(channels, channels, kernel_size)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(
        self, x: torch.Tensor, *, return_offsets: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y, offset, mask = self.deform(x, return_offsets=True)
        y = self.bn2(self.conv(F.relu(self.bn1(y))))
        out = F.relu(x + y)
        return (out, offset, mask) if return_offsets else out


# --------------------------------------------------------------------------- ResNet block
class ResidualBlock(nn.Module):
    """ResNet basic block (Fig. 7; He et al. [8]): ``relu(shortcut(x) + bn(conv(relu(bn(
    conv_s(x))))))`` with 3x3 convolutions, the first of stride ``stride``; the shortcut is a
    strided 1x1 conv + batch norm when the shape changes. Table 1 row 2 (32 x 256 x 256 ->
    128 x 64 x 64) is two of them with stride 2 (32 -> 64 -> 128 channels)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(self.shortcut(x) + y)


# --------------------------------------------------------------------------- LKA
def lka_receptive_field(local_size: int = 5, dilated_size: int = 7, dilation: int = 3) -> int:
    """Side of the square LKA sees: a ``local_size`` depthwise conv followed by a
    ``dilated_size`` depthwise conv of dilation ``d`` spans ``local + (dilated - 1) * d``
    pixels: 5 + 6 * 3 = 23 for the paper's settings (VAN's decomposition of a 21x21 kernel)."""
    return local_size + (dilated_size - 1) * dilation


def dilated_depthwise_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dilation: int
) -> torch.Tensor:
    """Depthwise ``K x K`` conv (odd K) with dilation ``d`` and zero "same" padding, computed as
    an undilated conv on the ``d * d`` polyphase components of ``x`` (pixels ``(y, x)`` with the
    same ``(y mod d, x mod d)``): a dilated tap ``d * k`` away is the ``k``-th neighbour within
    one component. Equal to ``F.conv2d(x, weight, bias, padding=(K//2)*d, dilation=d,
    groups=C)`` to float rounding; on CPU 2-3x faster forward + backward (oneDNN has no fast
    dilated depthwise kernel)."""
    b, c, h, w = x.shape
    d = int(dilation)
    k = weight.shape[-1]
    ph, pw = (-h) % d, (-w) % d
    x = F.pad(x, (0, pw, 0, ph))  # zeros: what the dilated conv's padding reads there too
    hd, wd = (h + ph) // d, (w + pw) // d
    z = x.reshape(b, c, hd, d, wd, d).permute(0, 3, 5, 1, 2, 4).reshape(b * d * d, c, hd, wd)
    y = F.conv2d(z, weight, bias, padding=k // 2, groups=c)
    y = y.reshape(b, d, d, c, hd, wd).permute(0, 3, 4, 1, 5, 2).reshape(b, c, hd * d, wd * d)
    return y[..., :h, :w]


def large_kernel_attention(
    x: torch.Tensor,
    dw: nn.Conv2d,
    dw_dilated: nn.Conv2d,
    pointwise: nn.Conv2d,
) -> torch.Tensor:
    """LKA (section IV-B, Fig. 6a):

        Attention = Conv1x1(DW-D-Conv(DW-Conv(F))),    Output = Attention * F

    (``*`` elementwise). The convolutions are given as modules so their padding / dilation
    travel with their weights; on CPU the dilated one runs through
    :func:`dilated_depthwise_conv2d` (same result, faster)."""
    f = dw(x)
    dilation = dw_dilated.dilation[0]
    if x.device.type == "cpu" and dilation > 1:
        f = dilated_depthwise_conv2d(f, dw_dilated.weight, dw_dilated.bias, dilation)
    else:
        f = dw_dilated(f)
    attention = pointwise(f)
    return attention * x


class LargeKernelAttention(nn.Module):
    """LKA with the paper's settings (VAN [12]): 5x5 depthwise conv, 7x7 depthwise conv of
    dilation 3, 1x1 conv; receptive field 23x23 (:func:`lka_receptive_field`)."""

    def __init__(
        self, channels: int, local_size: int = 5, dilated_size: int = 7, dilation: int = 3
    ) -> None:
        super().__init__()
        if local_size % 2 == 0 or dilated_size % 2 == 0:
            raise InputError(f"LKA kernel sizes must be odd, got {local_size} and {dilated_size}")
        self.dw = nn.Conv2d(
            channels, channels, local_size, padding=local_size // 2, groups=channels
        )
        self.dw_dilated = nn.Conv2d(
            channels,
            channels,
            dilated_size,
            padding=(dilated_size // 2) * dilation,
            dilation=dilation,
            groups=channels,
        )
        self.pointwise = nn.Conv2d(channels, channels, 1)
        self.receptive_field = lka_receptive_field(local_size, dilated_size, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return large_kernel_attention(x, self.dw, self.dw_dilated, self.pointwise)


class Mlp(nn.Module):
    """Per-pixel MLP of Fig. 9 (1x1 conv to ``ratio * C`` channels, ReLU, 1x1 conv back)."""

    def __init__(self, channels: int, ratio: float = 4.0) -> None:
        super().__init__()
        hidden = max(int(round(channels * ratio)), 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class LKAResidualBlock(nn.Module):
    """The modified ResNet block of Fig. 9: ``x + MLP(LKA(relu(bn(conv3x3(x)))))``.

    The figure draws conv -> batch norm -> LKA -> MLP -> residual add; the ReLU after the
    batch norm is ours (the paper's activation is ReLU, section VII-C, but its place in the
    block is not drawn). Its 3x3 conv holds C*C*9 = 147,456 weights at C = 128 (Table 1 row 3);
    the figure's LKA and MLP come on top of that count."""

    def __init__(self, channels: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.lka = LargeKernelAttention(channels)
        self.mlp = Mlp(channels, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.lka(F.relu(self.bn(self.conv(x)))))
