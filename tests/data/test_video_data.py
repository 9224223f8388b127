"""Training clips for deform3d (``burstkpn.data.video``): motion, frame order, seeding."""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from burstkpn.data.video import (
    ClipMotion,
    SyntheticClipDataset,
    burst_order,
    crop_clip,
    find_clips,
    is_clip_folder,
    linear_trajectory,
    sample_trajectory,
    synthesize_clip,
)
from burstkpn.errors import InputError
from burstkpn.models.deformable import clip_to_burst
from tests.conftest import gen


def make_clip_folder(root: Path, frames: int = 7, size: tuple[int, int] = (40, 48)) -> Path:
    """Two clips whose frame k is a flat 8-bit image of value 20 (k + 1) (+ 1 in clip b), so a
    frame's value tells which frame it is."""
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for k in range(frames):
            img = np.full((*size, 3), 20 * (k + 1) + c, dtype=np.uint8)
            iio.imwrite(root / name / f"frame_{k + 1:03d}.png", img)
    return root


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


def test_clip_dataset_from_photos(photo_folder):
    ds = SyntheticClipDataset(photo_folder, patch_size=32, length=6, seed=1)
    item = ds[0]
    assert item["noisy"].shape == (5, 3, 32, 32)
    assert item["clean"].shape == item["noise_map"].shape == (3, 32, 32)
    assert item["motion"].shape == (5, 2) and torch.equal(item["motion"][0], torch.zeros(2))
    assert int(item["from_clip"]) == 0 and 1e-3 <= item["sigma_r"] <= 10**-1.5 + 1e-9
    expected = torch.sqrt(item["sigma_r"] ** 2 + item["sigma_s"] * item["noisy"][0].clamp_min(0))
    assert torch.allclose(item["noise_map"], expected)
    serial = [ds[i]["noisy"] for i in range(6)]
    again = [ds[i]["noisy"] for i in reversed(range(6))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(serial, again, strict=True))
    batched = torch.cat([b["noisy"] for b in DataLoader(ds, batch_size=3, num_workers=2)])
    assert torch.equal(batched, torch.stack(serial))
    with pytest.raises(InputError, match="too small"):
        SyntheticClipDataset(photo_folder, patch_size=150)


def test_clip_dataset_from_disk_keeps_the_frame_order(tmp_path):
    root = make_clip_folder(tmp_path / "clips")
    ds = SyntheticClipDataset(None, root, clip_fraction=1.0, patch_size=24, length=20, seed=0)
    assert len(ds.clips) == 2 and len(ds.windows) == 2 * 3 and not ds.images
    seen_reversed = set()
    for i in range(20):
        item = ds[i]
        assert int(item["from_clip"]) == 1 and torch.isnan(item["motion"]).all()
        # frame values 20 (k + 1) + c identify frames: centre first, then temporal order
        codes = _frame_codes(item["noisy"])
        centre = codes[0]
        others = codes[1:]
        steps = [o - centre for o in others]
        assert steps in ([-2, -1, 1, 2], [2, 1, -1, -2]), codes
        seen_reversed.add(steps[0] > 0)
        clean_code = _frame_codes(item["clean"][None])[0]
        assert clean_code == centre
    assert seen_reversed == {False, True}  # random temporal reversal


def _frame_codes(frames: torch.Tensor) -> list[int]:
    """Frame index k of the flat test frames (value 20 (k + 1) [+ 1]), from noisy means."""
    from burstkpn.data.images import linear_to_srgb

    values = linear_to_srgb(frames.mean(dim=(1, 2, 3)).clamp(0, 1)) * 255
    return [round(float(v) / 20) - 1 for v in values]


def test_clip_mix_and_sources(tmp_path, photo_folder):
    root = make_clip_folder(tmp_path / "clips")
    ds = SyntheticClipDataset(photo_folder, root, clip_fraction=0.5, patch_size=24, length=40)
    kinds = [int(ds[i]["from_clip"]) for i in range(40)]
    assert 5 < sum(kinds) < 35
    only_photos = SyntheticClipDataset(photo_folder, None, clip_fraction=0.5, patch_size=24)
    assert only_photos.clip_fraction == 0.0
    with pytest.raises(InputError, match="clip_fraction"):
        SyntheticClipDataset(photo_folder, root, clip_fraction=1.5)


def test_find_clips(tmp_path, photo_folder):
    root = make_clip_folder(tmp_path / "clips")
    clips = find_clips(root)
    assert [c.name for c in clips] == ["a", "b"] and len(clips[0].frames) == 7
    assert Path(clips[0].frames[0]).name == "frame_001.png"
    assert [c.name for c in find_clips(root / "a")] == ["a"]  # one frame folder
    assert is_clip_folder(root) and not is_clip_folder(photo_folder)
    assert not is_clip_folder(root / "a") and not is_clip_folder(None)
    with pytest.raises(InputError, match="8 or more frames"):
        find_clips(root, 8)
    with pytest.raises(InputError, match="not a folder"):
        find_clips(tmp_path / "nope")


def test_vid4_clips(shared_data):
    vid4 = shared_data / "video" / "vid4"
    if not vid4.is_dir():
        pytest.skip("vid4 not available")
    clips = find_clips(vid4)
    assert {c.name for c in clips} >= {"city", "walk"}
    assert is_clip_folder(vid4)
