"""Motion-blur kernels and convolution (``burstkpn.data.degrade.blur``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from burstkpn.data.degrade.blur import blur_image, motion_blur_kernel
from burstkpn.errors import InputError
from tests.conftest import gen


@pytest.mark.parametrize("size", [1, 3, 15, 31])
def test_motion_blur_kernels(size: int):
    for seed in range(5):
        k = motion_blur_kernel(size, gen(seed))
        assert k.shape == (size, size) and k.dtype == torch.float32
        assert (k >= 0).all() and abs(float(k.sum()) - 1) < 1e-6
        # centroid on the centre pixel, so blurring does not shift the image
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        c = (size - 1) / 2
        assert abs(float((k * ys).sum()) - c) < 1e-4 and abs(float((k * xs).sum()) - c) < 1e-4
        assert torch.equal(k, motion_blur_kernel(size, gen(seed)))  # seeded, reproducible
    if size > 1:
        assert not torch.equal(motion_blur_kernel(size, gen(0)), motion_blur_kernel(size, gen(1)))


def test_motion_blur_kernel_extent_and_shape():
    delta = motion_blur_kernel(9, gen(0), extent=0)
    assert delta[4, 4] == 1 and delta.sum() == 1
    k = motion_blur_kernel(21, gen(1), extent=3.0)
    rows, cols = torch.nonzero(k, as_tuple=True)
    assert rows.min() >= 10 - 4 and rows.max() <= 10 + 4 and cols.min() >= 6 and cols.max() <= 14
    big = motion_blur_kernel(21, gen(1), extent=10.0)
    assert (big > 0).sum() > (k > 0).sum()  # a longer path covers more pixels
    # constant velocity (momentum 1, no jitter): a uniform straight stroke through the centre
    straight = motion_blur_kernel(31, gen(2), extent=15.0, momentum=1.0, jitter=0.0)
    rows, cols = torch.nonzero(straight, as_tuple=True)
    pts = torch.stack([rows, cols], 1).double() - 15
    _, _, vh = torch.linalg.svd(pts, full_matrices=False)
    along, across = pts @ vh[0], pts @ vh[1]
    assert across.abs().max() <= 1.5 and along.max() - along.min() >= 28
    with pytest.raises(InputError, match="odd"):
        motion_blur_kernel(4, gen(0))
    with pytest.raises(InputError, match="extent"):
        motion_blur_kernel(5, gen(0), extent=3.0)


def test_blur_image_is_a_convolution():
    img = torch.rand(2, 20, 24, generator=gen(0))
    k = torch.zeros(5, 5)
    k[2, 4] = 1.0  # a point spreads two pixels to the right
    out = blur_image(img, k, mode="valid")
    assert out.shape == (2, 16, 20)
    assert torch.allclose(out, img[:, 2:-2, :-4])
    k = motion_blur_kernel(7, gen(1))
    same = blur_image(img[None], k)
    assert same.shape == (1, 2, 20, 24)
    assert torch.allclose(same[0, :, 3:-3, 3:-3], blur_image(img, k, mode="valid"), atol=1e-6)
    flat = torch.full((1, 12, 12), 0.3)
    assert torch.allclose(blur_image(flat, k), flat, atol=1e-6)  # sums to 1
    ref = F.conv2d(img[:, None], k.flip(0, 1)[None, None])[:, 0]
    assert torch.allclose(blur_image(img, k, mode="valid"), ref, atol=1e-6)
    with pytest.raises(InputError, match="odd"):
        blur_image(img, torch.ones(4, 4) / 16)
