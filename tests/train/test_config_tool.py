"""training/config_tool.py: the config edits the round scripts make."""

from __future__ import annotations

import subprocess
import sys

import torch
import yaml
from safetensors.torch import save_file

from tests.conftest import REPO

TOOL = REPO / "training" / "config_tool.py"


def _tool(*args) -> str:
    res = subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_set_and_cooldown(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(
        yaml.safe_dump({"lr": 1e-3, "lr_decay": 0.5, "epoch_steps": 100, "ema_decay": 0.0})
    )
    save_file({"x": torch.zeros(1)}, run / "last.optim.safetensors", metadata={"step": "250"})
    _tool("set", run, "lr=3e-4", "exposure_range=[0.1, 1.0]")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["lr"] == 3e-4 and cfg["exposure_range"] == [0.1, 1.0]
    out = _tool("cooldown", run, "3e-5", "0.98")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    # epoch 2 at step 250: lr * 0.5 ** 2 = 3e-5
    assert cfg["lr"] == 1.2e-4 and cfg["ema_decay"] == 0.98 and "epoch 2" in out
