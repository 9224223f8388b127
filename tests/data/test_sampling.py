"""Seeds and channel matching (``burstkpn.data.sampling``)."""

from __future__ import annotations

import torch

from burstkpn.data.sampling import derive_seed, match_channels
from tests.conftest import gen


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
