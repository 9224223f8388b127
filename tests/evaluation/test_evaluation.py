"""The one evaluation loop (:mod:`burstkpn.evaluation`) behind the benches and the trainer's
export: a perfect method scores inf / 1.0, refusals drop a method, and every caller gets the
same rows for the same method and items."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from burstkpn.bench.quality import evaluate as bench_quality
from burstkpn.bench.quality import run_quality
from burstkpn.bench.tables import bias_table
from burstkpn.data.testsets.burst import make_testset
from burstkpn.errors import InputError
from burstkpn.evaluation import (
    Scorer,
    evaluate,
    evaluate_bursts,
    model_method,
    reference,
    summarize,
)
from burstkpn.models import create_model, save_model


def _item(image: str, level: str, seed: int) -> SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(1, 3, 32, 32, generator=g)
    noisy = (clean[:, None] + 0.05 * torch.randn(1, 4, 3, 32, 32, generator=g)).clamp(0, 1)
    return SimpleNamespace(image=image, level=level, clean=clean, noisy=noisy)


ITEMS = [_item("a", "low", 0), _item("a", "high", 1), _item("b", "low", 2)]


def clean_method(item) -> torch.Tensor:
    return item.clean.clone()


def test_the_clean_image_scores_inf_and_one():
    result = evaluate(ITEMS, {"clean": clean_method, "reference": reference}, progress=False)
    assert result.methods == ["clean", "reference"]
    assert [(r["method"], r["image"], r["level"]) for r in result.rows[:2]] == [
        ("clean", "a", "low"),
        ("reference", "a", "low"),
    ]
    perfect = [r for r in result.rows if r["method"] == "clean"]
    assert len(perfect) == 3
    assert all(math.isinf(r["psnr"]) and r["ssim"] == pytest.approx(1.0) for r in perfect)
    noisy = [r for r in result.rows if r["method"] == "reference"]
    assert all(10 < r["psnr"] < 60 and r["ssim"] < 1.0 for r in noisy)
    assert all(r["megapixels"] == 32 * 32 / 1e6 and r["seconds"] >= 0 for r in result.rows)
    summary = summarize(
        {"rows": result.rows, "methods": result.methods, "levels": ["low", "high"], "notes": {}}
    )
    ref = summary["rows"][1]
    low = [r["psnr"] for r in noisy if r["level"] == "low"]
    assert ref["psnr"]["low"] == sum(low) / len(low)
    # the shadow bias: zero for the clean image, pooled over the dark values of the images
    assert all(r["dark_bias"] == 0.0 and r["dark_count"] > 0 for r in perfect)
    low_rows = [r for r in noisy if r["level"] == "low"]
    pooled = sum(r["dark_bias"] * r["dark_count"] for r in low_rows)
    assert ref["dark_bias"]["low"] == pytest.approx(pooled / sum(r["dark_count"] for r in low_rows))
    assert summary["rows"][0]["dark_bias"]["low"] == 0.0
    table = bias_table(summary)
    assert table.splitlines()[0] == "| Method | low | high |"
    assert table.splitlines()[2].startswith("| clean | +0.0 / ")
    # a report written before the rows had the bias has no such table
    old = [{k: v for k, v in r.items() if not k.startswith("dark")} for r in result.rows]
    legacy = summarize({"rows": old, "methods": result.methods, "levels": ["low"], "notes": {}})
    assert legacy["rows"][0]["dark_bias"] == {"low": None} and bias_table(legacy) == ""
    assert legacy["rows"][0]["dark_region_bias"] == {"low": None}


def test_kept_items_and_refused_methods():
    def picky(item):
        if item.image == "b":
            raise InputError("not this one")
        return item.clean

    result = evaluate(
        ITEMS,
        {"clean": clean_method, "reference": reference},
        keep=lambda item: item.level == "high",
        progress=False,
    )
    assert [(item.image, sorted(out)) for item, out in result.kept] == [
        ("a", ["clean", "reference"])
    ]
    # without refusals the error stops the evaluation; the Scorer can drop the method instead
    with pytest.raises(InputError):
        evaluate(ITEMS, {"picky": picky}, progress=False)
    scorer = Scorer({"picky": picky, "reference": reference}, refused=(InputError,))
    for item in ITEMS:
        scorer.run(item)
    assert list(scorer.methods) == ["reference"]
    assert scorer.notes["picky"] == "skipped: not this one"
    assert {r["method"] for r in scorer.rows} == {"reference"} and len(scorer.rows) == 3


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_bench_quality_and_the_export_card_share_the_rows(tmp_path, photo_folder):
    from burstkpn.train import TrainConfig, export_weights, train

    ts = tmp_path / "ts"
    make_testset(photo_folder, ts, levels=["gain1", "gain3"], patch_size=48, progress=False)
    model = create_model("kpn", "tiny")
    ckpt = save_model(model, tmp_path / "tiny.safetensors")
    methods = {"model": model_method(model), "reference": reference}
    direct = evaluate_bursts(ts, methods, progress=False)
    bench = bench_quality(ts, [str(ckpt), "reference"], progress=False)
    renamed = [r | {"method": "model"} if r["method"] == str(ckpt) else r for r in bench["rows"]]
    assert len(direct["rows"]) == 2 * direct["bursts"] > 0
    assert _strip(direct["rows"]) == _strip(renamed)
    # the export card scores a trained run through the same loop: its per-level means are the
    # bench's summary of the same weights
    run = tmp_path / "run"
    cfg = TrainConfig(
        model="kpn", size="tiny", data=str(photo_folder), steps=1, batch_size=2, patch_size=24,
        val_every=0, precision="fp32",
    )  # fmt: skip
    train(cfg, run, progress=False)
    card = export_weights(run, "mine", tmp_path / "w", testset=ts, progress=False)
    summary = run_quality(ts, ["reference", str(tmp_path / "w" / "mine.safetensors")],
                          tmp_path / "rep", progress=False)  # fmt: skip
    rows = {r["method"]: r for r in summary["rows"]}
    mine = rows[str(tmp_path / "w" / "mine.safetensors")]
    for level in ("gain1", "gain3"):
        got = card["evaluation"]["per_level"][level]
        assert got["psnr"] == round(mine["psnr"][level], 4)
        assert got["ssim"] == round(mine["ssim"][level], 4)
        assert got["reference_psnr"] == round(rows["reference"]["psnr"][level], 4)
