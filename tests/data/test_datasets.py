from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from burstkpn.data.datasets import SyntheticBurstDataset, derive_seed, match_channels
from burstkpn.errors import InputError
from tests.conftest import gen


def test_items_shapes_and_ranges(photo_folder):
    ds = SyntheticBurstDataset(photo_folder, patch_size=32, num_frames=8, length=6, seed=1)
    item = ds[0]
    assert item["noisy"].shape == (8, 3, 32, 32)
    assert item["clean"].shape == item["noise_map"].shape == (3, 32, 32)
    assert item["offsets"].shape == (8, 2)
    assert 1e-3 <= item["sigma_r"] <= 10**-1.5 + 1e-9
    assert 0 <= item["clean"].min() and item["clean"].max() <= 1


def test_deterministic_and_independent_of_workers(photo_folder):
    ds = SyntheticBurstDataset(photo_folder, patch_size=24, length=8, seed=3)
    serial = [ds[i]["noisy"] for i in range(8)]
    again = [ds[i]["noisy"] for i in reversed(range(8))][::-1]  # order does not matter
    assert all(torch.equal(a, b) for a, b in zip(serial, again, strict=True))
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    batched = torch.cat([b["noisy"] for b in loader])
    assert batched.shape == (8, 8, 3, 24, 24)
    assert torch.equal(batched, torch.stack(serial))
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["noisy"], serial[0])
    ds.set_epoch(0)
    assert torch.equal(ds[0]["noisy"], serial[0])


def test_embedded_default_source():
    ds = SyntheticBurstDataset(None, patch_size=64, length=2)
    assert len(ds.refs) >= 4 and ds[1]["noisy"].shape == (8, 3, 64, 64)


def test_bad_sources(tmp_path, photo_folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images"):
        SyntheticBurstDataset(empty, patch_size=32)
    with pytest.raises(InputError, match="smaller than the patch"):
        SyntheticBurstDataset(photo_folder, patch_size=160)


def test_channel_matching():
    gray = torch.rand(1, 5, 5)
    assert torch.equal(match_channels(gray, 3)[2], gray[0])
    rgb = torch.rand(3, 5, 5)
    luma = match_channels(rgb, 1)
    assert luma.shape == (1, 5, 5)
    assert torch.allclose(luma[0], 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2])
    picks = {
        int((match_channels(rgb, "random", gen(i)) == rgb).all((1, 2)).nonzero()) for i in range(20)
    }
    assert picks == {0, 1, 2}


def test_derive_seed_stable():
    assert derive_seed(0, 1, 2) == derive_seed(0, 1, 2) != derive_seed(0, 2, 1)
    assert 0 <= derive_seed(12345) < 2**63


def test_exposure_range_scales_the_clean_burst_only(photo_folder):
    """An exposure factor scales the clean linear burst; position, motion and noise levels are
    those of the unscaled burst, and the noise map follows the scaled noisy reference."""
    kw = dict(patch_size=32, num_frames=4, length=3, seed=2)
    plain = SyntheticBurstDataset(photo_folder, **kw)
    dark = SyntheticBurstDataset(photo_folder, **kw, exposure_range=(0.25, 0.25))
    for i in range(3):
        a, b = plain[i], dark[i]
        assert torch.allclose(b["clean"], 0.25 * a["clean"], atol=1e-7)
        assert torch.equal(a["offsets"], b["offsets"])
        assert float(a["sigma_r"]) == float(b["sigma_r"])
        assert float(a["sigma_s"]) == float(b["sigma_s"])
        sigma = (b["sigma_r"] ** 2 + b["sigma_s"] * b["noisy"][:1].clamp_min(0)).sqrt()
        assert torch.allclose(b["noise_map"], sigma[0])
    ranged = SyntheticBurstDataset(photo_folder, **kw, exposure_range=(0.1, 0.5))
    for i in range(3):
        ratio = ranged[i]["clean"].sum() / plain[i]["clean"].sum()
        assert 0.1 - 1e-6 <= float(ratio) <= 0.5 + 1e-6
