from __future__ import annotations

import json
from importlib.util import find_spec

import numpy as np
import pytest
import torch

from burstkpn.bench import methods as M
from burstkpn.bench.quality import run_ablation, run_quality
from burstkpn.data.testsets.burst import TestSet, make_testset
from burstkpn.errors import InputError
from burstkpn.metrics import psnr
from burstkpn.models import TABLE2_CONFIGS, create_model, save_model


@pytest.fixture
def testset(tmp_path, photo_folder):
    out = tmp_path / "ts"
    make_testset(
        photo_folder, out, levels=["gain1", "gain3"], num_frames=8, patch_size=48, progress=False
    )
    return out


def test_gat_stabilises_and_inverts():
    rng = np.random.default_rng(0)
    for sr, ss, y in [(0.005, 0.001, 0.3), (0.05, 0.01, 0.1), (0.08, 0.023, 0.6)]:
        x = y + rng.normal(0, np.sqrt(sr**2 + ss * y), 400_000)
        d = M.gat(x, sr, ss)
        assert abs(d.var() - 1) < 0.05
        assert abs(M.inverse_gat(np.array([d.mean()]), sr, ss)[0] - y) < 0.01 * y + 1e-3


def test_quality_bench_writes_the_table(tmp_path, testset):
    ckpt = save_model(create_model("kpn", "tiny"), tmp_path / "tiny.safetensors")
    methods = ["reference", "average", "oracle_average", "nlm", "bm3d", str(ckpt)]
    summary = run_quality(testset, methods, tmp_path / "rep", progress=False, command="test")
    for name in ("results.csv", "results.json", "report.md", "report.html"):
        assert (tmp_path / "rep" / name).is_file()
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    rows = data["rows"]
    # summary = per-image mean of the per-burst values
    ref_rows = [r for r in rows if r["method"] == "reference" and r["level"] == "gain3"]
    ref = next(r for r in summary["rows"] if r["method"] == "reference")
    assert ref["psnr"]["gain3"] == pytest.approx(np.mean([r["psnr"] for r in ref_rows]))
    # and the per-burst value is burstkpn.metrics.psnr of the method's output
    ts = TestSet(testset)
    item = ts.load(next(e for e in ts.manifest["bursts"] if e["level"] == "gain3"))
    first = next(r for r in ref_rows if r["image"] == item.image)
    assert first["psnr"] == pytest.approx(float(psnr(item.noisy[:, 0], item.clean)[0]))
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| Method | gain1 PSNR | gain1 SSIM | gain3 PSNR | gain3 SSIM | s / MP |" in md
    if find_spec("bm3d") is None:
        assert "bm3d" in summary["skipped"]
    by = {r["method"]: r for r in summary["rows"]}
    assert by["oracle_average"]["psnr"]["gain3"] > by["reference"]["psnr"]["gain3"] + 3


def test_oracle_average_aligns_noiseless_bursts(photo_folder):
    from burstkpn.data.degrade.synth import synthesize_burst
    from burstkpn.data.io.images import list_images, load_linear
    from tests.conftest import gen

    img = load_linear(list_images(photo_folder)[1])
    burst = synthesize_burst(img, gen(5), num_frames=8, patch_size=64, noise=(0.0, 0.0))

    class Item:
        noisy, offsets = burst.noisy, burst.geometry[0].offsets

    oracle = M.oracle_average(Item)
    assert float(psnr(oracle, burst.clean)[0]) > 40
    assert float(psnr(M.average(Item), burst.clean)[0]) < float(psnr(oracle, burst.clean)[0])


def test_missing_optional_package_is_skipped(monkeypatch):
    monkeypatch.setattr(M, "find_spec", lambda name: None)
    fn, note = M.resolve_method("bm3d")
    assert fn is None and "skipped" in note
    with pytest.raises(InputError, match="unknown method"):
        M.resolve_method("magic")


def test_ablation_table(tmp_path, testset):
    folder = tmp_path / "abl"
    for i in (1, 6):
        save_model(
            create_model("ame_kpn", "tiny", **TABLE2_CONFIGS[i]),
            folder / f"ame_kpn_model{i}.safetensors",
        )
    table, scores = run_ablation(testset, folder, progress=False)
    assert scores[1] is not None and scores[6] is not None and scores[3] is None
    assert table.splitlines()[0].startswith("| Modules | Model 1")
    assert "missing" in table.splitlines()[-1]
    torch.manual_seed(0)
    save_model(create_model("ame_kpn", "tiny"), folder / "ame_kpn_model2.safetensors")
    with pytest.raises(InputError, match="not Model 2"):
        run_ablation(testset, folder, progress=False)


def test_shipped_model_note_names_its_training_steps():
    """The report says how long each shipped model was trained (the card's ``steps``)."""
    from burstkpn.models import load_pretrained

    try:
        steps = load_pretrained("kpn").card["steps"]
    except InputError:
        pytest.skip("no shipped kpn weights")
    fn, note = M.resolve_method("kpn")
    # a prealign model's note goes on to say that its frames are aligned first
    assert fn is not None and note.startswith(f"shipped weights ({steps} training steps")


def test_single_image_testset_skips_burst_models(tmp_path, photo_folder):
    """On a one-frame test set, single-image methods run and 8-frame burst models are skipped
    with the reason (not an error)."""
    ts = tmp_path / "single"
    make_testset(
        photo_folder, ts, levels=["low", "high"], num_frames=1, patch_size=40, progress=False
    )
    one = save_model(create_model("kpn", "tiny", num_frames=1), tmp_path / "one.safetensors")
    eight = save_model(create_model("kpn", "tiny"), tmp_path / "eight.safetensors")
    methods = ["reference", "nlm", str(one), str(eight)]
    summary = run_quality(ts, methods, tmp_path / "rep", progress=False, command="test")
    ran = {r["method"] for r in summary["rows"]}
    assert ran == {"reference", "nlm", str(one)}
    assert summary["skipped"] == [str(eight)]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "takes bursts of 8 frames, the test set has 1" in md
    assert "| Method | low PSNR | low SSIM | high PSNR | high SSIM | s / MP |" in md


def test_standing_sentences():
    from burstkpn.bench.quality import standing

    def row(method, a, b):
        return {"method": method, "psnr": {"low": a, "high": b}}

    summary = {"levels": ["low", "high"], "rows": [row("reference", 30, 25), row("m", 31, 24.98)]}
    lines = standing(summary)
    assert lines == [
        "- m at low (31.00 dB): above reference (+1.00 dB).",
        "- m at high (24.98 dB): level with reference (-0.02 dB).",
    ]
    # only learned methods: no sentences (not empty ones)
    assert standing({"levels": ["low"], "rows": [{"method": "m", "psnr": {"low": 30}}]}) == []


def test_ablation_cli_writes_a_report(tmp_path, testset, capsys):
    from burstkpn.cli import main

    folder = tmp_path / "abl"
    save_model(
        create_model("ame_kpn", "tiny", **TABLE2_CONFIGS[1]), folder / "ame_kpn_model1.safetensors"
    )
    out = tmp_path / "report"
    args = ["bench", "ablation", "--testset", str(testset), "--checkpoints", str(folder)]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    text = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert "burstkpn bench ablation" in text and "| Modules | Model 1" in text
    assert "missing checkpoints" in text
    assert results["psnr"]["1"] is not None and results["psnr"]["2"] is None
    assert f"{results['psnr']['1']:.2f}" in text
    assert main([*args, "--out", str(out), "--quiet"]) == 2
    assert "is not empty" in capsys.readouterr().err
