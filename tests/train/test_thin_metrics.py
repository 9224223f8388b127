"""training/thin_metrics.py: thinning a committed run's metrics keeps every validation row."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

TOOL = REPO / "training" / "thin_metrics.py"


def _rows(n: int, val_every: int) -> list[dict]:
    rows = []
    for step in range(10, n + 1, 10):
        row = {"step": step, "loss": 1.0 / step}
        if step % val_every == 0:
            row["val_psnr_gain1"] = 30.0 + step / 1000
        rows.append(row)
    return rows


def test_thin_keeps_validation_first_last_and_multiples(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = _rows(1230, val_every=250)
    lines = [json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    res = subprocess.run(
        [sys.executable, str(TOOL), str(path), "--every", "100"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    kept = path.read_text().splitlines()
    steps = [json.loads(ln)["step"] for ln in kept]
    want = sorted({10, 1230} | set(range(100, 1231, 100)) | set(range(250, 1231, 250)))
    assert steps == want
    # rows are kept verbatim, validation rows all there
    assert set(kept) <= set(lines)
    assert [ln for ln in lines if "val_" in ln] == [ln for ln in kept if "val_" in ln]
    assert "kept 16 of 123 rows" in res.stdout


def test_thin_clear_errors(tmp_path):
    missing = subprocess.run(
        [sys.executable, str(TOOL), str(tmp_path / "nope.jsonl")], capture_output=True, text=True
    )
    assert missing.returncode != 0 and "no such file" in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    res = subprocess.run([sys.executable, str(TOOL), str(bad)], capture_output=True, text=True)
    assert res.returncode != 0 and "not JSON lines" in res.stderr
    assert bad.read_text() == "{not json\n"  # input untouched on error
