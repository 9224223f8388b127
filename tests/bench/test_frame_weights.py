"""benchmarks/frame_weights.py: the decomposition of eq. (4) it reports, and its RMSEs."""

from __future__ import annotations

import torch

from burstkpn.models import create_model
from tests.conftest import gen, load_benchmark


def test_shares_rebuild_the_output_on_a_constant_burst():
    # on a constant burst X_i (*) K_i = c sum_t K_i at every pixel (reflect padding), so
    # eq. (4) averaged over frames is sum_i W_i sum_t K_i c / N + (1 - W_i) R_i / N
    mod = load_benchmark("frame_weights")
    torch.manual_seed(0)
    model = create_model("ame_kpn", "tiny").eval()
    c = 0.3
    burst = torch.full((1, 8, 1, 16, 16), c)
    with torch.no_grad():
        out = model(burst, torch.full((1, 1, 16, 16), 0.01), return_aux=True)
    a = out.aux
    ksum = a["kernels"].sum(3)
    rebuilt = (a["weights"] * ksum * c + (1 - a["weights"]) * a["residuals"]).mean(1)
    torch.testing.assert_close(rebuilt, out.image, atol=1e-5, rtol=1e-5)
    shares = mod.decompose(a, 8)
    assert len(shares["temporal"]) == 8 and len(shares["weight"]) == 8
    w = a["weights"].mean((0, 2, 3, 4))
    assert abs(shares["residual"] - float((1 - w).sum() / 8)) < 1e-6
    assert abs(shares["temporal"][3] - float((a["weights"] * ksum)[:, 3].mean() / 8)) < 1e-6


def test_kernel_only_model_has_no_residual_share():
    mod = load_benchmark("frame_weights")
    model = create_model("kpn", "tiny").eval()
    with torch.no_grad():
        burst = torch.rand(1, 8, 1, 16, 16, generator=gen(1))
        out = model(burst, torch.full((1, 1, 16, 16), 0.01), return_aux=True)
    shares = mod.decompose(out.aux, 8)
    assert shares["residual"] == 0.0 and "weight" not in shares
    torch.testing.assert_close(
        torch.tensor(shares["kernel_sum"]), out.aux["kernels"].sum(3).mean((0, 2, 3, 4))
    )


def test_block_rmse_is_the_rmse_of_block_means():
    mod = load_benchmark("frame_weights")
    clean = torch.zeros(1, 1, 8, 8)
    est = torch.zeros(1, 1, 8, 8)
    est[..., :4, :4] = torch.tensor([[1.0, -1.0] * 2, [-1.0, 1.0] * 2] * 2)  # zero block mean
    est[..., 4:, 4:] = 0.5
    assert abs(mod.rmse(est, clean) - float(((16 + 16 * 0.25) / 64) ** 0.5)) < 1e-6
    assert abs(mod.rmse(est, clean, 4) - float((0.25 / 4) ** 0.5)) < 1e-6


def test_static_burst_has_the_asked_noise():
    mod = load_benchmark("frame_weights")
    image = torch.full((3, 70, 80), 0.25)
    noisy, noise_map, clean = mod.static_burst(image, 0.02, 0.0, 64, seed=3)
    assert noisy.shape == (1, 8, 1, 64, 64) and clean.shape == (1, 1, 64, 64)
    assert abs(float((noisy - clean[:, None]).std()) - 0.02) < 1e-3
    torch.testing.assert_close(noise_map, torch.full_like(noise_map, 0.02), atol=1e-6, rtol=0)
