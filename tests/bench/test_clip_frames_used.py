"""benchmarks/clip_frames_used.py: the reference-only window and the table it prints."""

from __future__ import annotations

import json

import torch

from burstkpn.bench.motion import sweep_windows
from burstkpn.models import create_model
from burstkpn.models.factory import save_model
from tests.conftest import load_benchmark


def test_reference_only_repeats_the_noisy_reference_and_keeps_the_rest():
    mod = load_benchmark("clip_frames_used")
    _, _, item = next(iter(sweep_windows(None, [2.0], windows=1, patch_size=32)))
    ref = mod.reference_only(item)
    assert ref.noisy.shape == item.noisy.shape
    for t in range(item.noisy.shape[1]):
        assert torch.equal(ref.noisy[:, t], item.noisy[:, 0])
    assert not torch.equal(item.noisy[:, 1], item.noisy[:, 0])  # the input is untouched
    assert ref.clean is item.clean and torch.equal(ref.noise_map, item.noise_map)


def test_prints_one_row_per_level_and_speed(tmp_path, capsys):
    mod = load_benchmark("clip_frames_used")
    torch.manual_seed(0)
    path = save_model(create_model("deform3d", "tiny").eval(), tmp_path / "d3.safetensors")
    out = tmp_path / "rows.json"
    argv = [
        "--models", str(path), "--single", "", "--speeds", "0,4", "--levels", "low",
        "--windows", "2", "--patch", "32", "--json", str(out),
    ]  # fmt: skip
    assert mod.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"| level | speed px/frame | {path} full | {path} ref only |"
    assert [ln.split(" | ")[:2] for ln in lines[2:]] == [["| low", "0"], ["| low", "4"]]
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 4  # 2 windows x 2 speeds
    static = [r for r in rows if r["speed"] == 0.0]
    mean = sum(r[f"{path} full"] for r in static) / 2
    assert f"{mean:.2f}" in lines[2]
