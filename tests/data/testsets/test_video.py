"""The video benchmark test set (``make-testset --task video``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from burstkpn.cli import main
from burstkpn.data.io.images import srgb_to_linear
from burstkpn.data.testsets.video import VideoTestSet, make_video_testset
from burstkpn.errors import InputError
from tests.data.io.test_clips import make_clip_folder


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_clip_windows_order_levels_and_bytes(tmp_path):
    clips = make_clip_folder(tmp_path / "clips", frames=12, size=(40, 48))
    m = make_video_testset(clips, tmp_path / "a", patch_size=32, seed=3, progress=False)
    assert m["generator"]["layout"] == "clips" and m["generator"]["levels"][1]["sigma_s"] == 6.4e-3
    names = sorted({e["image"] for e in m["windows"]})
    assert names == ["a_0002", "a_0007", "b_0002", "b_0007"]  # non-overlapping windows
    ts = VideoTestSet(tmp_path / "a")
    assert ts.levels == ["low", "high"] and len(ts) == 8
    items = {(w.image, w.level): w for w in ts}
    w = items[("a_0007", "low")]
    assert w.noisy.shape == (1, 5, 3, 32, 32) and w.clean.shape == (1, 3, 32, 32)
    assert w.time.tolist() == [0, -2, -1, 1, 2] and torch.isnan(w.motion).all()
    entry = next(e for e in m["windows"] if e["image"] == "a_0007")
    assert entry["frames"] == [7, 5, 6, 8, 9]
    # frame k of clip a has the value 20 (k + 1): the clean frame is the centre frame 7
    assert torch.allclose(w.clean, srgb_to_linear(torch.tensor(160 / 255.0)).expand(1, 3, 32, 32))
    means = w.noisy[0].mean(dim=(1, 2, 3))
    expected = srgb_to_linear(torch.tensor([160.0, 120, 140, 180, 200]) / 255)
    assert (means - expected).abs().max() < 3e-3
    high = items[("a_0007", "high")]
    assert torch.equal(high.clean, w.clean) and not torch.equal(high.noisy, w.noisy)
    make_video_testset(clips, tmp_path / "b", patch_size=32, seed=3, progress=False)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")  # byte-identical
    m2 = make_video_testset(clips, tmp_path / "c", patch_size=32, seed=4, windows=1)
    assert len(m2["windows"]) == 4
    e2 = next(e for e in m2["windows"] if e["image"] == "a_0002")
    e1 = next(e for e in m["windows"] if e["image"] == "a_0002" and e["level"] == "low")
    assert e2["sha256"] != e1["sha256"]


def test_photo_windows_store_their_motion(tmp_path, photo_folder):
    m = make_video_testset(photo_folder, tmp_path / "p", patch_size=48, seed=0, progress=False)
    assert m["generator"]["layout"] == "photos" and len(m["windows"]) == 8
    w = next(iter(VideoTestSet(tmp_path / "p")))
    assert w.motion.shape == (5, 2) and not w.motion[0].any()
    assert w.motion.abs().max() > 0
    assert m["windows"][0]["motion"] == w.motion.tolist()


def test_sha_and_bad_input(tmp_path, photo_folder):
    clips = make_clip_folder(tmp_path / "clips")
    make_video_testset(clips, tmp_path / "t", patch_size=24, progress=False)
    ts = VideoTestSet(tmp_path / "t")
    path = tmp_path / "t" / ts.entries[0]["file"]
    path.write_bytes(path.read_bytes()[:-4] + b"abcd")
    with pytest.raises(InputError, match="sha256"):
        ts.load(ts.entries[0])
    with pytest.raises(InputError, match="smaller than the patch"):
        make_video_testset(clips, tmp_path / "u", patch_size=64, progress=False)
    with pytest.raises(InputError, match="too small"):
        make_video_testset(photo_folder, tmp_path / "v", patch_size=160, progress=False)
    with pytest.raises(InputError, match="9 or more frames"):
        make_video_testset(clips, tmp_path / "w", num_frames=9, layout="clips")
    (tmp_path / "burst").mkdir()
    (tmp_path / "burst" / "manifest.json").write_text(json.dumps({"format": "burstkpn-testset"}))
    with pytest.raises(InputError, match="not a video test set"):
        VideoTestSet(tmp_path / "burst")


def test_make_testset_video_cli(tmp_path, capsys):
    clips = make_clip_folder(tmp_path / "clips")
    out = tmp_path / "ts"
    args = ["make-testset", "--task", "video", str(clips), "--out", str(out), "--patch", "24"]
    assert main([*args, "--quiet", "--noise", "low"]) == 0
    assert "2 windows from clips x 1 levels" in capsys.readouterr().out
    z = np.load(out / "windows" / "a_0002_low.npz")
    assert z["noisy_u16"].dtype == np.uint16 and z["noisy_u16"].shape == (5, 3, 24, 24)
    assert main([*args, "--quiet"]) == 2  # a non-empty output folder
    bad = ["make-testset", "--task", "video", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]
    assert main(bad) == 2


def test_vid4_windows(shared_data, tmp_path):
    vid4 = shared_data / "video" / "vid4"
    if not vid4.is_dir():
        pytest.skip("vid4 not available")
    m = make_video_testset(vid4, tmp_path / "v", windows=2, progress=False)
    assert m["generator"]["layout"] == "clips" and len(m["windows"]) == 2 * 2 * 2
