"""KPN (Mildenhall et al., [KPN]), MKPN (multi-size kernels) and AME-KPN ([AME-KPN])
as configurations of one class, :class:`KernelPredictionNet`.

Data flow ([AME-KPN] Fig. 1): the N noisy frames and the noise map are concatenated (eq. 1)
and fed to the U-Net M_e; the branch M_kr predicts per-frame kernels K_i (and, with
``residual``, residual maps R_i, eq. 2) and M_w the weight maps W_i (eq. 3); each frame is
filtered by its kernels and merged by eq. (4):

    Y_i = sigmoid(W_i) * (X_i (*) K_i) + (1 - sigmoid(W_i)) * R_i,    Y = mean_i Y_i

Without ``residual`` (KPN, MKPN, Table 2 Models 1-4) ``Y_i = X_i (*) K_i``. Colour bursts are
handled as the paper says: R, G and B go independently through the same network (the channel
axis is folded into the batch), so every channel gets its own kernels.

``color=True`` is our colour variant (issue 25; not in the papers): the U-Net sees the three
planes of every frame at once (eq. 1 input of ``3 N`` frames plus a 3-channel noise map) and
the heads predict kernels, residuals and weights per frame *and* channel, so one network pass
serves all three planes instead of three. The kernel application and eq. (4) are the same, per
channel.

``shared_coarse=True`` is a second colour model of ours (issue 25; not in the papers) that keeps
the per-plane model's weights and its blindness to which plane is which: every plane runs the
U-Net's first level, its last decoder block and the heads on its own (a batch item, as in the
paper), but the coarser levels run once, on the mean of the planes' first-level features
(:func:`~burstkpn.models.blocks.shared_coarse_features`). On a grey burst it is the per-plane
model exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from burstkpn.errors import InputError
from burstkpn.models.blocks import UNet, conv_block, init_centre_taps, shared_coarse_features
from burstkpn.models.common import (
    DenoiseOutput,
    build,
    check_noise_map,
    conv_input,
    model_frames,
    noise_planes,
    size_config,
    unfold_channels,
)
from burstkpn.models.heads import fuse_matrix, head_outputs, kernel_filters
from burstkpn.models.traits import ModelTraits
from burstkpn.ops.kernels import apply_kernels, project_kernel_sum
from burstkpn.profiling import stage

# Published widths (encoder 64-128-256-512-512, 3 convs per block, as KPN / AME-KPN), a slimmer
# one that trains on 2 CPU cores, and a tiny one for tests.
SIZES: dict[str, dict] = {
    "paper": {"widths": (64, 128, 256, 512, 512), "num_convs": 3},
    "cpu": {"widths": (32, 64, 128, 256), "num_convs": 2},
    "tiny": {"widths": (8, 16), "num_convs": 1},  # for tests and smoke runs only
}


def kpn_family_traits(
    num_frames: int,
    blind: bool,
    multiple: int,
    tile_margin: int | None = None,
    color: bool = False,
    prealign: bool = False,
) -> ModelTraits:
    """KPN, MKPN and AME-KPN: a burst of ``num_frames`` (one frame: a single-image model);
    the tiler derives the margin from the receptive radius (``tile_margin=None``; an exported
    model gives the radius it was exported with); the colour variant sees the planes
    together; ``prealign``: it reads globally aligned bursts."""
    return ModelTraits(
        kind="single" if num_frames == 1 else "burst",
        frames=int(num_frames),
        tile_margin=tile_margin,
        blind=bool(blind),
        max_offset=None,
        size_multiple=int(multiple),
        independent_channels=not color,
        prealign=bool(prealign),
    )


def config_traits(args: dict) -> ModelTraits:
    """The traits of ``kpn`` / ``mkpn`` / ``ame_kpn`` from their constructor arguments."""
    widths = size_config(SIZES, args["size"])["widths"]
    multiple = 2 ** (len(widths) - 1)
    return kpn_family_traits(
        args["num_frames"],
        args["blind"],
        multiple,
        color=bool(args.get("color", False)) or bool(args.get("shared_coarse", False)),
        prealign=bool(args.get("prealign", False)),
    )


class KernelPredictionNet(nn.Module):
    """One class for KPN, MKPN and every AME-KPN ablation ([AME-KPN] Table 2).

    Args:
        num_frames: burst length N the network is built for (1 gives the "1-frame" KPN, which
            uses only the reference of any burst).
        kernel_sizes: ``(5,)`` for KPN 5x5, ``(21,)`` for KPN 21x21, ``(1, 3, 5, 7, 9)`` for
            MKPN (each size reads its centred square window; their outputs are summed).
        widths, num_convs: U-Net encoder widths and convolutions per block.
        channel_attention, spatial_attention: CBAM modules in the decoder blocks (eq. 5-6).
        residual: predict residuals R and weights W and merge by eq. (4).
        blind: no noise-map input ("sigma-blind").
        direct: predict pixels with three extra conv layers instead of kernels.
        unit_kernels: project every frame's kernel onto taps summing to one (add
            ``(1 - sum K_i) / taps`` to each tap), so that the kernel path of eq. (4) keeps the
            brightness of its frame whatever the head predicts. Our addition, not the papers':
            without it the trained AME-KPN drifted to kernels summing to about 4 balanced by
            weights W of about 0.3, which shifts dark content (issue 22).
        burst_unit_kernels: project the kernels of all frames of a plane *together* onto taps
            summing to N (add ``(N - sum_i sum_t K_i) / (N T)`` to each tap), so that the
            kernel path, the frames' mean of ``X_i (*) K_i``, is a weighted average of the
            plane's own samples: it keeps the brightness of a flat region whatever the head
            predicts, while the shares of the frames stay free (``unit_kernels`` fixes each at
            1/N). Our addition, issue 25: the colour variant's kernel path brightens dark
            channels beside bright ones (training/README.md). Excludes ``unit_kernels``.
            Meant for ``residual=False``: with eq. (4) each frame's W_i weighs its own
            filtered image, so unequal W_i undo the projection (tried: training/README.md).
        color: the colour variant (module docstring): one network pass for R, G and B, kernels
            per frame and channel. Without it (the papers' way) the planes are separate batch
            items, so tiled inference may run them one at a time.
        shared_coarse: the planes of a colour burst share the U-Net's coarser levels (module
            docstring): two thirds of the per-plane multiply-adds for RGB, the per-plane model's
            weights, and its output on grey. Excludes ``color``.
        prealign: the network reads bursts aligned to the reference by whole pixels (the
            runner moves every frame by the rounded global shift it measures) and is trained
            on bursts whose frames are off by at most half a pixel, plus the paper's large
            offsets as the motion alignment cannot fix. Our addition: with the paper's input
            (every frame up to 2 px off) the cpu-size network learnt to rely on the reference
            and blur the other frames, 4-6 dB below a plain mean on a static burst at Gain 1
            (issue 22). It changes what the network is fed, not its weights' shapes.
    """

    COLORS = 3  # planes the colour variant sees together

    def __init__(
        self,
        *,
        num_frames: int = 8,
        kernel_sizes: Sequence[int] = (5,),
        widths: Sequence[int] = SIZES["cpu"]["widths"],
        num_convs: int = SIZES["cpu"]["num_convs"],
        channel_attention: bool = False,
        spatial_attention: bool = False,
        residual: bool = False,
        blind: bool = False,
        direct: bool = False,
        unit_kernels: bool = False,
        burst_unit_kernels: bool = False,
        color: bool = False,
        prealign: bool = False,
        shared_coarse: bool = False,
    ) -> None:
        super().__init__()
        if num_frames < 1:
            raise InputError(f"num_frames must be >= 1, got {num_frames}")
        if any(k < 1 or k % 2 == 0 for k in kernel_sizes) or not kernel_sizes:
            raise InputError(f"kernel sizes must be odd and positive, got {tuple(kernel_sizes)}")
        if direct and residual:
            raise InputError("the direct variant predicts pixels: it has no residual branch")
        if unit_kernels and burst_unit_kernels:
            raise InputError("unit_kernels and burst_unit_kernels exclude each other")
        if color and shared_coarse:
            raise InputError("color and shared_coarse are two colour models: choose one")
        self.num_frames = num_frames
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.taps = sum(k * k for k in self.kernel_sizes)
        self.residual = residual
        self.blind = blind
        self.direct = direct
        self.unit_kernels = unit_kernels
        self.burst_unit_kernels = bool(burst_unit_kernels)
        self.color = bool(color)
        self.prealign = bool(prealign)
        self.shared_coarse = bool(shared_coarse)
        self.independent_channels = not (self.color or self.shared_coarse)
        k = self.planes
        in_ch = k * num_frames + (0 if blind else k)
        self.backbone = UNet(in_ch, widths, num_convs, channel_attention, spatial_attention)
        f = self.backbone.out_channels
        if direct:
            # [KPN] "direct": three additional conv layers synthesise the pixels
            self.head = nn.Sequential(conv_block(f, f, 2), nn.Conv2d(f, k, 3, padding=1))
        else:
            # head channels are plane-major: plane p, frame i, tap t at (p * N + i) * T + t
            n_out = k * num_frames * self.taps + (k * num_frames if residual else 0)
            self.kr_head = nn.Conv2d(f, n_out, 3, padding=1)  # M_kr, eq. (2)
            w_out = k * num_frames
            self.w_head = nn.Conv2d(f, w_out, 3, padding=1) if residual else None  # M_w (3)
            self._init_heads()
        self.config: dict = {}  # name + constructor kwargs, filled by the constructors

    @property
    def planes(self) -> int:
        """Colour planes one batch item of the network holds: 3 for the colour variant, else 1."""
        return self.COLORS if self.color else 1

    @property
    def traits(self) -> ModelTraits:
        return kpn_family_traits(
            self.num_frames,
            self.blind,
            self.backbone.multiple,
            color=self.color or self.shared_coarse,
            prealign=self.prealign,
        )

    def features(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """The U-Net's output on the network input ``x`` of ``batch`` bursts (eq. 1's M_e)."""
        if self.shared_coarse:
            return shared_coarse_features(self.backbone, x, batch)
        return self.backbone(x)

    def _init_heads(self) -> None:
        """Start near the plain burst mean: small head weights and a bias of 1 on the centre
        tap of the smallest kernel of every frame (our choice; the papers do not say)."""
        kernels = self.planes * self.num_frames
        init_centre_taps(self.kr_head, self.kernel_sizes[0], kernels, self.taps)
        if self.w_head is not None:
            with torch.no_grad():
                self.w_head.weight.mul_(0.1)
                self.w_head.bias.fill_(2.0)  # sigmoid(2) = 0.88: mostly the kernel path

    def _fuse_matrix(self, like: torch.Tensor) -> torch.Tensor:
        """:func:`~burstkpn.models.heads.fuse_matrix` of this model's kernel sizes."""
        return fuse_matrix(self.kernel_sizes, like)

    def _predict_kernels(self, feat: torch.Tensor) -> torch.Tensor:
        """Kernels K of eq. (2), ``(B*C, N * Kmax^2, Hp, Wp)`` (the colour variant:
        ``(B, 3 * N * Kmax^2, Hp, Wp)``, plane-major); several kernel sizes (MKPN) summed
        into one ``Kmax x Kmax`` kernel (:func:`~burstkpn.models.heads.kernel_filters`)."""
        kernels = self.planes * self.num_frames
        weight, bias = kernel_filters(self.kr_head, self.kernel_sizes, kernels)
        return F.conv2d(feat, weight, bias, padding=1)

    def forward(
        self,
        burst: torch.Tensor,
        noise_map: torch.Tensor | None = None,
        *,
        return_aux: bool = False,
    ) -> DenoiseOutput:
        """``image``, the per-frame predictions Y_i as ``frames`` (``None`` for ``direct``)
        and, with ``return_aux``, ``kernels`` ``(B, N, C, T, H, W)``, ``filtered``
        (X_i (*) K_i), ``weights`` (sigmoid W_i) and ``residuals`` (R_i), each
        ``(B, N, C, H, W)``."""
        x = self.network_input(burst, noise_map)  # checks the shapes
        b, c, h, w = burst.shape[0], *burst.shape[2:]
        return self.predict(x, self.features(x, b), (b, c, h, w), return_aux=return_aux)

    def network_input(
        self, burst: torch.Tensor, noise_map: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The U-Net's input of eq. (1): the frames of every colour plane (a batch item each)
        and the noise map, padded to the pooling multiple, ``(B*C, N [+1], Hp, Wp)``. The
        colour variant stacks the planes instead, ``(B, 3 N [+3], Hp, Wp)`` (plane-major; a
        grey burst is repeated to three planes and its output averaged back)."""
        burst = model_frames(burst, self.num_frames)
        b, n, c, h, w = burst.shape
        if self.color:
            if c not in (1, self.COLORS):
                raise InputError(f"the colour variant takes RGB or grey bursts, got {c} channels")
            burst = burst.expand(b, n, self.COLORS, h, w)
        planes = burst.transpose(1, 2)  # (B, C, N, H, W)
        # colour: one block (B, 3, N, H, W) -> 3N channels, plane-major; else planes as items
        inputs = [planes if self.color else planes.reshape(b * c, n, h, w)]
        if not self.blind:
            if self.color:
                noise = check_noise_map(noise_map, (b, c, h, w)).expand(b, self.COLORS, h, w)
            else:
                noise = noise_planes(noise_map, (b, c, h, w))
            inputs.append(noise)
        # eq. (1) input, stacked, padded and laid out in one pass
        return conv_input(inputs, self.backbone.multiple, self.backbone.encoder[0][0].weight)

    def predict(
        self,
        x: torch.Tensor,
        feat: torch.Tensor,
        shape: tuple[int, int, int, int],
        *,
        return_aux: bool = False,
    ) -> DenoiseOutput:
        """The heads on the U-Net features ``feat`` of input ``x`` (:meth:`network_input`):
        kernels K and residuals R (eq. 2), weights W (eq. 3), merged by eq. (4); ``shape``:
        the burst's ``(B, C, H, W)`` before padding."""
        b, c, h, w = shape
        n = self.num_frames
        k = self.COLORS if self.color else c  # planes per burst as the network ran them
        if self.direct:
            image = self.head(feat)[..., :h, :w].float().reshape(b, k, h, w)
            image = image.mean(1, keepdim=True) if k != c else image  # grey in a colour model
            return DenoiseOutput(image, None, {} if return_aux else None)

        hp, wp = x.shape[-2:]
        bc = b * k  # plane-major head channels of the colour variant reshape to the same layout
        heads = head_outputs(feat, self.kr_head, self.w_head, self.kernel_sizes, self.planes * n)
        kernels = heads.kernels.reshape(bc, n, -1, hp, wp)
        if self.unit_kernels:  # every frame's kernel sums to one
            kernels = project_kernel_sum(kernels, (2,), 1.0)
        elif self.burst_unit_kernels:  # all frames of a plane together sum to N
            kernels = project_kernel_sum(kernels, (1, 2), float(n))
        frames_p = x[:, : n * self.planes].float().reshape(bc, n, 1, hp, wp)  # X_i per plane
        with stage("kernel application"):
            filtered = apply_kernels(frames_p, kernels)  # X_i (*) K_i
        if self.residual:
            residuals = heads.residuals.reshape(bc, n, 1, hp, wp)
            weights = torch.sigmoid(heads.logits).reshape(bc, n, 1, hp, wp)
            per_frame = weights * filtered + (1 - weights) * residuals  # eq. (4)
        else:
            per_frame = filtered

        def planes(t: torch.Tensor) -> torch.Tensor:
            """``(B*k, N, ...)`` -> ``(B, N, C, ...)``; a grey burst in the colour variant is
            the mean of the three identical-input planes."""
            t = unfold_channels(t, b)
            return t.mean(2, keepdim=True) if k != c else t

        per_frame = planes(per_frame[..., 0, :h, :w])  # (B, N, C, H, W)
        aux = None
        if return_aux:
            aux = {
                "kernels": planes(kernels[..., :h, :w]),
                "filtered": planes(filtered[..., 0, :h, :w]),
            }
            if self.residual:
                aux["weights"] = planes(weights[..., 0, :h, :w])
                aux["residuals"] = planes(residuals[..., 0, :h, :w])
        return DenoiseOutput(per_frame.mean(1), per_frame, aux)


def _build(name: str, args: dict) -> KernelPredictionNet:
    """A KPN-family model from its constructor's arguments (:func:`~burstkpn.models.common.
    build`); the one ``kernel_size`` of KPN and AME-KPN is the class's ``kernel_sizes``."""
    if "kernel_size" not in args:
        return build(KernelPredictionNet, name, SIZES, args)
    sizes = (args["kernel_size"],)
    return build(KernelPredictionNet, name, SIZES, args, skip=("kernel_size",), kernel_sizes=sizes)


def kpn(
    size: str = "cpu",
    *,
    num_frames: int = 8,
    kernel_size: int = 5,
    blind: bool = False,
    direct: bool = False,
    unit_kernels: bool = False,
    burst_unit_kernels: bool = False,
    color: bool = False,
    prealign: bool = False,
    shared_coarse: bool = False,
) -> KernelPredictionNet:
    """KPN (Mildenhall et al.): one K x K kernel per frame and pixel. ``num_frames=1`` gives
    the 1-frame variant, ``blind=True`` the sigma-blind one, ``direct=True`` the direct one,
    ``color=True`` our colour variant (module docstring)."""
    return _build("kpn", dict(locals()))


def mkpn(
    size: str = "cpu",
    *,
    num_frames: int = 8,
    kernel_sizes: Sequence[int] = (1, 3, 5, 7, 9),
    blind: bool = False,
    unit_kernels: bool = False,
    burst_unit_kernels: bool = False,
    color: bool = False,
    prealign: bool = False,
    shared_coarse: bool = False,
) -> KernelPredictionNet:
    """MKPN (Marinč et al.): kernels of sizes 1, 3, 5, 7 and 9 per frame and pixel."""
    args = {**locals(), "kernel_sizes": [int(k) for k in kernel_sizes]}
    return _build("mkpn", args)


def ame_kpn(
    size: str = "cpu",
    *,
    num_frames: int = 8,
    kernel_size: int = 5,
    channel_attention: bool = True,
    spatial_attention: bool = True,
    residual: bool = True,
    blind: bool = False,
    unit_kernels: bool = False,
    burst_unit_kernels: bool = False,
    color: bool = False,
    prealign: bool = False,
    shared_coarse: bool = False,
) -> KernelPredictionNet:
    """AME-KPN ([AME-KPN]). The three switches give Models 1-6 of Table 2; all on is the
    full AME-KPN (Model 6), all off is KPN (Model 1). ``color=True``: our colour variant;
    ``shared_coarse=True``: our colour model with shared coarse levels (module docstring)."""
    return _build("ame_kpn", dict(locals()))


# [AME-KPN] Table 2: (channel attention, spatial attention, residual map)
TABLE2_CONFIGS: dict[int, dict[str, bool]] = {
    1: {"channel_attention": False, "spatial_attention": False, "residual": False},
    2: {"channel_attention": True, "spatial_attention": False, "residual": False},
    3: {"channel_attention": False, "spatial_attention": True, "residual": False},
    4: {"channel_attention": True, "spatial_attention": True, "residual": False},
    5: {"channel_attention": False, "spatial_attention": False, "residual": True},
    6: {"channel_attention": True, "spatial_attention": True, "residual": True},
}
