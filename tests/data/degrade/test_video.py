"""Clean clips with synthetic motion (``burstkpn.data.degrade.video``): motion, frame order."""

from __future__ import annotations

import math

import pytest
import torch

from burstkpn.data.degrade.video import (
    ClipMotion,
    burst_order,
    crop_clip,
    linear_trajectory,
    sample_trajectory,
    synthesize_clip,
)
from burstkpn.errors import InputError
from burstkpn.models.deformable import clip_to_burst
from tests.conftest import gen


def test_burst_order_is_the_models_frame_order():
    clip = torch.arange(5.0).view(1, 5, 1, 1, 1)
    assert clip[0, burst_order(5)].flatten().tolist() == clip_to_burst(clip).flatten().tolist()
    assert burst_order(5) == [2, 0, 1, 3, 4] and burst_order(3) == [1, 0, 2]
    with pytest.raises(InputError, match="odd"):
        burst_order(4)


def test_trajectory_is_seeded_centred_and_bounded():
    motion = ClipMotion(max_speed=3.0, max_accel=0.5, jitter=0.25, static_prob=0.0)
    a = sample_trajectory(2, gen(4), motion)
    assert a.shape == (5, 2) and a.dtype == torch.float64
    assert torch.equal(a, sample_trajectory(2, gen(4), motion))
    assert not torch.equal(a, sample_trajectory(2, gen(5), motion))
    assert torch.equal(a[2], torch.zeros(2, dtype=torch.float64))
    reach = [float(sample_trajectory(2, gen(s), motion).abs().max()) for s in range(200)]
    assert max(reach) <= motion.reach(2) + 1e-9 and max(reach) > 4.0
    # smooth: the second difference is the acceleration plus jitter, far below the speed
    t = sample_trajectory(2, gen(7), ClipMotion(max_speed=4.0, max_accel=0.0, jitter=0.0))
    second = t[2:] - 2 * t[1:-1] + t[:-2]
    assert second.abs().max() < 1e-12
    still = sample_trajectory(2, gen(1), ClipMotion(jitter=0.0, static_prob=1.0))
    assert torch.equal(still, torch.zeros(5, 2, dtype=torch.float64))


def test_linear_trajectory_and_integer_crops_are_exact():
    t = linear_trajectory(2, 3.0, angle=math.pi / 2)  # along +y
    assert torch.allclose(t[:, 0], torch.tensor([-6.0, -3, 0, 3, 6], dtype=torch.float64))
    assert torch.allclose(t[:, 1], torch.zeros(5, dtype=torch.float64), atol=1e-12)
    image = torch.rand(3, 80, 90, generator=gen(0))
    clip = crop_clip(image, t.round(), 20, 25, 16)
    for k, dy in enumerate((-6, -3, 0, 3, 6)):
        assert torch.equal(clip[k], image[:, 20 + dy : 36 + dy, 25:41])


def test_synthesize_clip_frames_follow_the_motion():
    yy, xx = torch.meshgrid(torch.arange(120.0), torch.arange(130.0), indexing="ij")
    image = (0.5 + 0.2 * torch.sin(xx / 9) * torch.cos(yy / 7))[None]  # band-limited
    traj = linear_trajectory(2, 1.5, angle=0.3)
    clip, got = synthesize_clip(image, gen(2), 2, 32, trajectory=traj)
    assert torch.equal(got, traj) and clip.shape == (5, 1, 32, 32)
    # frame t shows the reference scene at p + d(t): shifting it back gives the reference
    from burstkpn.bench.methods import shift_frames

    back, _ = shift_frames(clip, -traj)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert (back[inner] - clip[2:3].double()[inner]).abs().max() < 2e-3
    with pytest.raises(InputError, match="too small"):
        synthesize_clip(image[:, :40, :40], gen(0), 2, 32, trajectory=traj)
