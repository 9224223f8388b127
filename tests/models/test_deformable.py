"""deform2d / deform3d ([DeformKernels]): shapes, eq. (1) / (6) / (10) consistency, start,
frame order, colour, checkpoints, blind variants; the eq. (9) and eq. (11) losses."""

from __future__ import annotations

import pytest
import torch

from burstkpn.errors import InputError
from burstkpn.losses import (
    ETA,
    GAMMA,
    GroupAnnealedLoss,
    gamma_l1_loss,
    group_annealed_loss,
)
from burstkpn.models import count_parameters, create_model, load_model, save_model
from burstkpn.models.deformable import (
    SIZES,
    burst_to_clip,
    clip_to_burst,
    video_window,
)
from tests.conftest import gen


def _burst(shape, seed=0):
    g = gen(seed)
    burst = torch.rand(shape, generator=g)
    b, n, c, h, w = shape
    return burst, 0.02 + 0.05 * torch.rand(b, c, h, w, generator=g)


def _perturb(model: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> None:
    """Move an untrained model off its start (zero offsets) so the offsets are not trivial."""
    g = gen(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


# --- building and running -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["deform2d", "deform3d"])
@pytest.mark.parametrize("size", list(SIZES))
def test_builds_at_every_size(name, size):
    model = create_model(name, size)
    assert model.config == {"name": name, "kwargs": model.config["kwargs"]}
    assert model.config["kwargs"]["size"] == size
    enc = [blk[0].out_channels for blk in model.offset_net.encoder]
    assert enc == list(SIZES[size]["widths"])
    taps = 25 if name == "deform2d" else 27
    assert model.taps == taps
    assert model.offset_net.head.out_channels == taps * (2 if name == "deform2d" else 3)
    assert model.weight_net[-1].out_channels == taps


def test_paper_size_follows_table1():
    model = create_model("deform3d", "paper")
    net = model.offset_net
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    # C1-27: 27 convolutions with Table 1's feature maps, then the three conv layers (64, 64, N)
    assert len(convs) == 27
    widths = [c.out_channels for c in convs]
    assert widths == [64] * 3 + [128] * 3 + [256] * 3 + [512] * 9 + [256] * 3 + [128] * 5 + [81]
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) for c in convs)
    head = [c.out_channels for c in model.weight_net if isinstance(c, torch.nn.Conv2d)]
    assert head == [64, 64, 27]


@pytest.mark.parametrize(
    "name, shape",
    [
        ("deform2d", (2, 1, 1, 64, 64)),
        ("deform3d", (2, 5, 1, 64, 64)),
        ("deform2d", (1, 5, 3, 37, 45)),
        ("deform3d", (1, 5, 3, 37, 45)),
    ],
)
def test_forward_backward(name, shape):
    torch.manual_seed(0)
    model = create_model(name, "tiny")
    _perturb(model)
    burst, nmap = _burst(shape)
    out = model(burst, nmap, return_aux=True)
    b, n, c, h, w = shape
    taps, d = (25, 2) if name == "deform2d" else (27, 3)
    assert out.image.shape == (b, c, h, w) and out.image.dtype == torch.float32
    aux = out.aux
    assert aux["offsets"].shape == aux["positions"].shape == (b, c, taps, d, h, w)
    assert aux["weights"].shape == aux["samples"].shape == (b, c, taps, h, w)
    # eq. (1) / (6): the output is the weighted sum of the sampled pixels
    torch.testing.assert_close(out.image, (aux["weights"] * aux["samples"]).sum(2))
    if name == "deform3d":  # eq. (10): 3 groups (one per temporal slice), mean = Y
        assert out.frames.shape == (b, 3, c, h, w)
        torch.testing.assert_close(out.frames.mean(1), out.image)
        assert aux["offsets"][:, :, :, 2].abs().max() <= 2.0  # tau frames
    else:
        assert out.frames is None
    assert aux["offsets"][:, :, :, :2].abs().max() <= 8.0  # max_offset pixels
    assert aux["offsets"].abs().max() > 0  # perturbed: the kernels have deformed
    out.image.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.offset_net.head.weight.grad.abs().max() > 0  # offsets learn (eq. 13-15)


def test_cpu_size_forward_backward_and_loss():
    torch.manual_seed(1)
    model = create_model("deform3d", "cpu")
    burst, nmap = _burst((1, 5, 1, 48, 40), seed=1)
    out = model(burst, nmap)
    losses = GroupAnnealedLoss()(out, burst[:, 0], step=0)
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"]) and losses["anneal_weight"] == ETA


