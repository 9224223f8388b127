"""benchmarks/channel_paths.py: the dark values it selects and the eq. (4) paths it reports."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from burstkpn.data.io.images import linear_to_srgb
from burstkpn.models import create_model
from tests.conftest import gen, load_benchmark


def _item(clean: torch.Tensor, noise: float = 0.01) -> SimpleNamespace:
    noisy = clean[None, None] + noise * torch.randn(1, 8, *clean.shape, generator=gen(2))
    return SimpleNamespace(
        noisy=noisy, noise_map=torch.full((1, *clean.shape), noise), clean=clean[None]
    )


def test_rows_are_the_dark_values_of_each_channel_and_rebuild_the_output():
    mod = load_benchmark("channel_paths")
    torch.manual_seed(0)
    model = create_model("ame_kpn", "tiny", color=True).eval()
    clean = torch.full((3, 16, 16), 0.3)
    clean[1, :8] = 0.004  # dark green in the top half, nothing dark in red
    clean[2] = 0.002  # blue dark everywhere
    item = _item(clean)
    rows = mod.channel_paths(model, item)
    assert [r["channel"] for r in rows] == [1, 2]
    dark = linear_to_srgb(clean) < mod.DARK
    assert [r["n"] for r in rows] == [int(dark[1].sum()), int(dark[2].sum())] == [128, 256]
    with torch.no_grad():
        out = model(item.noisy, item.noise_map, return_aux=True)
    a = out.aux
    for r in rows:
        c, d = r["channel"], dark[r["channel"]]
        err = 1000 * float((out.image[0, c] - clean[c])[d].mean())
        assert abs(r["out"] - err) < 0.006  # rounded to 2 decimals
        # eq. (4): the output is the frames' mean of W kpath + (1 - W) rpath, value by value
        rebuilt = (a["weights"] * a["filtered"] + (1 - a["weights"]) * a["residuals"]).mean(1)
        torch.testing.assert_close(rebuilt, out.image, atol=1e-5, rtol=1e-5)
        assert abs(r["W"] - float(a["weights"][0, :, c][:, d].mean())) < 6e-4
        assert abs(r["ksum"] - float(a["kernels"][0, :, c].sum(1)[:, d].mean())) < 6e-4


def test_kernel_only_model_has_no_weight_or_residual():
    mod = load_benchmark("channel_paths")
    model = create_model("kpn", "tiny").eval()
    rows = mod.channel_paths(model, _item(torch.full((1, 16, 16), 0.002)))
    assert len(rows) == 1 and rows[0]["n"] == 256
    assert "W" not in rows[0] and "rpath" not in rows[0]
