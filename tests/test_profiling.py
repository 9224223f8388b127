from __future__ import annotations

import json

import torch

from burstkpn.cli import main
from burstkpn.models import create_model
from burstkpn.models.factory import save_model
from burstkpn.profiling import active, profiling, stage
from tests.denoising.test_burst import _frames_folder


def test_stage_is_a_no_op_without_a_profile_and_nests_with_one():
    assert active() is None
    with stage("anything"):  # nothing active: nothing recorded, nothing raised
        pass
    with profiling() as prof:
        for _ in range(3):
            with stage("outer"), stage("inner"):
                pass
    assert active() is None  # nothing leaks out of the block
    outer, inner = prof.stages.values()
    assert (outer.name, outer.count, outer.depth) == ("outer", 3, 0)
    assert (inner.name, inner.parents, inner.count) == ("inner", ("outer",), 3)
    assert inner.seconds <= outer.seconds <= prof.total
    assert outer.peak_rss_mib > 0


def test_denoise_profile_flag_times_every_stage(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_model(create_model("ame_kpn", "tiny"), tmp_path / "tiny.safetensors")
    folder = _frames_folder(tmp_path, n=4, size=(70, 90))
    out, report = tmp_path / "out.png", tmp_path / "profile.json"
    args = ["denoise", str(folder), "-o", str(out), "--model", str(ckpt), "--tile", "32"]
    assert main([*args, "--align", "on", "--profile", str(report)]) == 0
    text = capsys.readouterr().out
    assert "| shift estimation |" in text and "heads per tile" in text
    data = json.loads(report.read_text())
    names = {s["stage"] for s in data["stages"]}
    expected = {
        "reading and decoding",
        "linearising",
        "shift estimation",
        "noise estimation",
        "shifting",
        "network",
        "encoder per tile",  # the staged tiles of the KPN family with attention
        "heads per tile",
        "kernel application",
        "sRGB encoding",
        "writing",
    }
    assert expected <= names
    tiles = next(s for s in data["stages"] if s["stage"] == "heads per tile")
    assert tiles["count"] > 1 and tiles["parents"] == ["network"]
    # the top-level stages account for the run (the rest is argument handling, bookkeeping)
    assert 0.9 * data["total_s"] <= data["stages_s"] <= data["total_s"]
    assert main([*args, "--force", "--profile"]) == 0  # print only
    assert "| **total** |" in capsys.readouterr().out