def test_untrained_models_start_as_rigid_filters():
    burst, nmap = _burst((1, 5, 2, 24, 28), seed=2)
    m2 = create_model("deform2d", "tiny").eval()
    m3 = create_model("deform3d", "tiny").eval()
    with torch.no_grad():
        o2 = m2(burst, nmap, return_aux=True)
        o3 = m3(burst, nmap, return_aux=True)
    # zero offsets: every tap sits on its rigid grid position (eq. 2), 2D and 3D
    assert o2.aux["offsets"].eq(0).all() and o3.aux["offsets"].eq(0).all()
    ys, xs = torch.meshgrid(torch.arange(24.0), torch.arange(28.0), indexing="ij")
    base = o3.aux["base"]
    want = torch.stack([xs + base[:, :1, None], ys + base[:, 1:2, None]], 1)  # (T, 2, H, W)
    assert torch.equal(o3.aux["positions"][0, 0, :, :2], want)
    assert base[:, 2].unique().tolist() == [-2.0, 0.0, 2.0]  # spread over the 5-frame clip
    # 2D starts near the identity; 3D near the mean of frames t = -2, 0, 2
    assert (o2.image - burst[:, 0]).abs().mean() < 0.1
    clip = burst_to_clip(burst)
    assert (o3.image - clip[:, [0, 2, 4]].mean(1)).abs().mean() < 0.1
    # ... and each group of eq. (10) near its own frame
    for i, t in enumerate((0, 2, 4)):
        assert (o3.frames[:, i] - clip[:, t]).abs().mean() < 0.1


def test_reference_is_frame_zero_and_time_order_is_real():
    burst = torch.arange(5.0).view(1, 5, 1, 1, 1)  # burst order X_0, X_-2, X_-1, X_1, X_2
    assert burst_to_clip(burst).flatten().tolist() == [1, 2, 0, 3, 4]
    assert torch.equal(clip_to_burst(burst_to_clip(burst)), burst)
    assert video_window(5, 10) == [5, 3, 4, 6, 7]
    assert video_window(0, 10) == [0, 2, 1, 1, 2]  # mirrored at the start
    assert video_window(9, 10) == [9, 7, 8, 8, 7]  # and at the end
    assert video_window(0, 1) == [0, 0, 0, 0, 0]
    with pytest.raises(InputError, match="odd"):
        burst_to_clip(torch.zeros(1, 4, 1, 2, 2))
    with pytest.raises(InputError, match="outside"):
        video_window(10, 10)
    # the model sees the reference at time 0: a centre-only tap reads burst frame 0
    model = create_model("deform3d", "tiny", blind=True).eval()
    with torch.no_grad():
        model.weight_net[-1].weight.zero_()
        model.weight_net[-1].bias.zero_()
        model.weight_net[-1].bias[13] = 1.0  # tap (x, y, t) = (0, 0, 0)
        frames, _ = _burst((1, 5, 1, 9, 11), seed=3)
        assert torch.equal(model(frames).image, frames[:, 0])


def test_colour_channels_go_through_the_same_network_independently():
    torch.manual_seed(4)
    model = create_model("deform3d", "tiny").eval()
    _perturb(model, seed=4)
    burst, nmap = _burst((1, 5, 3, 20, 22), seed=4)
    with torch.no_grad():
        full = model(burst, nmap).image
        for ch in range(3):
            single = model(burst[:, :, ch : ch + 1], nmap[:, ch : ch + 1]).image
            torch.testing.assert_close(full[:, ch : ch + 1], single, atol=1e-5, rtol=0)


def test_checkpoint_round_trip(tmp_path):
    for name, kwargs in (("deform2d", {"blind": True}), ("deform3d", {"max_offset": 4.0})):
        model = create_model(name, "tiny", **kwargs).eval()
        _perturb(model, seed=5)
        path = save_model(model, tmp_path / f"{name}.safetensors", note="test")
        loaded = load_model(path)
        assert loaded.config == model.config and loaded.card == {"note": "test"}
        burst, nmap = _burst((1, 5, 1, 16, 17), seed=5)
        with torch.no_grad():
            assert torch.equal(loaded(burst, nmap).image, model(burst, nmap).image)


@pytest.mark.parametrize("name", ["deform2d", "deform3d"])
def test_blind_and_non_blind(name):
    size = "cpu"
    blind = create_model(name, size, blind=True)
    full = create_model(name, size)
    first = SIZES[size]["widths"][0]
    # the noise map is one more input channel of the offset network and of the weight layers
    diff = 9 * (first + SIZES[size]["head_width"])
    assert count_parameters(full) - count_parameters(blind) == diff
    burst, nmap = _burst((1, 5, 1, 16, 16))
    assert blind(burst).image.shape == (1, 1, 16, 16)
    with pytest.raises(InputError, match="noise map"):
        full(burst)


