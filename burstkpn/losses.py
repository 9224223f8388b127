"""Training losses of [AME-KPN] section 2.3 (after Mildenhall et al.).

Basic loss, eq. (7), on sRGB-gamma-corrected images Gamma ([DeformKernels] eq. 8):

    l(Y, Y_gt) = || Gamma(Y) - Gamma(Y_gt) ||_2^2 + lambda || grad Gamma(Y) - grad Gamma(Y_gt) ||_1

(both terms as means over pixels; grad = horizontal and vertical forward differences).
Annealed loss, eq. (8): L = l(Y, Y_gt) + beta * alpha^t * sum_i l(Y_i, Y_gt), with the
per-frame predictions Y_i, alpha = 0.9998, beta = 100 and t the optimisation step.
Gamma is applied without clipping (it is linear below zero), so gradients reach
out-of-range predictions.

Optional coarse term (ours, not the papers'; ``coarse_weight``, default 0): ``mu || B(Gamma(Y))
- B(Gamma(Y_gt)) ||_1`` with ``B`` the mean over 4x4 blocks. The gradient term of eq. (7) sees
high frequencies and the L2 term is small beside it, so an error that is smooth over a few
pixels (the low-frequency "blotches" of the noise a burst can average away) weighs little in
eq. (7); the coarse term weighs it like the gradient term weighs edges (issue 23).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from burstkpn.data.io.images import linear_to_srgb

ALPHA = 0.9998
BETA = 100.0
GRAD_WEIGHT = 1.0  # lambda of eq. (7); the papers do not give a value
COARSE_SCALE = 4  # block size of the optional coarse term (module docstring)


def _gamma(x: torch.Tensor) -> torch.Tensor:
    """Gamma (the sRGB encoding, unclipped) in at least float32: bfloat16 / float16 (autocast)
    are computed in float32, float32 / float64 stay."""
    return linear_to_srgb(x.float() if x.dtype in (torch.float16, torch.bfloat16) else x)


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along height and width."""
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


