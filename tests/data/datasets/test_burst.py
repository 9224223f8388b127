"""Synthetic training bursts (``burstkpn.data.datasets.SyntheticBurstDataset``)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from burstkpn.data.datasets import SyntheticBurstDataset
from burstkpn.errors import InputError


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


def test_recolouring_changes_the_colours_only(photo_folder):
    """color_gains / channel_shuffle recolour the clean burst from a stream of their own:
    position, motion and noise levels stay those of the plain item; RGB bursts only."""
    kw = dict(patch_size=32, num_frames=4, length=3, seed=2, channels=3)
    plain = SyntheticBurstDataset(photo_folder, **kw)
    halved = SyntheticBurstDataset(photo_folder, **kw, color_gains=(0.5, 0.5))
    mixed = SyntheticBurstDataset(photo_folder, **kw, color_gains=(0.2, 1.0), channel_shuffle=True)
    for i in range(3):
        a, b, c = plain[i], halved[i], mixed[i]
        assert torch.allclose(b["clean"], 0.5 * a["clean"], atol=1e-7)
        assert torch.equal(a["offsets"], c["offsets"])
        assert float(a["sigma_r"]) == float(c["sigma_r"]) and float(a["sigma_s"]) == float(
            c["sigma_s"]
        )
        assert not torch.equal(a["clean"], c["clean"])
        assert torch.equal(c["clean"], mixed[i]["clean"])  # seeded
    with pytest.raises(InputError, match="need RGB bursts"):
        SyntheticBurstDataset(photo_folder, patch_size=32, channels="random", channel_shuffle=True)


@pytest.mark.parametrize("channels", ["random", 3, 1])
def test_camera_fraction_zero_leaves_items_unchanged(photo_folder, channels):
    """camera_fraction = 0 draws nothing more: items are bit-identical to those made without
    the camera options; with 0.5 the items that are not camera items are unchanged too."""
    kw = dict(patch_size=24, num_frames=4, length=6, seed=7, channels=channels)
    plain = SyntheticBurstDataset(photo_folder, **kw)
    zero = SyntheticBurstDataset(photo_folder, **kw, camera_fraction=0.0, camera_jpeg=None)
    half = SyntheticBurstDataset(photo_folder, **kw, camera_fraction=0.5)
    cameras = 0
    for i in range(6):
        a, b, c = plain[i], zero[i], half[i]
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert torch.equal(a["offsets"], c["offsets"])
        if half._draw_camera(i) is None:
            assert all(torch.equal(a[k], c[k]) for k in a)
        else:
            cameras += 1
            assert not torch.equal(a["noisy"], c["noisy"])
    assert 0 < cameras < 6


@pytest.mark.parametrize("channels", ["random", 3, 1, None])
def test_camera_items(photo_folder, channels):
    """camera_fraction = 1: developed frames in linear light, the clean reference of the
    independent item, a noise map from the fitted line; items batch with independent ones."""
    kw = dict(patch_size=32, num_frames=4, length=8, seed=3, channels=channels)
    plain = SyntheticBurstDataset(photo_folder, **kw)
    cam = SyntheticBurstDataset(photo_folder, **kw, camera_fraction=1.0, camera_jpeg=(80, 90))
    for i in range(8):
        a, b = plain[i], cam[i]
        assert set(a) == set(b)
        assert b["noisy"].shape == a["noisy"].shape and b["noise_map"].shape == a["clean"].shape
        assert torch.allclose(b["clean"], a["clean"], atol=1e-6)
        assert torch.equal(a["offsets"], b["offsets"])
        assert 0 <= b["noisy"].min() and b["noisy"].max() <= 1
        assert torch.isfinite(b["noise_map"]).all() and b["noise_map"].min() >= 0
        assert b["sigma_r"].dtype == b["sigma_s"].dtype == torch.float32
        assert b["sigma_r"].ndim == 0 and b["sigma_r"] >= 0 and b["sigma_s"] >= 0
        assert float(b["noise_map"].max()) > 0
    assert torch.equal(cam[2]["noisy"], cam[2]["noisy"])  # seeded
    if channels is not None:  # (None keeps the gray photo's single channel: no batches)
        mixed = SyntheticBurstDataset(photo_folder, **kw, camera_fraction=0.5)
        batch = next(iter(DataLoader(mixed, batch_size=8)))
        assert batch["noisy"].shape[:2] == (8, 4) and torch.isfinite(batch["noisy"]).all()
    with pytest.raises(InputError, match="camera_fraction"):
        SyntheticBurstDataset(photo_folder, **kw, camera_fraction=1.5)
    with pytest.raises(InputError, match="camera_jpeg"):
        SyntheticBurstDataset(photo_folder, **kw, camera_jpeg=(95, 70))


def test_band_limit_makes_subpixel_neighbours_translates_of_the_reference():
    """Box-downsampled at a quarter-pixel offset, a sharp image is not a translate of its
    zero-offset cut (aliasing); after a Gaussian prefilter it nearly is."""
    import torch.nn.functional as F

    from burstkpn.data.degrade.synth import band_limit
    from burstkpn.ops.align import spline_shift

    image = torch.rand(1, 300, 300, generator=torch.Generator().manual_seed(0))
    assert torch.equal(band_limit(image, 0.0), image)

    def mismatch(img: torch.Tensor) -> float:
        cut = img[:, 20:276, 20:276]
        ref = F.avg_pool2d(cut[None], 4)[0]
        moved = F.avg_pool2d(img[None, :, 21:277, 22:278], 4)[0]  # (1/4, 2/4) px off
        back = spline_shift(moved, (0.25, 0.5))
        return float((back - ref)[..., 6:-6, 6:-6].pow(2).mean().sqrt() / ref.mean())

    plain, filtered = mismatch(image), mismatch(band_limit(image, 3.0))
    assert plain > 0.02 and filtered < 0.2 * plain


def test_prefilter_changes_only_the_picture_not_the_draws(photo_folder):
    kw = dict(patch_size=12, num_frames=4, length=3, seed=2, mode="full")
    plain = SyntheticBurstDataset(photo_folder, **kw)
    again = SyntheticBurstDataset(photo_folder, **kw, prefilter=0.0)
    soft = SyntheticBurstDataset(photo_folder, **kw, prefilter=2.0)
    for i in range(3):
        a, b, c = plain[i], again[i], soft[i]
        assert torch.equal(a["noisy"], b["noisy"])
        assert torch.equal(a["offsets"], c["offsets"]) and a["sigma_r"] == c["sigma_r"]
        assert not torch.equal(a["clean"], c["clean"])
    with pytest.raises(InputError, match="prefilter"):
        SyntheticBurstDataset(photo_folder, **kw, prefilter=-1.0)
