"""Training clips for deform3d (``SyntheticClipDataset``): sources, frame order, seeding."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from burstkpn.data.datasets import SyntheticClipDataset
from burstkpn.data.io.images import linear_to_srgb
from burstkpn.errors import InputError
from tests.data.io.test_clips import make_clip_folder


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
