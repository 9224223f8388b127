"""benchmarks/real_score_check.py: synthetic static bursts without interpolation, and its
error measure."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tests.conftest import load_benchmark


def test_static_burst_frames_are_box_averages_at_whole_pixel_offsets():
    mod = load_benchmark("real_score_check")
    image = torch.rand(3, 96, 100, generator=torch.Generator().manual_seed(0))
    burst = mod.static_burst(image, 16, 5, 2, torch.Generator().manual_seed(1))
    assert burst.shape == (5, 3, 16, 16)
    # the reference is the 4x box of the centred window: no offset, no interpolation
    size = 16 * mod.DOWN
    y0, x0 = (96 - size) // 2, (100 - size) // 2
    ref = F.avg_pool2d(image[None, :, y0 : y0 + size, x0 : x0 + size], mod.DOWN)[0]
    torch.testing.assert_close(burst[0], ref)
    # every other frame is the box of a window moved by whole source pixels, within 2 output px
    for frame in burst[1:]:
        found = [
            (dy, dx)
            for dy in range(-8, 9)
            for dx in range(-8, 9)
            if torch.allclose(
                frame,
                F.avg_pool2d(
                    image[None, :, y0 + dy : y0 + dy + size, x0 + dx : x0 + dx + size], mod.DOWN
                )[0],
            )
        ]
        assert len(found) == 1


def test_static_burst_refuses_small_images():
    mod = load_benchmark("real_score_check")
    image = torch.rand(3, 70, 70)
    assert mod.static_burst(image, 16, 3, 2, torch.Generator().manual_seed(0)) is None


def test_mse_inside_the_border_and_on_box_averages():
    mod = load_benchmark("real_score_check")
    a = torch.zeros(3, 12, 12)
    b = torch.zeros(3, 12, 12)
    b[:, 0] = 1.0  # only inside the border: not counted
    assert mod.mse(a, b, 2) == 0.0
    # a +-0.5 checkerboard: 0.25 per pixel, 0 once 2x2 boxes average it away
    parity = (torch.arange(12)[:, None] + torch.arange(12)[None]).remainder(2)
    b = 0.5 * parity.float().expand(3, -1, -1)
    a = torch.full_like(b, 0.25)
    assert abs(mod.mse(a, b, 2) - 0.0625) < 1e-7
    assert mod.mse(a, b, 2, scale=2) < 1e-12
