"""``burstkpn bench video`` (Table 3 layout) and ``bench motion`` (the Fig. 8 sweep)."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from burstkpn.bench.methods import model_method, resolve_video_method
from burstkpn.bench.motion import motion_summary, sweep_windows
from burstkpn.cli import main
from burstkpn.data.testsets.video import TestWindow, make_video_testset
from burstkpn.errors import InputError
from burstkpn.models import create_model, save_model
from tests.data.io.test_clips import make_clip_folder


@pytest.fixture
def no_shipped(tmp_path, monkeypatch):
    """An empty weights folder: deform2d / deform3d (and kpn) have no shipped weights."""
    from burstkpn.models import factory

    empty = tmp_path / "weights"
    empty.mkdir()
    monkeypatch.setattr(factory, "weights_dir", lambda: empty)
    return empty


@pytest.fixture
def ckpts(tmp_path):
    torch.manual_seed(0)
    out = {}
    for name in ("deform3d", "deform2d", "kpn"):
        path = tmp_path / f"tiny_{name}.safetensors"
        save_model(create_model(name, "tiny"), path)
        out[name] = str(path)
    return out


def _window(frames: int = 5, size: int = 24) -> TestWindow:
    g = torch.Generator().manual_seed(0)
    noisy = torch.rand(1, frames, 3, size, size, generator=g)
    return TestWindow(
        "w", "low", noisy, noisy[:, 0] * 0 + 0.05, noisy[:, 0], 0.01, 0.0025,
        torch.tensor([0, -2, -1, 1, 2][:frames]), torch.zeros(frames, 2),
    )  # fmt: skip


def test_models_get_the_frames_they_take(ckpts):
    win = _window()
    outs = {}
    for name, path in ckpts.items():
        fn, note = resolve_video_method(path)
        assert note == f"checkpoint {path}"
        outs[name] = fn(win)
        assert outs[name].shape == (1, 3, 24, 24)
    # deform2d reads the centre frame only (Ours-2D on the frame being scored)
    other = _window()
    other.noisy[:, 1:] = 0.5
    assert model_method(create_model("deform2d", "tiny"))(win).shape == (1, 3, 24, 24)
    fn2d, _ = resolve_video_method(ckpts["deform2d"])
    assert torch.equal(fn2d(other), outs["deform2d"])
    fn3d, _ = resolve_video_method(ckpts["deform3d"])
    assert not torch.equal(fn3d(other), outs["deform3d"])
    with pytest.raises(InputError, match="takes 5 frames"):
        fn3d(_window(frames=3))
    with pytest.raises(InputError, match="unknown method"):
        resolve_video_method("vbm4d")


def test_missing_weights_are_skipped_with_a_message(no_shipped, capsys):
    for name in ("deform3d", "deform2d", "kpn"):
        fn, note = resolve_video_method(name)
        assert fn is None and note.startswith("skipped: no shipped weights")
    assert "deform2d_denoise" in resolve_video_method("deform2d")[1]


def test_bench_video_writes_table3_layout(tmp_path, ckpts, no_shipped, capsys):
    clips = make_clip_folder(tmp_path / "clips", frames=10, size=(32, 36))
    make_video_testset(clips, tmp_path / "ts", patch_size=32, progress=False)
    out = tmp_path / "report"
    argv = ["bench", "video", "--testset", str(tmp_path / "ts"), "--out", str(out), "--quiet"]
    methods = f"reference,average,deform2d,kpn,deform3d,{ckpts['deform3d']}"
    assert main([*argv, "--methods", methods, "--limit", "1"]) == 0
    text = capsys.readouterr().out
    assert "bench: deform3d skipped: no shipped weights" in text
    assert "| Method | low PSNR | low SSIM | high PSNR | high SSIM | s / MP |" in text
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["method"] for r in rows} == {"reference", "average", ckpts["deform3d"]}
    assert {r["image"] for r in rows} == {"a_0002"} and {r["level"] for r in rows} == {
        "low",
        "high",
    }
    md = (out / "report.md").read_text()
    assert "Skipped:" in md and "- kpn: skipped" in md
    assert "average at" not in md and "reference (" in md  # standing vs the anchors
    summary = json.loads((out / "results.json").read_text())["summary"]
    ref = next(r for r in summary["rows"] if r["method"] == "reference")
    expect = sum(
        float(r["psnr"]) for r in rows if r["method"] == "reference" and r["level"] == "low"
    )
    assert ref["psnr"]["low"] == pytest.approx(expect)  # one window: its own PSNR
    assert (out / "report.html").stat().st_size > 1000


def test_sweep_windows_change_only_the_motion():
    items = list(sweep_windows("astronaut", [0.0, 4.0], windows=1, patch_size=48))
    (s0, i0, a), (s1, i1, b) = items
    assert (s0, s1, i0, i1) == (0.0, 4.0, 0, 0)
    assert torch.equal(a.clean, b.clean) and torch.equal(a.noisy[:, 0], b.noisy[:, 0])
    assert torch.equal(a.motion, torch.zeros(5, 2, dtype=a.motion.dtype))
    assert b.motion.norm(dim=1).tolist() == pytest.approx([0, 8, 4, 4, 8])
    assert not torch.equal(a.noisy[:, 1], b.noisy[:, 1])
    with pytest.raises(InputError, match="too small"):
        list(sweep_windows("astronaut", [200.0], windows=1))
    with pytest.raises(InputError, match="non-negative"):
        list(sweep_windows("astronaut", [-1.0]))


def test_bench_motion_on_a_tiny_checkpoint(tmp_path, ckpts, no_shipped, capsys):
    out = tmp_path / "motion"
    argv = ["bench", "motion", "--out", str(out), "--speeds", "0,2,8", "--windows", "2"]
    argv += ["--patch", "32", "--source", "astronaut", "--quiet"]
    assert main([*argv, "--methods", f"reference,average,kpn,{ckpts['deform3d']}"]) == 0
    assert "kpn skipped" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {
        "motion.csv",
        "motion.json",
        "motion.md",
        "motion.png",
    }
    rows = list(csv.DictReader((out / "motion.csv").open()))
    assert len(rows) == 3 * 3 * 2  # methods x speeds x windows
    sweep = json.loads((out / "motion.json").read_text())
    table = sweep["mean_psnr"]
    assert table["reference"][0] == pytest.approx(table["reference"][2])  # motion-free
    assert table["average"][0] > table["average"][2]  # averaging suffers from motion
    assert (out / "motion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| average |" in (out / "motion.md").read_text()
    assert main([*argv[:2], "--out", str(tmp_path / "x"), "--speeds", "a,b"]) == 2
    assert main([*argv[:2], "--out", str(tmp_path / "y"), "--methods", "deform3d"]) == 2
    assert motion_summary({"methods": [], "speeds": [0.0], "rows": []}) == {}


def test_bench_video_includes_the_motion_sweep(tmp_path, ckpts, no_shipped):
    clips = make_clip_folder(tmp_path / "clips", size=(32, 36))
    make_video_testset(clips, tmp_path / "ts", patch_size=32, progress=False)
    out = tmp_path / "report"
    argv = ["bench", "video", "--testset", str(tmp_path / "ts"), "--out", str(out), "--quiet"]
    argv += ["--methods", f"reference,{ckpts['deform3d']}", "--motion-sweep", "--speeds", "0,4"]
    assert main([*argv, "--windows", "1", "--patch", "32", "--source", "astronaut"]) == 0
    assert (out / "motion.png").is_file() and (out / "motion.csv").is_file()
    html = (out / "report.html").read_text()
    assert "Motion sweep" in html and html.count("data:image/png;base64,") >= 2
    assert "![Motion sweep" in (out / "report.md").read_text()


def test_bench_video_kernel_figures(tmp_path, ckpts, no_shipped, capsys):
    """Fig. 9 / 10 of a tiny deform3d checkpoint (random weights, rigid offsets): both PNGs in
    the report folder and embedded in report.html; automatic when a deform3d is a method."""
    clips = make_clip_folder(tmp_path / "clips", size=(32, 36))
    make_video_testset(clips, tmp_path / "ts", patch_size=32, progress=False)
    argv = ["bench", "video", "--testset", str(tmp_path / "ts"), "--quiet", "--limit", "1"]
    out = tmp_path / "named"
    assert (
        main([*argv, "--out", str(out), "--methods", "reference", "--kernels", ckpts["deform3d"]])
        == 0
    )
    assert "time_distribution.png, kernels.png" in capsys.readouterr().out
    for name in ("time_distribution.png", "kernels.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "(cf. Fig. 9)" in html and "(cf. Fig. 10)" in html
    assert html.count("data:image/png;base64,") >= 3  # the PSNR chart and the two figures
    assert "](time_distribution.png)" in (out / "report.md").read_text()
    info = json.loads((out / "kernels.json").read_text())
    assert info["model"] == ckpts["deform3d"] and info["windows"] == 1
    # untrained offsets: the rigid grid's three frames, a third of the taps each
    for level in ("low", "high", "all"):
        shares = dict(zip(info["centres"], info["percent"]["counts"][level], strict=True))
        assert sum(shares.values()) == pytest.approx(100.0)
        assert [shares[t] for t in (-2.0, 0.0, 2.0)] == pytest.approx([100 / 3] * 3)
    assert info["example"]["window"] == "a_0002" and info["example"]["level"] == "high"
    assert len(info["example"]["taps"]["t"]) == 27

    auto = tmp_path / "auto"  # a deform3d among the methods: figures by default
    assert main([*argv, "--out", str(auto), "--methods", f"reference,{ckpts['deform3d']}"]) == 0
    assert (auto / "kernels.png").is_file() and (auto / "time_distribution.png").is_file()
    off = tmp_path / "off"
    methods = f"reference,{ckpts['deform3d']}"
    assert main([*argv, "--out", str(off), "--methods", methods, "--kernels", "none"]) == 0
    assert not (off / "kernels.png").exists()
    capsys.readouterr()
    none = tmp_path / "none"  # asked for, but no deform3d: a message, no figures
    assert main([*argv, "--out", str(none), "--methods", "reference", "--kernels"]) == 0
    assert "no deform3d among the methods" in capsys.readouterr().out
    assert not (none / "kernels.png").exists()
    bad = ["--methods", "reference", "--kernels", ckpts["kpn"]]
    assert main([*argv, "--out", str(tmp_path / "bad"), *bad]) == 2
    assert "needs a deform3d" in capsys.readouterr().err


def test_kernel_statistics_on_vid4(shared_data, tmp_path):
    """The Fig. 9 / 10 pass on real clips (vid4), one window per clip, a tiny deform3d."""
    from burstkpn.bench.kernels import kernel_statistics, write_kernel_figures

    vid4 = shared_data / "video" / "vid4"
    if not vid4.is_dir():
        pytest.skip(f"{vid4} not available")
    make_video_testset(vid4, tmp_path / "ts", patch_size=64, windows=1, progress=False)
    torch.manual_seed(0)
    model = create_model("deform3d", "tiny")
    with torch.no_grad():  # random offsets, so that the taps move off the rigid grid
        model.offset_net.head.weight.normal_(0, 0.05)
    stats = kernel_statistics(model, tmp_path / "ts", progress=False)
    assert stats["windows"] >= 1 and set(stats["counts"]) == {"low", "high"}
    for sums in stats["counts"].values():
        assert sum(sums) == 27 * 3 * 64 * 64 * stats["bursts"] / 2
    y, x = stats["example"]["pixel"]
    assert 8 <= y < 56 and 8 <= x < 56
    figures = write_kernel_figures(stats, tmp_path, "deform3d")
    assert [p.name for _, p in figures] == ["time_distribution.png", "kernels.png"]
