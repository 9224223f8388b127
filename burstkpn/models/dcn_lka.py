"""DCN-LKA ([DCN-LKA]): single-image restoration (denoising and deblurring) with a ResNet
backbone, a deformable convolution block and residual blocks with Large Kernel Attention.

Architecture as built (Table 1 and Fig. 5; widths ``(c0, c1, c2)`` = (32, 64, 128) at the
paper's size):

1. stem: 3x3 conv 3 -> c0 + ReLU ("32x256x256 ... input convolutional layers", Table 1);
2. :class:`~burstkpn.models.lka.DeformableBlock` at c0 x H x W (Table 1 row 1), kernel size
   ``kernel_size`` (3 for deblurring, 4 for denoising in section VII-D);
3. two strided :class:`~burstkpn.models.lka.ResidualBlock` (c0 -> c1 -> c2, H/4 x W/4: Table 1
   row 2, 32x256x256 -> 128x64x64);
4. ``num_blocks`` :class:`~burstkpn.models.lka.LKAResidualBlock` (Fig. 9; Table 1 row 3; 9 or
   12 in Tables 2-3), then the channel attention module (section VI-D);
5. back to full resolution with two 4x4 stride-2 transposed convs (+ batch norm + ReLU), each
   added to the encoder features of the same resolution, and a 3x3 conv c0 -> 3 that predicts
   the correction to the input: ``clean = degraded + tail(...)``.

The paper does not draw the decoder (Fig. 5 gives the blocks, not the upsampling path) nor say
where the channel attention sits; the transposed-conv decoder, the additive skips, the global
residual (zero-initialised last conv, so an untrained model is the identity) and one channel
attention after the LKA stage are our choices.

Colour spaces: bursts are linear light (package convention); the paper trains on sRGB images
(GoPro, SIDD), so the network sees the sRGB encoding of the input
(:func:`~burstkpn.data.io.images.linear_to_srgb`) and its output is decoded back to linear light.
Grayscale inputs are replicated to 3 channels and the 3 outputs averaged back to one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from burstkpn.data.io.images import linear_to_srgb, srgb_to_linear
from burstkpn.errors import InputError
from burstkpn.models.common import DenoiseOutput, build, conv_input, model_frames
from burstkpn.models.lka import ChannelAttention, DeformableBlock, LKAResidualBlock, ResidualBlock
from burstkpn.models.traits import ModelTraits

# "paper": Table 1's widths and 9 LKA residual blocks (12 is the other setting of Tables 2-3);
# "cpu": trains on 2 CPU cores; "tiny": tests and smoke runs only. Widths stay >= 8: in torch
# 2.14 on CPU the backward of a strided 1x1 conv in channels_last (runtime.prepare_model) with
# fewer than 8 input channels corrupts memory (the shortcut of the first ResidualBlock).
SIZES: dict[str, dict] = {
    "paper": {"widths": (32, 64, 128), "num_blocks": 9, "mlp_ratio": 4.0},
    "cpu": {"widths": (16, 32, 64), "num_blocks": 4, "mlp_ratio": 2.0},
    "tiny": {"widths": (8, 8, 8), "num_blocks": 1, "mlp_ratio": 1.0},
}
PAPER_PARAMETERS = 3_573_615  # [DCN-LKA] section VII-C (9 residual blocks)
KERNEL_SIZES = (3, 4)  # the deformable kernel sizes of Tables 2-3


class UpBlock(nn.Module):
    """2x upsampling: 4x4 stride-2 transposed conv + batch norm + ReLU, plus the skip."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.up(x))) + skip


