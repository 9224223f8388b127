"""benchmarks/head_layout.py: both head paths run, agree, and are timed; it stops without
native bfloat16 unless forced."""

from __future__ import annotations

import pytest
import torch

from burstkpn.models import create_model
from burstkpn.models.factory import save_model
from tests.conftest import load_benchmark


def test_times_both_paths_and_reports_their_difference(tmp_path, capsys):
    mod = load_benchmark("head_layout")
    torch.manual_seed(0)
    path = save_model(create_model("ame_kpn", "tiny").eval(), tmp_path / "a.safetensors")
    res = mod.main(["--model", str(path), "--tile", "8", "--rounds", "2", "--force"])
    assert set(res["times"]) == {
        "last stage, plain-layout heads",
        "last stage, channels_last heads",
        "channel max, float32 detour",
        "channel max, bfloat16",
    }
    assert all(len(v) == 2 and min(v) > 0 for v in res["times"].values())
    assert 0 <= res["difference"] < 0.05  # bfloat16 rounding, not a different computation
    out = capsys.readouterr().out
    assert "largest difference of the two heads' outputs" in out


def test_stops_without_native_bfloat16(monkeypatch):
    mod = load_benchmark("head_layout")
    monkeypatch.setattr(mod, "native_bf16", lambda device="cpu": False)
    with pytest.raises(SystemExit, match="no native bfloat16"):
        mod.main(["--tile", "8"])
