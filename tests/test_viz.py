"""Figures of [DeformKernels] for deform3d (``burstkpn.viz``): Fig. 9 (sampling locations
on the time dimension) and Fig. 10 (one learned kernel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from burstkpn.models import create_model
from burstkpn.models.deformable import burst_to_clip
from burstkpn.ops.deform import base_grid, deform_sample, sampling_positions
from burstkpn.viz import (
    figure_png,
    histogram_percent,
    kernel_taps,
    plot_kernels,
    plot_time_distribution,
    time_bins,
    time_histogram,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _aux(spread_time: bool = True, size: int = 20, seed: int = 0) -> dict:
    """A tiny deform3d with random weights; its offset head starts at zero (rigid kernels)."""
    torch.manual_seed(seed)
    model = create_model("deform3d", "tiny", spread_time=spread_time).eval()
    burst = torch.rand(2, 5, 3, size, size)
    with torch.no_grad():
        return model(burst, torch.full((2, 3, size, size), 0.05), return_aux=True).aux


def test_bins_centre_the_integer_frames():
    assert time_bins(2, 4).tolist() == [k / 4 for k in range(-8, 9)]
    assert time_bins(1, 1).tolist() == [-1.0, 0.0, 1.0]
    with pytest.raises(ValueError):
        time_bins(0)


@pytest.mark.parametrize("spread_time, frames", [(True, (-2, 0, 2)), (False, (-1, 0, 1))])
def test_rigid_grid_samples_whole_frames_in_equal_shares(spread_time, frames):
    """Zero offsets (the untrained offset head): each temporal slice of the 3x3x3 grid (9 of
    the 27 taps) lands exactly on its frame, so 100/3 % at each of the base grid's three frames
    and nothing in between, by count and by |F| alike."""
    aux = _aux(spread_time)
    assert torch.count_nonzero(aux["offsets"]) == 0
    percent, centres = time_histogram(aux["positions"])
    assert percent.sum() == pytest.approx(100.0)
    expect = np.where(np.isin(centres, frames), 100 / 3, 0.0)
    np.testing.assert_allclose(percent, expect, atol=1e-9)
    weighted, _ = time_histogram(aux["positions"], aux["weights"])
    assert weighted.sum() == pytest.approx(100.0)
    assert np.all(weighted[~np.isin(centres, frames)] == 0)
    assert np.all(weighted[np.isin(centres, frames)] > 0)
    # raw sums add over windows: 27 taps x 3 channels x 2 windows x H x W
    counts, _ = time_histogram(aux["positions"], normalize=False)
    assert counts.sum() == 27 * 3 * 2 * 20 * 20


def test_frame_coordinate_is_temporal_order_not_burst_order():
    """Time -2 is X_-2, burst frame 1 (the burst is [X_0, X_-2, X_-1, X_1, X_2]); taps beyond
    the clip read its end frames and are counted there; fractions go to the nearest bin."""
    burst = torch.arange(5.0).view(1, 5, 1, 1, 1).expand(1, 5, 1, 6, 6)
    base = base_grid(3, dims=3, time_positions=(-2.0, 0.0, 2.0))
    offsets = torch.zeros(1, 27, 3, 6, 6)
    offsets[:, :, 2] = (-2.0 - base[:, 2]).view(1, 27, 1, 1)  # every tap to time -2
    samples = deform_sample(burst_to_clip(burst), offsets, 3, time_positions=(-2.0, 0.0, 2.0))
    assert torch.all(samples == 1.0)  # burst frame 1
    percent, centres = time_histogram(sampling_positions(offsets, base))
    assert percent[centres == -2.0] == pytest.approx(100.0)
    pos = torch.zeros(1, 4, 3, 1, 1)
    pos[:, :, 2, 0, 0] = torch.tensor([0.3, -3.5, 2.6, -0.74])
    percent, centres = time_histogram(pos, torch.tensor([[1.0, -1.0, 2.0, 0.0]]).view(1, 4, 1, 1))
    assert dict(zip(centres.tolist(), percent.tolist(), strict=True)) == {
        **dict.fromkeys(centres.tolist(), 0.0),
        0.25: 25.0,
        -2.0: 25.0,
        2.0: 50.0,
        -0.75: 0.0,
    }
    with pytest.raises(ValueError, match="do not fit"):
        time_histogram(pos, torch.ones(1, 3, 1, 1))
    with pytest.raises(ValueError, match="axis -3"):
        time_histogram(torch.zeros(1, 4, 2, 1, 1))
    assert histogram_percent(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_kernel_taps_and_figures():
    aux = _aux(size=24)
    taps = kernel_taps(aux["positions"], aux["weights"], (10, 12), channel=1)
    assert {len(v) for v in taps.values()} == {27}
    assert set(taps["dx"]) == set(taps["dy"]) == {-1.0, 0.0, 1.0}
    assert sorted(set(taps["frame"])) == [-2.0, 0.0, 2.0]
    np.testing.assert_array_equal(taps["weight"], aux["weights"][0, 1, :, 10, 12].numpy())
    corner = kernel_taps(aux["positions"], aux["weights"], (0, 0))  # clamped to the image
    assert corner["x"].min() == 0 and corner["y"].min() == 0
    with pytest.raises(ValueError, match="outside"):
        kernel_taps(aux["positions"], aux["weights"], (24, 0))
    # a moved kernel: taps between frames are drawn on the nearest one
    pos = aux["positions"].clone()
    pos[0, 1, :, 2, 10, 12] = torch.linspace(-2.4, 2.4, 27)
    pos[0, 1, :, 0, 10, 12] += torch.linspace(-6, 6, 27)
    moved = kernel_taps(pos, aux["weights"], (10, 12), channel=1)
    assert moved["t"].min() == -2.0 and moved["t"].max() == 2.0
    assert np.array_equal(moved["frame"], np.floor(moved["t"] + 0.5))
    clip = np.random.default_rng(0).random((5, 24, 24, 3))
    fig = plot_kernels(clip, moved, (10, 12), title="one pixel")
    assert len(fig.axes) >= 13  # 2 x 5 patches + (c), (d), (e)
    assert figure_png(fig)[:8] == PNG
    assert figure_png(plot_kernels(clip[..., 0], corner, (0, 0)))[:8] == PNG  # grayscale
    percent, centres = time_histogram(pos)
    fig = plot_time_distribution(centres, {"low": percent, "high": percent}, base_times=[-2, 2])
    assert figure_png(fig)[:8] == PNG
