from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from burstkpn.cli import main
from burstkpn.data.io.images import read_image


def test_synth_writes_viewable_burst(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["synth", "astronaut", "--noise", "gain3", "--out", str(out), "--patch", "96"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert {"clean.png", "contact_sheet.png", "noise_map.png", "burst.npz", "meta.json"} <= set(
        names
    )
    assert sum(n.startswith("frame_") for n in names) == 8
    assert read_image(out / "frame_00.png").shape == (96, 96, 3)
    sheet = read_image(out / "contact_sheet.png")
    assert sheet.shape[0] > 2 * 96 and sheet.shape[1] > 4 * 96
    meta = json.loads((out / "meta.json").read_text())
    assert meta["noise"]["name"] == "gain3" and len(meta["offsets"]) == 8
    # same seed again gives the same files
    out2 = tmp_path / "s2"
    main(["synth", "astronaut", "--noise", "gain3", "--out", str(out2), "--patch", "96"])
    assert (out / "burst.npz").read_bytes() == (out2 / "burst.npz").read_bytes()
    assert "contact_sheet.png" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["synth", "/no/such.png", "--out", "{tmp}/o"], "no such file"),
        (["synth", "astronaut", "--noise", "gain7", "--out", "{tmp}/o"], "unknown noise level"),
        (["synth", "astronaut", "--patch", "600", "--out", "{tmp}/o"], "smaller than the patch"),
        (["synth", "astronaut", "--frames", "1", "--out", "{tmp}/o"], "at least 2 frames"),
        (["make-testset", "{tmp}/empty", "--out", "{tmp}/o"], "no images"),
        (["synth", "{tmp}/bad.txt", "--out", "{tmp}/o"], "unsupported image format"),
    ],
)
def test_bad_input_one_line_error(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.txt").write_text("x")
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_refuses_non_empty_output(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["synth", "astronaut", "--patch", "64", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["synth", "astronaut", "--patch", "64", "--out", str(out), "--force"]) == 0
    assert (out / "keep.txt").read_text() == "mine"


def test_console_script_runs():
    exe = [sys.executable, "-m", "burstkpn.cli", "--version"]
    res = subprocess.run(exe, capture_output=True, text=True, check=True)
    assert res.stdout.startswith("burstkpn ")


def test_make_testset_cli(tmp_path, photo_folder):
    out = tmp_path / "ts"
    code = main(
        [
            "make-testset",
            str(photo_folder),
            "--out",
            str(out),
            "--noise",
            "gain1,gain2",
            "--frames",
            "4",
            "--patch",
            "40",
            "--quiet",
        ]
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["bursts"]) == 8
    assert np.all([(out / e["file"]).is_file() for e in manifest["bursts"]])
