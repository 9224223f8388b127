"""``burstkpn bench quality``: methods x test set -> PSNR / SSIM per noise level, in the layout of
ame_kpn.md Table 1, plus seconds per megapixel; results.csv, results.json, report.md and
report.html in the output folder.

PSNR / SSIM are :func:`burstkpn.metrics.psnr` / :func:`~burstkpn.metrics.ssim` (gamma-corrected,
clipped, 8-pixel border, per image), averaged over the bursts of each level.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from burstkpn.bench.methods import resolve_method
from burstkpn.data.io.files import atomic_write_bytes, prepare_output_dir
from burstkpn.data.testsets.burst import TestSet
from burstkpn.errors import InputError
from burstkpn.metrics import psnr, ssim
from burstkpn.models.traits import model_traits


def select_entries(testset: TestSet, limit: int | None) -> list[dict]:
    """All bursts, or those of the first ``limit`` images (sorted by name), every level."""
    entries = testset.manifest["bursts"]
    if limit is None:
        return entries
    names = sorted({e["image"] for e in entries})[:limit]
    return [e for e in entries if e["image"] in set(names)]


def evaluate(
    testset_dir: str | Path,
    methods: list[str],
    *,
    limit: int | None = None,
    examples: int = 3,
    example_level: str = "gain3",
    progress: bool = True,
) -> dict:
    """Run every available method on every selected burst. Returns ``{"rows": per-burst
    results, "notes": {method: note}, "examples": [...], "levels": [...]}``."""
    testset = TestSet(testset_dir)
    entries = select_entries(testset, limit)
    if not entries:
        raise InputError(f"test set '{testset_dir}' has no bursts")
    frames = len(entries[0]["offsets"])
    levels_present = list(dict.fromkeys(e["level"] for e in entries))
    if example_level not in levels_present:  # e.g. a Low / High test set: its noisiest level
        example_level = levels_present[-1]
    resolved, notes = {}, {}
    for name in methods:
        fn, note = resolve_method(name)
        model = getattr(fn, "model", None)  # learned methods carry their model
        traits = None if model is None else model_traits(model)
        wanted = None if traits is None else traits.frames
        if wanted not in (None, 1, frames) and traits.kind != "single":
            fn, note = None, f"skipped: takes bursts of {wanted} frames, the test set has {frames}"
        notes[name] = note
        if fn is None:
            print(f"bench: {name} {note}")
        else:
            resolved[name] = fn
    example_images = sorted({e["image"] for e in entries})[:examples]
    rows, shown = [], []
    for entry in tqdm(entries, desc="bench quality", unit="burst", disable=not progress):
        item = testset.load(entry)
        mp = item.clean.shape[-2] * item.clean.shape[-1] / 1e6
        keep = entry["level"] == example_level and entry["image"] in example_images
        outputs = {}
        for name, fn in resolved.items():
            t0 = time.perf_counter()
            out = fn(item).float()
            seconds = time.perf_counter() - t0
            rows.append(
                {
                    "method": name,
                    "image": entry["image"],
                    "level": entry["level"],
                    "psnr": float(psnr(out, item.clean)[0]),
                    "ssim": float(ssim(out, item.clean)[0]),
                    "seconds": seconds,
                    "megapixels": mp,
                }
            )
            if keep:
                outputs[name] = out[0]
        if keep:
            shown.append(
                {
                    "name": entry["image"],
                    "level": entry["level"],
                    "item": item,
                    "clean": item.clean[0],
                    "noisy": item.noisy[0, 0],
                    "outputs": outputs,
                }
            )
    return {
        "rows": rows,
        "notes": notes,
        "examples": shown,
        "levels": testset.levels,
        "methods": list(resolved),
        "bursts": len(entries),
    }


def summarize(result: dict) -> dict:
    """Mean PSNR / SSIM per method and level, and seconds per megapixel per method."""
    table_rows = []
    for name in result["methods"]:
        mine = [r for r in result["rows"] if r["method"] == name]
        row = {"method": name, "psnr": {}, "ssim": {}, "note": result["notes"].get(name, "")}
        for level in result["levels"]:
            at = [r for r in mine if r["level"] == level]
            row["psnr"][level] = sum(r["psnr"] for r in at) / len(at) if at else None
            row["ssim"][level] = sum(r["ssim"] for r in at) / len(at) if at else None
        total_mp = sum(r["megapixels"] for r in mine)
        row["sec_per_mp"] = sum(r["seconds"] for r in mine) / total_mp if total_mp else None
        table_rows.append(row)
    skipped = [m for m, note in result["notes"].items() if note.startswith("skipped")]
    return {"levels": result["levels"], "rows": table_rows, "skipped": skipped}


def markdown_table(summary: dict) -> str:
    levels = summary["levels"]
    head = "| Method | " + " | ".join(f"{lv} PSNR | {lv} SSIM" for lv in levels) + " | s / MP |"
    sep = "|---|" + "---|---|" * len(levels) + "---|"
    lines = [head, sep]

    def fmt(v, digits):
        return "–" if v is None else f"{v:.{digits}f}"

    for row in summary["rows"]:
        cells = []
        for lv in levels:
            cells += [fmt(row["psnr"][lv], 2), fmt(row["ssim"][lv], 4)]
        lines.append(
            f"| {row['method']} | " + " | ".join(cells) + f" | {fmt(row['sec_per_mp'], 2)} |"
        )
    return "\n".join(lines)


CLASSICAL_ANCHORS = (
    "reference",
    "average",
    "oracle_average",
    "nlm",
    "nlm_multi",
    "bm3d",
    "align_bm3d",
)


def standing(
    summary: dict, *, tie_db: float = 0.05, classical: tuple[str, ...] = CLASSICAL_ANCHORS
) -> list[str]:
    """Plain sentences, computed from ``summary``: where each learned method stands against
    every classical method (and the anchors) at every level, by mean PSNR. ``classical``
    names the non-learned methods (``bench restore`` has its own)."""
    rows = {r["method"]: r for r in summary["rows"]}
    learned = [m for m in rows if m not in classical]
    classical = [m for m in classical if m in rows]
    if not classical:  # nothing to stand against
        return []
    lines = []
    for m in learned:
        for lv in summary["levels"]:
            mine = rows[m]["psnr"][lv]
            if mine is None:
                continue
            above, below, tied = [], [], []
            for c in classical:
                theirs = rows[c]["psnr"][lv]
                if theirs is None:
                    continue
                d = mine - theirs
                entry = f"{c} ({d:+.2f} dB)"
                (tied if abs(d) < tie_db else above if d > 0 else below).append(entry)
            parts = []
            if above:
                parts.append("above " + ", ".join(above))
            if tied:
                parts.append("level with " + ", ".join(tied))
            if below:
                parts.append("below " + ", ".join(below))
            lines.append(f"- {m} at {lv} ({mine:.2f} dB): " + "; ".join(parts) + ".")
    return lines


def ame_visualisation(examples: list[dict]) -> dict | None:
    """What AME-KPN predicts at one pixel of the first example: per-frame kernels, weight maps W
    and residual maps R (channel 0)."""
    from burstkpn.models import load_pretrained

    if not examples:
        return None
    try:
        model = load_pretrained("ame_kpn")
    except InputError:
        return None
    item = examples[0]["item"]
    if item.noisy.shape[1] != model.num_frames:  # e.g. a single-image test set
        return None
    with torch.no_grad():
        out = model(item.noisy, item.noise_map, return_aux=True)
    clean = item.clean[0, 0]
    gy = (clean[1:, :-1] - clean[:-1, :-1]).abs() + (clean[:-1, 1:] - clean[:-1, :-1]).abs()
    idx = int(gy[8:-8, 8:-8].argmax()) if gy.shape[0] > 16 and gy.shape[1] > 16 else 0
    width = max(gy.shape[1] - 16, 1)
    y, x = (idx // width + 8, idx % width + 8) if gy.shape[0] > 16 else (0, 0)
    aux = out.aux
    return {
        "pixel": (y, x),
        "kernels": aux["kernels"][0, :, 0, :, y, x],
        "weights": aux["weights"][0, :, 0] if "weights" in aux else None,
        "residuals": aux["residuals"][0, :, 0] if "residuals" in aux else None,
        "frames": item.noisy[0, :, 0],
    }


def write_reports(result: dict, out: Path, command: str) -> dict:
    """results.csv, results.json, report.md and report.html."""
    from burstkpn.bench.report import write_html_report

    summary = summarize(result)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(result["rows"][0]) if result["rows"] else [])
    writer.writeheader()
    writer.writerows(result["rows"])
    atomic_write_bytes(out / "results.csv", buf.getvalue().encode())
    payload = {
        "command": command,
        "bursts": result["bursts"],
        "summary": summary,
        "notes": result["notes"],
        "rows": result["rows"],
    }
    atomic_write_bytes(out / "results.json", (json.dumps(payload, indent=1) + "\n").encode())
    skipped = "".join(f"\n- {m}: {result['notes'][m]}" for m in summary["skipped"])
    lines = standing(summary)
    md = (
        f"# Benchmark\n\n`{command}`\n\n{result['bursts']} bursts. PSNR (dB) / SSIM on "
        "sRGB-gamma-corrected images, 8-pixel border ignored, averaged per image; s / MP is "
        "wall time per megapixel of output.\n\n"
        + markdown_table(summary)
        + "\n"
        + (
            "\nStanding (mean PSNR, learned minus classical):\n\n" + "\n".join(lines) + "\n"
            if lines
            else ""
        )
        + (f"\nSkipped:{skipped}\n" if skipped else "")
    )
    atomic_write_bytes(out / "report.md", md.encode())
    table = {**summary, "caption": command}
    examples = [
        {k: e[k] for k in ("name", "level", "clean", "noisy", "outputs")}
        for e in result["examples"]
    ]
    write_html_report(out, table, examples, ame_visualisation(result["examples"]))
    return summary


def run_quality(
    testset_dir,
    methods,
    out_dir,
    *,
    limit=None,
    force=False,
    progress=True,
    command="burstkpn bench quality",
) -> dict:
    out = prepare_output_dir(out_dir, force)
    result = evaluate(testset_dir, list(methods), limit=limit, progress=progress)
    return write_reports(result, out, command)


def run_ablation(testset_dir, checkpoints_dir, *, limit=None, progress=True) -> tuple[str, dict]:
    """ame_kpn.md Table 2 from ``ame_kpn_model{1..6}.safetensors`` in ``checkpoints_dir``:
    the configurations whose checkpoints exist are evaluated, the others shown as missing."""
    from burstkpn.bench.methods import model_method
    from burstkpn.models import TABLE2_CONFIGS, load_model

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
        fn = model_method(model)
        values = []
        for entry in tqdm(entries, desc=f"model {i}", disable=not progress, leave=False):
            item = testset.load(entry)
            values.append(float(psnr(fn(item), item.clean)[0]))
        scores[i] = sum(values) / len(values)
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
