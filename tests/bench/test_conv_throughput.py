"""benchmarks/conv_throughput.py: MACs of a convolution call, and the table of a tiny model."""

from __future__ import annotations

import torch

from burstkpn.models import create_model
from burstkpn.models.factory import save_model
from tests.conftest import load_benchmark


def test_macs_of_a_same_size_convolution():
    mod = load_benchmark("conv_throughput")
    # 2 images of 5x7 px, 3 -> 4 channels, 3x3: 2 * 35 * 4 * 3 * 9
    assert mod.conv_macs([[2, 3, 5, 7], [4, 3, 3, 3]]) == 2 * 35 * 4 * 3 * 9


def test_counts_every_convolution_of_the_staged_path(tmp_path, capsys):
    mod = load_benchmark("conv_throughput")
    torch.manual_seed(0)
    model = create_model("ame_kpn", "tiny").eval()
    path = save_model(model, tmp_path / "a.safetensors")
    argv = ["--model", str(path), "--height", "24", "--width", "40", "--tile", "16"]
    res = mod.main([*argv, "--precision", "fp32"])
    convs = res["convolutions"]
    first = model.backbone.encoder[0][0]
    assert f"{first.in_channels}->{first.out_channels} k3" in convs
    kernels = model.num_frames * model.taps  # float32: the kernel head apart from the others
    assert f"{model.kr_head.in_channels}->{kernels} k3" in convs
    assert all(calls > 0 and macs > 0 for _, macs, calls in convs.values())
    assert res["conv_s"] > 0 and "| **all** |" in capsys.readouterr().out
