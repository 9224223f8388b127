"""``burstkpn bench ablation``: [AME-KPN] Table 2 (which modules of AME-KPN matter) from the
checkpoints of its six configurations, scored by the one evaluation loop
(:func:`burstkpn.evaluation.evaluate`)."""

from __future__ import annotations

from pathlib import Path

from burstkpn.data.testsets.burst import TestSet
from burstkpn.errors import InputError
from burstkpn.evaluation import evaluate, mean, model_method, select_entries
from burstkpn.models import TABLE2_CONFIGS, load_model


def run_ablation(testset_dir, checkpoints_dir, *, limit=None, progress=True) -> tuple[str, dict]:
    """[AME-KPN] Table 2 from ``ame_kpn_model{1..6}.safetensors`` in ``checkpoints_dir``:
    the configurations whose checkpoints exist are evaluated, the others shown as missing."""
    folder = Path(checkpoints_dir)
    testset = TestSet(testset_dir)
    entries = select_entries(testset, limit)
    scores: dict[int, float | None] = {}
    for i, switches in TABLE2_CONFIGS.items():
        path = folder / f"ame_kpn_model{i}.safetensors"
        if not path.is_file():
            scores[i] = None
            continue
        model = load_model(path)
        kw = model.config["kwargs"]
        if any(kw.get(k) != v for k, v in switches.items()):
            raise InputError(f"'{path}' is not Model {i} of Table 2 (its switches: {kw})")
        result = evaluate(
            (testset.load(entry) for entry in entries),
            {f"model {i}": model_method(model)},
            total=len(entries),
            desc=f"model {i}",
            progress=progress,
            leave=False,
        )
        scores[i] = mean(r["psnr"] for r in result.rows)
    mark = {True: "✓", False: ""}
    lines = [
        "| Modules | " + " | ".join(f"Model {i}" for i in TABLE2_CONFIGS) + " |",
        "|---|" + "---|" * len(TABLE2_CONFIGS),
    ]
    for key, label in (
        ("channel_attention", "Channel Attention"),
        ("spatial_attention", "Spatial Attention"),
        ("residual", "Residual Map"),
    ):
        lines.append(
            f"| {label} | " + " | ".join(mark[c[key]] for c in TABLE2_CONFIGS.values()) + " |"
        )
    lines.append(
        "| PSNR | "
        + " | ".join("missing" if v is None else f"{v:.2f}" for v in scores.values())
        + " |"
    )
    return "\n".join(lines), scores
