from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from burstkpn.data.testsets.burst import TestSet, make_testset
from burstkpn.data.testsets.manifest import NOISY_SCALE
from burstkpn.errors import InputError


def _tree_bytes(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_make_twice_is_byte_identical(tmp_path, photo_folder):
    kw = dict(levels=["gain1", "gain4"], num_frames=4, patch_size=48, seed=0, progress=False)
    m1 = make_testset(photo_folder, tmp_path / "a", **kw)
    make_testset(photo_folder, tmp_path / "b", **kw)
    assert _tree_bytes(tmp_path / "a") == _tree_bytes(tmp_path / "b")
    assert len(m1["bursts"]) == 4 * 2
    make_testset(photo_folder, tmp_path / "c", **{**kw, "seed": 1})
    assert _tree_bytes(tmp_path / "a") != _tree_bytes(tmp_path / "c")


def test_loads_verifies_and_shares_geometry(tmp_path, photo_folder):
    make_testset(
        photo_folder,
        tmp_path / "t",
        levels=["gain1", "gain3"],
        num_frames=5,
        patch_size=48,
        seed=2,
        progress=False,
    )
    ts = TestSet(tmp_path / "t")
    items = list(ts)
    assert ts.levels == ["gain1", "gain3"] and len(items) == 8
    by_image = {}
    for it in items:
        assert it.noisy.shape == (1, 5, 3, 48, 48) and it.clean.shape == (1, 3, 48, 48)
        assert it.noise_map.shape == (1, 3, 48, 48)
        by_image.setdefault(it.image, []).append(it)
    for pair in by_image.values():  # the same scene and motion at every level
        assert torch.equal(pair[0].clean, pair[1].clean)
        assert torch.equal(pair[0].offsets, pair[1].offsets)
        assert not torch.equal(pair[0].noisy, pair[1].noisy)
    # noise has the level's variance (the 16-bit encoding adds nothing measurable)
    it = by_image["img0"][1]
    resid = it.noisy[:, 0] - it.clean
    expected = (0.05**2 + 0.01 * it.clean).mean()
    assert abs(resid.var().item() / expected.item() - 1) < 0.1
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert manifest["generator"]["seed"] == 2 and all(e["clipped"] == 0 for e in manifest["bursts"])
    assert NOISY_SCALE < 1e-4


def test_level_subset_reproduces_same_files(tmp_path, photo_folder):
    kw = dict(num_frames=4, patch_size=40, seed=0, progress=False)
    make_testset(photo_folder, tmp_path / "all", levels=["gain1", "gain2", "gain3"], **kw)
    make_testset(photo_folder, tmp_path / "one", levels=["gain3"], **kw)
    for f in (tmp_path / "one" / "bursts").iterdir():
        assert f.read_bytes() == (tmp_path / "all" / "bursts" / f.name).read_bytes()


def test_refuses_and_detects(tmp_path, photo_folder):
    out = tmp_path / "t"
    make_testset(photo_folder, out, levels=["gain2"], num_frames=3, patch_size=40, progress=False)
    with pytest.raises(InputError, match="not empty"):
        make_testset(photo_folder, out, levels=["gain2"], progress=False)
    victim = next((out / "bursts").iterdir())
    data = bytearray(victim.read_bytes())
    data[-30] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(InputError, match="sha256"):
        list(TestSet(out))
    with pytest.raises(InputError, match="not a test set"):
        TestSet(tmp_path)
    with pytest.raises(InputError, match="at least 1 frame"):
        make_testset(photo_folder, tmp_path / "x", num_frames=0, progress=False)


def test_single_image_testset(tmp_path, photo_folder):
    """``num_frames=1``: single noisy images ([DeformKernels] Table 2 rows)."""
    m = make_testset(
        photo_folder,
        tmp_path / "s",
        levels=["low", "high"],
        num_frames=1,
        patch_size=32,
        progress=False,
    )
    assert {b["level"] for b in m["bursts"]} == {"low", "high"}
    item = TestSet(tmp_path / "s").load(m["bursts"][0])
    assert item.noisy.shape[:2] == (1, 1) and item.noisy.shape[-2:] == item.clean.shape[-2:]


def test_cbsd68_testset_fast_and_reproducible(tmp_path, shared_data):
    src = shared_data / "eval" / "cbsd68"
    t0 = time.perf_counter()
    m = make_testset(src, tmp_path / "a", seed=0, progress=False)
    elapsed = time.perf_counter() - t0
    make_testset(src, tmp_path / "b", seed=0, progress=False)
    assert elapsed < 120, elapsed
    assert len(m["bursts"]) == 68 * 4
    assert _tree_bytes(tmp_path / "a") == _tree_bytes(tmp_path / "b")
    assert np.mean([e["mode"] == "subpixel" for e in m["bursts"]]) == 1.0


def test_camera_testset_writes_and_reads_back(tmp_path, capsys):
    """``pipeline="camera"``: developed frames, the fitted noise line as the stored level, the
    camera in the manifest; an old manifest without ``pipeline`` reads as independent."""
    from burstkpn.cli import main

    out = tmp_path / "cam"
    code = main(
        [
            "make-testset",
            "skimage:astronaut",
            "--out",
            str(out),
            "--noise",
            "gain1,gain3",
            "--frames",
            "4",
            "--patch",
            "32",
            "--pipeline",
            "camera",
            "--quiet",
        ]
    )
    assert code == 0
    make_testset(
        ["astronaut", "chelsea"],
        out,
        levels=["gain1", "gain3"],
        num_frames=4,
        patch_size=32,
        seed=1,
        force=True,
        progress=False,
        pipeline="camera",
    )
    ts = TestSet(out)
    assert ts.pipeline == "camera" and len(ts) == 4
    entries = {(e["image"], e["level"]): e for e in ts.manifest["bursts"]}
    for (image, _level), e in entries.items():
        assert e["raw_sigma_r"] > 0 and len(e["noise_line"]["a"]) == 3
        assert 70 <= e["camera"]["jpeg_quality"] <= 95 and len(e["camera"]["rgb2cam"]) == 3
        # one camera per image, shared by its levels
        assert e["camera"] == entries[(image, "gain1")]["camera"]
    assert entries[("astronaut", "gain1")]["camera"] != entries[("chelsea", "gain1")]["camera"]
    for item in ts:
        e = entries[(item.image, item.level)]
        assert item.noisy.shape == (1, 4, 3, 32, 32)
        assert item.noisy.min() >= -1e-4 and item.noisy.max() <= 1 + 1e-4  # developed frames
        assert (item.sigma_r, item.sigma_s) == (e["sigma_r"], e["sigma_s"])
        assert torch.isfinite(item.noise_map).all() and item.noise_map.min() >= 0
    gain1, gain3 = entries[("astronaut", "gain1")], entries[("astronaut", "gain3")]
    assert gain3["sigma_r"] ** 2 + gain3["sigma_s"] > gain1["sigma_r"] ** 2 + gain1["sigma_s"]
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["generator"]["pipeline"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert TestSet(out).pipeline == "independent"
    with pytest.raises(InputError, match="pipeline"):
        make_testset(["astronaut"], tmp_path / "x", pipeline="raw", progress=False)
    bad = ["make-testset", "astronaut", "--out", str(tmp_path / "y"), "--task", "deblur"]
    assert main([*bad, "--pipeline", "camera", "--quiet"]) == 2
    assert "--pipeline camera" in capsys.readouterr().err
