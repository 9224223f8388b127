"""Warm starts between KPN-family architectures (our additions, issue 25; not in the papers):
the colour variant from a per-plane model (:func:`color_from_planes`) and a kernel-only model
from one with eq. (4)'s residual path (:func:`kernels_from_residual`). ``burstkpn train
--init`` applies them (:mod:`burstkpn.train.checkpoint`)."""

from __future__ import annotations

import torch

from burstkpn.errors import InputError
from burstkpn.models.kpn import KernelPredictionNet


def _check_alike(a: KernelPredictionNet, b: KernelPredictionNet, what: str, but: str) -> None:
    """Refuse a warm start between models that differ in more than ``but``."""
    same = ("num_frames", "kernel_sizes", "residual", "color", "blind", "direct")
    if any(getattr(a, n) != getattr(b, n) for n in same if n != but):
        raise InputError(f"{what}: the two models differ in more than {but}")


@torch.no_grad()
def color_from_planes(plane: KernelPredictionNet, color: KernelPredictionNet) -> None:
    """Start the colour variant ``color`` from the per-plane model ``plane`` of the same
    architecture (our warm start, issue 25; not in the papers). The first convolution reads
    each input channel of ``plane`` as the mean of its three planes (its weights split in
    three), every other backbone layer is copied, and the heads predict the plane model's
    kernels, residuals and weights for each of R, G and B. So the warm-started variant is the
    plane model run on the mean of the planes, with its kernels applied to every plane: on a
    grey burst it gives the plane model's output exactly, and a fine-tune then learns colour."""
    if plane.color or not color.color or plane.direct:
        raise InputError("color_from_planes: needs a per-plane kernel model and a colour variant")
    _check_alike(plane, color, "color_from_planes", "color")
    src = plane.state_dict()
    dst = color.state_dict()
    k, n, t = color.COLORS, color.num_frames, color.taps
    first = "backbone.encoder.0.0.weight"
    for name, value in src.items():
        if name == first:  # eq. (1) input: N frames [+ noise] -> 3 N frames [+ 3 noise]
            frames = value[:, :n].repeat(1, k, 1, 1) / k  # plane-major, as network_input
            noise = value[:, n:].repeat(1, k, 1, 1) / k
            dst[name] = torch.cat([frames, noise], 1)
        elif name.startswith(("kr_head.", "w_head.")):
            # plane-major outputs: kr_head the kernels (p N + i) T + t, then the residuals
            # p N + i; w_head the weights p N + i. Each part repeated once per plane
            rep = (k,) + (1,) * (value.dim() - 1)
            cut = n * t if name.startswith("kr_head.") else 0
            dst[name] = torch.cat([value[:cut].repeat(rep), value[cut:].repeat(rep)])
        else:
            dst[name] = value
    color.load_state_dict(dst)


@torch.no_grad()
def kernels_from_residual(src: KernelPredictionNet, dst: KernelPredictionNet) -> None:
    """Start the kernel-only model ``dst`` (``residual=False``) from ``src``, the same model
    with eq. (4)'s residual path (our warm start, issue 25): the backbone and the kernel rows of
    the M_kr head are copied; the residual rows and the M_w head are dropped. ``dst`` then
    predicts the kernels ``src`` predicts and outputs their path alone (W = 1)."""
    if not src.residual or dst.residual:
        raise InputError("kernels_from_residual: needs a residual model and a kernel-only one")
    _check_alike(src, dst, "kernels_from_residual", "residual")
    rows = dst.kr_head.weight.shape[0]  # plane-major kernels first, residuals after them
    state = {k: v for k, v in src.state_dict().items() if not k.startswith("w_head.")}
    state["kr_head.weight"] = state["kr_head.weight"][:rows]
    state["kr_head.bias"] = state["kr_head.bias"][:rows]
    dst.load_state_dict(state)