def block_means(x: torch.Tensor, scale: int = COARSE_SCALE) -> torch.Tensor:
    """Means over ``scale`` x ``scale`` blocks of ``(..., H, W)`` (a partial last block is
    left out)."""
    h, w = x.shape[-2:]
    means = F.avg_pool2d(x.reshape(-1, 1, h, w), scale)
    return means.reshape(*x.shape[:-2], h // scale, w // scale)


def basic_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    grad_weight: float = GRAD_WEIGHT,
    coarse_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Eq. (7) on linear-light images of any matching shape ``(..., H, W)``; returns the
    terms ``l2``, ``grad`` and their weighted sum ``loss``. ``coarse_weight`` > 0 adds the
    coarse term of the module docstring (returned as ``coarse``) to ``loss``."""
    gp, gt = _gamma(pred), _gamma(target)
    l2 = (gp - gt).pow(2).mean()
    dyp, dxp = image_gradients(gp)
    dyt, dxt = image_gradients(gt)
    grad = 0.5 * ((dyp - dyt).abs().mean() + (dxp - dxt).abs().mean())
    out = {"l2": l2, "grad": grad, "loss": l2 + grad_weight * grad}
    if coarse_weight > 0:
        out["coarse"] = (block_means(gp) - block_means(gt)).abs().mean()
        out["loss"] = out["loss"] + coarse_weight * out["coarse"]
    return out


def anneal_weight(step: int, alpha: float = ALPHA, beta: float = BETA) -> float:
    """beta * alpha^t of eq. (8)."""
    return beta * alpha ** max(int(step), 0)


def _annealed(
    loss: torch.Tensor,
    items: torch.Tensor | None,
    target: torch.Tensor,
    weight: float,
    item_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The annealed term of eq. (8) (and of [DeformKernels] eq. 11): ``sum_i l(Y_i, Y_gt)``
    over the ``items`` ``(B, N, C, H, W)`` (per-frame or per-group predictions), and the total
    ``loss + weight * sum``; without items, 0 and ``loss``."""
    if items is None:
        return torch.zeros(()), loss
    # sum over items of per-item means == N x the mean over all items (equal sizes)
    term = items.shape[1] * item_loss(items, target.unsqueeze(1).expand_as(items))
    return term, loss + weight * term


def annealed_loss(
    image: torch.Tensor,
    frames: torch.Tensor | None,
    target: torch.Tensor,
    step: int,
    *,
    alpha: float = ALPHA,
    beta: float = BETA,
    grad_weight: float = GRAD_WEIGHT,
    coarse_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Eq. (8). ``image`` / ``target`` ``(B, C, H, W)``, ``frames`` ``(B, N, C, H, W)`` or
    ``None`` (models without per-frame predictions: then L = l). Returns ``loss`` (total),
    ``basic``, ``l2``, ``grad`` (and ``coarse`` when ``coarse_weight`` > 0), ``frames``
    (sum_i l(Y_i, Y_gt)) and ``anneal_weight``. ``l`` is eq. (7) with the coarse term."""
    terms = basic_loss(image, target, grad_weight, coarse_weight)
    weight = anneal_weight(step, alpha, beta)
    out = {"basic": terms["loss"]} | {k: v for k, v in terms.items() if k != "loss"}
    out["anneal_weight"] = torch.tensor(weight)
    frames = None if beta == 0 else frames
    out["frames"], out["loss"] = _annealed(
        terms["loss"],
        frames,
        target,
        weight,
        lambda y, t: basic_loss(y, t, grad_weight, coarse_weight)["loss"],
    )
    return out


class AnnealedLoss(nn.Module):
    """Thin module around :func:`annealed_loss`; the caller passes the step t."""

    def __init__(
        self, alpha: float = ALPHA, beta: float = BETA, grad_weight: float = GRAD_WEIGHT
    ) -> None:
        super().__init__()
        self.alpha, self.beta, self.grad_weight = alpha, beta, grad_weight

    def forward(self, output, target: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        return annealed_loss(
            output.image,
            output.frames,
            target,
            step,
            alpha=self.alpha,
            beta=self.beta,
            grad_weight=self.grad_weight,
        )


# --------------------------------------------------------------------------- single-image
RESTORATION_LOSSES = ("mse", "gamma_l1")


def restoration_loss(
    pred: torch.Tensor, target: torch.Tensor, kind: str = "mse"
) -> dict[str, torch.Tensor]:
    """Losses of the single-image restoration tasks on linear-light ``(..., H, W)`` images,
    both measured on the sRGB encoding Gamma (no clipping, as above):

    - ``mse``: [DCN-LKA] eq. (7), MSE = 1/N sum_i (y_i - y^_i)^2 over all values; the paper
      trains on sRGB images (GoPro, SIDD), so y are sRGB-encoded values;
    - ``gamma_l1``: [DeformKernels] eq. (9), || Gamma(Y) - Gamma(Y_gt) ||_1 (as a mean).

    Returns ``loss`` plus both terms (``mse``, ``l1``) for the logs."""
    if kind not in RESTORATION_LOSSES:
        raise ValueError(f"unknown loss '{kind}' (use one of {', '.join(RESTORATION_LOSSES)})")
    diff = _gamma(pred) - _gamma(target)
    terms = {"mse": diff.pow(2).mean(), "l1": diff.abs().mean()}
    terms["loss"] = terms["mse"] if kind == "mse" else terms["l1"]
    return terms


# --------------------------------------------------------------------------- deformable kernels
ETA = 100.0  # [DeformKernels] section 4: eta and gamma of eq. (11)
GAMMA = 0.9998


def gamma_l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[DeformKernels] eq. (9), ``l(Y, Y_gt) = || phi(Y) - phi(Y_gt) ||_1`` with ``phi`` the
    sRGB gamma correction of eq. (8), as a mean over all values of matching shapes (the norm up
    to the constant number of pixels). No clipping: ``phi`` is linear below 0.0031308 and for
    negative values, so gradients stay finite everywhere."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    diff = _gamma(pred) - _gamma(target)
    return diff.abs().mean()


def group_annealed_loss(
    image: torch.Tensor,
    groups: torch.Tensor | None,
    target: torch.Tensor,
    step: int,
    *,
    eta: float = ETA,
    gamma: float = GAMMA,
) -> dict[str, torch.Tensor]:
    """[DeformKernels] eq. (11): ``l(Y, Y_gt) + eta gamma^p sum_i l(Y_i, Y_gt)`` with ``l``
    eq. (9), ``Y_i`` the group predictions of eq. (10) and ``p`` the iteration.

    ``image`` / ``target`` ``(B, C, H, W)``, ``groups`` ``(B, s, C, H, W)`` (the ``frames`` of a
    ``deform3d`` output) or ``None`` (then the loss is eq. 9 alone, as for ``deform2d``). The paper
    writes ``l(Y_i, Y_gt)`` with a free ``i``; we sum over the ``s`` groups, like the per-frame
    term of eq. (8) above. Returns ``loss``, ``l1`` (eq. 9 on ``Y``), ``groups`` (the sum) and
    ``anneal_weight`` (``eta gamma^p``)."""
    l1 = gamma_l1_loss(image, target)
    weight = anneal_weight(step, gamma, eta)
    out = {"l1": l1, "anneal_weight": torch.tensor(weight)}
    groups = None if eta == 0 else groups
    if groups is not None and (
        groups.ndim != target.ndim + 1 or groups.shape[2:] != target.shape[1:]
    ):
        raise ValueError(
            f"group predictions {tuple(groups.shape)} do not fit target {tuple(target.shape)}"
        )
    out["groups"], out["loss"] = _annealed(l1, groups, target, weight, gamma_l1_loss)
    return out


class GroupAnnealedLoss(nn.Module):
    """Thin module around :func:`group_annealed_loss`; the caller passes the iteration p."""

    def __init__(self, eta: float = ETA, gamma: float = GAMMA) -> None:
        super().__init__()
        self.eta, self.gamma = eta, gamma

    def forward(self, output, target: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        return group_annealed_loss(
            output.image, output.frames, target, step, eta=self.eta, gamma=self.gamma
        )
