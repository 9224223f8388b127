"""The parser: built without torch, its defaults agree with the library's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from burstkpn.cli import build_parser
from tests.conftest import REPO


def test_parser_builds_without_torch():
    code = (
        "import sys; from burstkpn.cli import build_parser; build_parser(); "
        "heavy = [m for m in ('torch', 'numpy', 'burstkpn.bench.video', 'burstkpn.jobs') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr


def test_parser_defaults_match_the_benchmarks():
    from burstkpn.bench import video
    from burstkpn.cli import bench

    assert bench.DEFAULT_VIDEO_METHODS == video.DEFAULT_VIDEO_METHODS
    assert bench.DEFAULT_MOTION_METHODS == video.DEFAULT_MOTION_METHODS


@pytest.mark.parametrize(
    "argv,module,func",
    [
        (["synth", "x", "--out", "o"], "data", "cmd_synth"),
        (["make-testset", "x", "--out", "o"], "data", "cmd_make_testset"),
        (["train"], "train", "cmd_train"),
        (["denoise", "x", "-o", "o.png"], "denoise", "cmd_denoise"),
        (["deblur", "x", "-o", "o.png"], "denoise", "cmd_deblur"),
        (["demo"], "denoise", "cmd_demo"),
        (["export-onnx", "m", "o.onnx"], "export", "cmd_export_onnx"),
        (["export-weights", "r", "--name", "n"], "export", "cmd_export_weights"),
        (["bench", "speed"], "bench", "cmd_bench_speed"),
        (["bench", "quality", "--testset", "t", "--out", "o"], "bench", "cmd_bench_quality"),
        (["bench", "restore", "--task", "denoise", "--out", "o"], "bench", "cmd_bench_restore"),
        (["bench", "real", "f"], "bench", "cmd_bench_real"),
        (["bench", "video", "--testset", "t", "--out", "o"], "bench", "cmd_bench_video"),
        (["bench", "motion", "--out", "o"], "bench", "cmd_bench_motion"),
        (["bench", "ablation", "--testset", "t"], "bench", "cmd_bench_ablation"),
    ],
)
def test_each_command_runs_its_function(argv, module, func):
    f = build_parser().parse_args(argv).func
    assert (f.__module__, f.__name__) == (f"burstkpn.cli.{module}", func)


def test_help_lists_the_commands_in_order(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    order = ["synth", "make-testset", "train", "denoise", "deblur", "demo", "export-onnx"]
    order += ["export-weights", "bench"]
    listed = [
        line.split()[0] for line in out.splitlines() if line.startswith("    ") and line[4] != " "
    ]
    assert listed == order


def test_device_reaches_the_runner(tmp_path, capsys, monkeypatch):
    """``--device`` is handed to the one runner; cuda without a GPU is a one-line error."""
    import numpy as np
    import torch

    from burstkpn.cli import main
    from burstkpn.data.io.images import write_image

    for i in range(3):
        write_image(tmp_path / f"f{i}.png", np.full((16, 16, 3), 0.4 + 0.01 * i))
    if torch.cuda.is_available():
        return
    code = main(["denoise", str(tmp_path), "-o", str(tmp_path / "out.png"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "no CUDA device" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.png").exists()
