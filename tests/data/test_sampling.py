"""Seeds and channel matching (``burstkpn.data.sampling``)."""

from __future__ import annotations

import pytest
import torch

from burstkpn.data.sampling import derive_seed, match_channels, recolor
from burstkpn.errors import InputError
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


def test_recolor_permutes_and_scales_the_channels():
    burst = torch.rand(4, 3, 6, 5)
    assert torch.equal(recolor(burst, gen(0)), burst)  # nothing asked, nothing drawn
    orders = set()
    for i in range(30):
        out = recolor(burst, gen(i), shuffle=True)
        order = tuple(int((out[:, c : c + 1] == burst).all((0, 2, 3)).nonzero()) for c in range(3))
        assert sorted(order) == [0, 1, 2]  # every output channel is one input channel, whole
        orders.add(order)
    assert len(orders) == 6  # all six orders occur
    out = recolor(burst, gen(1), gain_range=(0.3, 0.9))
    gains = (out / burst).mean((0, 2, 3))
    assert torch.allclose(out, burst * gains.view(3, 1, 1), atol=1e-6)  # one gain per channel
    assert ((gains >= 0.3 - 1e-6) & (gains <= 0.9 + 1e-6)).all() and gains.unique().numel() == 3
    assert torch.equal(
        recolor(burst, gen(5), (0.3, 0.9), True), recolor(burst, gen(5), (0.3, 0.9), True)
    )
    with pytest.raises(InputError, match="needs RGB"):
        recolor(torch.rand(2, 1, 4, 4), gen(0), shuffle=True)