class DCNLKA(nn.Module):
    """The DCN-LKA network (module docstring). Forward: ``burst`` ``(B, N, C, H, W)`` in linear
    light (only frame 0 is used: a single-image model), C = 3 or 1; ``noise_map`` is accepted
    and ignored (the network is blind, as in the paper). Any H, W (reflect-padded to a multiple
    of 4 and cropped back). Returns :class:`~burstkpn.models.common.DenoiseOutput` with ``image``
    ``(B, C, H, W)`` in linear light and ``frames=None``; ``return_aux=True`` adds the deformable
    block's ``offsets`` ``(B, 2*K*K, H, W)`` and ``masks`` ``(B, K*K, H, W)``."""

    multiple = 4  # two stride-2 stages
    num_frames = 1  # restores one image (traits: kind "single"); later frames are ignored
    # context (px) around each tile in tiled inference: the deformable offsets make the reach
    # data-dependent, and the LKA stage sees far (48 px per block), so tiling is approximate
    tile_margin = 32

    def __init__(
        self,
        *,
        widths: tuple[int, int, int] = SIZES["cpu"]["widths"],
        num_blocks: int = SIZES["cpu"]["num_blocks"],
        mlp_ratio: float = SIZES["cpu"]["mlp_ratio"],
        kernel_size: int = 3,
        channel_attention: bool = True,
    ) -> None:
        super().__init__()
        if len(widths) != 3 or min(widths) < 1:
            raise InputError(f"widths must be three positive numbers, got {tuple(widths)}")
        if num_blocks < 0:
            raise InputError(f"num_blocks must be >= 0, got {num_blocks}")
        if kernel_size not in KERNEL_SIZES:
            raise InputError(f"deformable kernel size must be 3 or 4, got {kernel_size}")
        c0, c1, c2 = (int(w) for w in widths)
        self.kernel_size = kernel_size
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 3, padding=1), nn.ReLU(True))
        self.deform = DeformableBlock(c0, kernel_size)  # Table 1 row 1
        self.down1 = ResidualBlock(c0, c1, stride=2)  # Table 1 row 2: 32x256x256 ->
        self.down2 = ResidualBlock(c1, c2, stride=2)  # -> 128x64x64
        self.body = nn.Sequential(*(LKAResidualBlock(c2, mlp_ratio) for _ in range(num_blocks)))
        self.attention = ChannelAttention(c2) if channel_attention else nn.Identity()
        self.up2 = UpBlock(c2, c1)
        self.up1 = UpBlock(c1, c0)
        self.tail = nn.Conv2d(c0, 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as the identity (global residual)
        nn.init.zeros_(self.tail.bias)
        self.config: dict = {}  # name + constructor kwargs, filled by dcn_lka()

    @property
    def traits(self) -> ModelTraits:
        return config_traits({})

    def restore(
        self, x: torch.Tensor, *, return_offsets: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The network on sRGB-encoded ``(B, 3, H, W)`` images, H and W multiples of 4."""
        f0, offset, mask = self.deform(self.stem(x), return_offsets=True)
        f1 = self.down1(f0)
        f2 = self.attention(self.body(self.down2(f1)))
        y = x + self.tail(self.up1(self.up2(f2, f1), f0))
        return (y, offset, mask) if return_offsets else y

    def forward(
        self,
        burst: torch.Tensor,
        noise_map: torch.Tensor | None = None,
        *,
        return_aux: bool = False,
    ) -> DenoiseOutput:
        x = model_frames(burst, self.num_frames)[:, 0]
        b, c, h, w = x.shape
        if c not in (1, 3):
            raise InputError(f"dcn_lka takes 1- or 3-channel images, got {c} channels")
        if c == 1:
            x = x.expand(b, 3, h, w)  # gray: the same plane in R, G and B
        # The paper's network sees 8-bit sRGB images (SIDD, GoPro), always in [0, 1]. Unclipped
        # synthetic noise reaches outside that range, and the LKA product (attention x input)
        # is quadratic in its input: with batch-norm running statistics (eval mode) such
        # out-of-range inputs grew to 1e19 through 4 LKA blocks. Clip as a camera does.
        x = conv_input(linear_to_srgb(x).clamp(0, 1), self.multiple, self.stem[0].weight)
        y, offset, mask = self.restore(x, return_offsets=True)
        image = srgb_to_linear(y[..., :h, :w].float())
        if c == 1:
            image = image.mean(1, keepdim=True)
        aux = None
        if return_aux:
            aux = {"offsets": offset[..., :h, :w], "masks": mask[..., :h, :w]}
        return DenoiseOutput(image, None, aux)


def config_traits(args: dict) -> ModelTraits:
    """DCN-LKA, whatever its arguments: one image, blind, a 32 px tile margin."""
    return ModelTraits(
        kind="single",
        frames=DCNLKA.num_frames,
        tile_margin=DCNLKA.tile_margin,
        blind=True,
        max_offset=None,
        size_multiple=DCNLKA.multiple,
        independent_channels=False,
    )


def dcn_lka(
    size: str = "cpu",
    *,
    num_blocks: int | None = None,
    kernel_size: int = 3,
    channel_attention: bool = True,
) -> DCNLKA:
    """DCN-LKA ([DCN-LKA]). ``num_blocks``: LKA residual blocks (the paper's 9 or 12; default
    from the size); ``kernel_size``: deformable kernel, 3 (deblurring) or 4 (denoising)."""
    args = dict(locals())
    blocks = {} if num_blocks is None else {"num_blocks": int(num_blocks)}  # else the preset's
    return build(DCNLKA, "dcn_lka", SIZES, args, skip=("num_blocks",), **blocks)