def test_bfloat16_autocast_and_channels_last_close_to_float32():
    torch.manual_seed(6)
    model = create_model("deform3d", "tiny").eval()
    burst, nmap = _burst((1, 5, 1, 32, 32), seed=6)
    with torch.no_grad():
        ref = model(burst, nmap).image
        model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(burst, nmap).image
    assert fast.dtype == torch.float32
    assert (fast - ref).abs().mean() < 1e-2


def test_bad_inputs():
    model = create_model("deform3d", "tiny")
    burst, nmap = _burst((1, 5, 1, 16, 16))
    with pytest.raises(InputError, match="5 frames"):
        model(burst[:, :3], nmap)
    with pytest.raises(InputError, match="expected a burst"):
        model(burst[0], nmap)
    with pytest.raises(InputError, match="does not match"):
        model(burst, nmap[..., :8])
    with pytest.raises(InputError, match="bad arguments"):
        create_model("deform2d", "tiny", tau=2)
    with pytest.raises(InputError, match="groups"):
        create_model("deform3d", "tiny", groups=4)
    with pytest.raises(InputError, match="backend"):
        create_model("deform2d", "tiny", backend="cuda")
    with pytest.raises(InputError, match="unknown model size"):
        create_model("deform2d", "huge")


def test_grid_sample_backend_gives_the_same_model_output():
    model = create_model("deform3d", "tiny").eval()
    _perturb(model, seed=7)
    other = create_model("deform3d", "tiny", backend="grid_sample").eval()
    other.load_state_dict(model.state_dict())
    burst, nmap = _burst((1, 5, 1, 16, 18), seed=7)
    with torch.no_grad():
        torch.testing.assert_close(model(burst, nmap).image, other(burst, nmap).image)


# --- losses (eq. 9, 11) -------------------------------------------------------------------------


def _images(shape, seed, low=-0.05, high=1.0):
    u = torch.rand(shape, generator=gen(seed), dtype=torch.float64)
    return low + (high - low) * u


def test_gamma_l1_values_and_gradcheck():
    pred, target = _images((2, 1, 5, 6), 8), _images((2, 1, 5, 6), 9)
    half = torch.tensor([0.5], dtype=torch.float64)
    phi = 1.055 * 0.5 ** (1 / 2.4) - 0.055  # eq. (8) by hand; phi(0) = 0
    assert gamma_l1_loss(half, torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(phi)
    assert gamma_l1_loss(half, half).item() == 0.0
    dark = torch.tensor([0.001, -0.002], dtype=torch.float64)  # linear part: 12.92 x
    assert gamma_l1_loss(dark, torch.zeros(2, dtype=torch.float64)).item() == pytest.approx(
        12.92 * 0.0015
    )
    pred.requires_grad_()
    assert torch.autograd.gradcheck(lambda p: gamma_l1_loss(p, target), (pred,))
    with pytest.raises(ValueError, match="differ"):
        gamma_l1_loss(pred, target[..., :5])


def test_group_annealed_loss_is_eq11_and_gradcheck():
    image, target = _images((1, 2, 4, 5), 10), _images((1, 2, 4, 5), 11)
    groups = _images((1, 3, 2, 4, 5), 12)
    out = group_annealed_loss(image, groups, target, step=0)
    per_group = sum(gamma_l1_loss(groups[:, i], target) for i in range(3))
    torch.testing.assert_close(out["groups"], per_group)
    torch.testing.assert_close(out["loss"], gamma_l1_loss(image, target) + ETA * per_group)
    later = group_annealed_loss(image, groups, target, step=10_000)
    assert later["anneal_weight"].item() == pytest.approx(ETA * GAMMA**10_000)
    no_groups = group_annealed_loss(image, None, target, step=0)
    torch.testing.assert_close(no_groups["loss"], gamma_l1_loss(image, target))
    image.requires_grad_()
    groups.requires_grad_()

    def fn(a, g):
        return group_annealed_loss(a, g, target, step=1234)["loss"]

    assert torch.autograd.gradcheck(fn, (image, groups))
    with pytest.raises(ValueError, match="do not fit"):
        group_annealed_loss(image, groups[..., :3], target, step=0)


def test_speed_bench_cost_counts_the_sampling():
    from burstkpn.bench.speed import burst_length, gmac_per_megapixel

    for name, frames in (("deform2d", 1), ("deform3d", 5)):
        model = create_model(name, "tiny").eval()
        assert burst_length(model, 8) == frames
        # sampling (2^D corners) and weighting: taps * (2^D + 1) MACs per channel-pixel
        assert model.extra_macs_per_pixel == model.taps * (2**model.dims + 1)
        assert gmac_per_megapixel(model) > 3 * model.extra_macs_per_pixel / 1e3
