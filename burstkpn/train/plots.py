"""``loss.png`` of a run folder: the training loss and the validation PSNR per step."""

from __future__ import annotations

import json
from pathlib import Path

from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.train.data import VAL_LEVELS, VIDEO_VAL_LEVELS
from burstkpn.viz import figure_png


def plot_metrics(run: Path) -> Path | None:
    """``loss.png``: training loss (and its basic term) and validation PSNR per step."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return None
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in rows]
    if "basic" in rows[0]:  # burst task
        a.semilogy(steps, [r["loss"] for r in rows], label="total (eq. 8)", lw=0.8)
        a.semilogy(steps, [r["basic"] for r in rows], label="basic (eq. 7)", lw=0.8)
    elif "groups" in rows[0]:  # video task, [DeformKernels]
        a.semilogy(steps, [r["loss"] for r in rows], label="total (eq. 11)", lw=0.8)
        a.semilogy(steps, [r["l1"] for r in rows], label="gamma L1 (eq. 9)", lw=0.8)
    else:  # denoise / deblur
        a.semilogy(steps, [r["mse"] for r in rows], label="MSE, sRGB (dcn_lka eq. 7)", lw=0.8)
        a.semilogy(steps, [r["l1"] for r in rows], label="L1, sRGB", lw=0.8)
    a.set_xlabel("step")
    a.set_title("training loss")
    a.legend()
    val = [r for r in rows if "val_psnr" in r]
    for key in ["val_psnr"] + [f"val_psnr_{lv}" for lv in VAL_LEVELS + VIDEO_VAL_LEVELS]:
        pts = [(r["step"], r[key]) for r in val if key in r]
        if pts:
            b.plot(
                *zip(*pts, strict=True),
                marker="o",
                ms=3,
                label=key.replace("val_psnr_", "").replace("val_psnr", "mean"),
            )
    b.set_xlabel("step")
    b.set_ylabel("PSNR (dB)")
    b.set_title("validation")
    if val:
        b.legend()
    fig.tight_layout()
    data = figure_png(fig, dpi=90)
    plt.close(fig)
    atomic_write_bytes(run / "loss.png", data)
    return run / "loss.png"
