"""Clean clips for the video models (``deform3d``): ``2 tau + 1`` frames around a reference,
made from a photo with synthetic camera motion; and the frame order the models take.

Frame order. Clips are built in temporal order ``[X_-tau, ..., X_0, ..., X_tau]`` and handed out
in the package's burst order, reference first: ``[X_0, X_-tau, ..., X_-1, X_1, ..., X_tau]``
(:func:`burst_order`; the order ``deform3d`` takes, see
:func:`burstkpn.models.deformable.burst_to_clip`).

Motion from photos (:func:`sample_trajectory`): a smooth random global translation, in output
pixels, ``d(t) = v t + a t^2 / 2 + j_t`` for ``t = -tau..tau``: ``|v|`` uniform in
``[0, max_speed]`` px/frame at a uniform random angle, each component of ``a`` uniform in
``[-max_accel, max_accel]`` px/frame^2, and a per-frame jitter ``j_t`` uniform in
``[-jitter, jitter]`` px per component (``j_0 = 0``, so ``d(0) = 0``); with probability
``static_prob`` the camera does not drift (``v = a = 0``, jitter only). Frame t at output pixel
p shows the reference scene at ``p + d(t)``; frames are cut from the photo at its own resolution
with cubic B-splines (the interpolator of the subpixel burst synthesis,
:func:`burstkpn.data.degrade.synth._spline_crop`), so every frame is as sharp as the reference.

Clean clips from disk are found by :mod:`burstkpn.data.io.clips`; the training dataset that
cuts, augments and adds noise to both kinds is
:class:`~burstkpn.data.datasets.SyntheticClipDataset`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from burstkpn.data.degrade.synth import SPLINE_MARGIN, _spline_crop
from burstkpn.errors import InputError


# --------------------------------------------------------------------------- frame order
def burst_order(num_frames: int) -> list[int]:
    """Indices into a temporally ordered clip that give the burst order (centre frame first,
    then the others in temporal order), as :func:`~burstkpn.models.deformable.clip_to_burst`."""
    if num_frames < 1 or num_frames % 2 == 0:
        raise InputError(f"a clip needs an odd number of frames (2 tau + 1), got {num_frames}")
    tau = num_frames // 2
    return [tau, *range(tau), *range(tau + 1, num_frames)]


# --------------------------------------------------------------------------- motion
@dataclass(frozen=True)
class ClipMotion:
    """The random global translation of a synthetic clip (module docstring), in output pixels."""

    max_speed: float = 4.0  # px / frame: at tau = 2 up to 8 px, the deform3d offset limit
    max_accel: float = 0.5  # px / frame^2 per component
    jitter: float = 0.5  # px per component, per frame
    static_prob: float = 0.1  # probability of no drift (v = a = 0, jitter only)

    def reach(self, tau: int) -> float:
        """Largest displacement of any component over ``t = -tau..tau``."""
        return self.max_speed * tau + self.max_accel * tau * tau / 2 + self.jitter


DEFAULT_CLIP_MOTION = ClipMotion()


def sample_trajectory(
    tau: int, generator: torch.Generator, motion: ClipMotion = DEFAULT_CLIP_MOTION
) -> torch.Tensor:
    """Displacements ``(2 tau + 1, 2)`` float64, ``(dy, dx)`` per frame in temporal order, zero
    at the reference (row ``tau``). The random stream is always consumed the same way."""
    if tau < 0:
        raise InputError(f"tau must be >= 0, got {tau}")
    u = torch.rand(3, generator=generator, dtype=torch.float64)  # speed, angle, static
    accel = (torch.rand(2, generator=generator, dtype=torch.float64) * 2 - 1) * motion.max_accel
    jitter = torch.rand(2 * tau + 1, 2, generator=generator, dtype=torch.float64) * 2 - 1
    static = float(u[2]) < motion.static_prob
    speed = 0.0 if static else float(u[0]) * motion.max_speed
    accel = accel * (0.0 if static else 1.0)
    angle = float(u[1]) * 2 * math.pi
    v = torch.tensor([math.sin(angle), math.cos(angle)], dtype=torch.float64) * speed
    t = torch.arange(-tau, tau + 1, dtype=torch.float64)[:, None]
    jitter = jitter * motion.jitter
    jitter[tau] = 0.0
    return v * t + accel * t * t / 2 + jitter


def linear_trajectory(tau: int, speed: float, angle: float = 0.0) -> torch.Tensor:
    """Constant velocity ``speed`` px/frame at ``angle`` radians (0: along +x), no jitter."""
    v = torch.tensor([math.sin(angle), math.cos(angle)], dtype=torch.float64) * float(speed)
    return v * torch.arange(-tau, tau + 1, dtype=torch.float64)[:, None]


def motion_margin(reach: float) -> int:
    """Pixels of context a clip with displacements up to ``reach`` needs around its window."""
    return math.ceil(reach) + SPLINE_MARGIN


def crop_clip(
    image: torch.Tensor, trajectory: torch.Tensor, top: int, left: int, patch_size: int
) -> torch.Tensor:
    """Frames ``(F, C, P, P)`` (temporal order) of a linear image ``(C, H, W)``: frame t is the
    ``P x P`` window at ``(top, left) + trajectory[t]`` (cubic B-splines)."""
    return torch.stack(
        [
            _spline_crop(image, top + float(dy), left + float(dx), patch_size, patch_size)
            for dy, dx in trajectory.tolist()
        ]
    )


def synthesize_clip(
    image: torch.Tensor,
    generator: torch.Generator,
    tau: int = 2,
    patch_size: int = 128,
    motion: ClipMotion = DEFAULT_CLIP_MOTION,
    trajectory: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A clean clip ``(2 tau + 1, C, P, P)`` (temporal order) from a linear image ``(C, H, W)``:
    a trajectory drawn from ``motion`` (unless given), then a uniformly random window position
    that keeps every frame inside the image. Returns the clip and the trajectory."""
    if trajectory is None:
        trajectory = sample_trajectory(tau, generator, motion)
    margin = motion_margin(float(trajectory.abs().max()))
    h, w = image.shape[-2:]
    if min(h, w) < patch_size + 2 * margin:
        raise InputError(
            f"image of {w}x{h} px is too small for a clip of {patch_size} px with "
            f"{float(trajectory.abs().max()):.1f} px of motion (needs {patch_size + 2 * margin})"
        )
    top = int(torch.randint(margin, h - patch_size - margin + 1, (1,), generator=generator))
    left = int(torch.randint(margin, w - patch_size - margin + 1, (1,), generator=generator))
    return crop_clip(image, trajectory, top, left, patch_size), trajectory
