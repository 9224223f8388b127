"""Write BENCHMARKS.md from a `burstkpn bench quality` report folder.

    burstkpn bench quality --testset DIR --out reports/cbsd68 ...
    python benchmarks/write_benchmarks_md.py reports/cbsd68 --out BENCHMARKS.md \
        [--extra reports/polyu --extra reports/deblur ...]

Every number in the page comes from ``reports/cbsd68/results.json``; the page names the
command that produced it, the machine, the date and the weights' training steps. Each
``--extra`` folder (written by another ``burstkpn bench`` command: ``restore``, ``ablation``,
...) adds its ``report.md`` as a section, headings demoted one level; that file names the
command that produced its numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
from pathlib import Path

import torch

from burstkpn.bench.quality import SHADOWS, bias_table, markdown_table, standing
from burstkpn.data.io.files import atomic_write_bytes


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = "AVX-512 BF16" if "avx512_bf16" in text else "AVX2, no native bf16"
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu} ({flags}), {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, {gpu}"
    )


def sanity(summary: dict) -> list[str]:
    rows = {r["method"]: r for r in summary["rows"]}
    if "oracle_average" not in rows or "reference" not in rows:
        return []
    out = []
    for lv in summary["levels"]:
        o, r = rows["oracle_average"]["psnr"][lv], rows["reference"]["psnr"][lv]
        if o is not None and r is not None:
            out.append(f"{lv}: oracle_average {o:.2f} dB vs reference {r:.2f} dB ({o - r:+.2f} dB)")
    return out


RECORDS = ("report.md", "results.json", "results.csv", "kernels.json", "motion.json")
RUN_INFO = "run.json"  # date and machine of a kept report (a git checkout does not keep mtimes)


def run_info(folder: Path, record: str) -> tuple[str, str]:
    """(date, machine) of the bench run behind ``folder``: from its ``run.json`` when the folder
    is a kept copy, else the date of ``record`` and this machine (a fresh report folder)."""
    kept = folder / RUN_INFO
    if kept.is_file():
        info = json.loads(kept.read_text())
        return info["date"], info["machine"]
    stamp = dt.datetime.fromtimestamp((folder / record).stat().st_mtime)
    return f"{stamp:%Y-%m-%d}", machine()


def keep_records(folder: Path, assets: Path, record: str) -> tuple[str, str]:
    """Copy the report's text records (tables, raw results) to ``assets/<folder name>/`` with
    the run's date and machine (``run.json``), so the numbers stay in the repository (report
    folders are not committed) and a later run of this script can be pointed at the copy
    instead of re-running the bench. Returns the run's (date, machine)."""
    import shutil

    date, where = run_info(folder, record)
    target = assets / folder.name
    if target.resolve() == folder.resolve():
        return date, where
    for name in RECORDS:
        if (folder / name).is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / name, target / name)
    info = json.dumps({"date": date, "machine": where}, indent=1) + "\n"
    atomic_write_bytes(target / RUN_INFO, info.encode())
    return date, where


def extra_section(folder: Path, assets: Path, title: str = "") -> list[str]:
    """``folder/report.md`` with its headings demoted one level and the run's date and machine;
    the images it shows are copied to ``assets/<folder name>/`` and the links rewritten, so the
    page renders from the repository (report folders are not committed)."""
    import re
    import shutil

    report = folder / "report.md"
    if not report.is_file():
        raise SystemExit(f"error: no report.md in '{folder}'")
    date, where = keep_records(folder, assets, "report.md")
    target = assets / folder.name

    def relink(match: re.Match) -> str:
        src = folder / match.group(2)
        if not src.is_file():
            return match.group(0)
        target.mkdir(parents=True, exist_ok=True)
        if src.resolve() != (target / src.name).resolve():
            shutil.copyfile(src, target / src.name)
        return f"![{match.group(1)}]({(target / src.name).as_posix()})"

    out = []
    for i, line in enumerate(report.read_text().splitlines()):
        line = re.sub(r"!\[([^\]]*)\]\(([^)/:]+\.png)\)", relink, line)
        if i == 0 and title and line.startswith("# "):
            line = f"# {title}"
        out.append("#" + line if line.startswith("#") else line)
        if i == 0:
            out += ["", f"Run on {date}: {where}. Report folder: `{folder}`."]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="folder written by `burstkpn bench quality`")
    ap.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    ap.add_argument("--title", default="CBSD68 bursts, Gain 1-4, 8 frames")
    ap.add_argument("--note", default="", help="a sentence about the run (load, subset, ...)")
    ap.add_argument(
        "--assets",
        type=Path,
        default=Path("docs/benchmarks"),
        help="where the extra reports' images are copied (default docs/benchmarks)",
    )
    ap.add_argument(
        "--extra",
        action="append",
        default=[],
        help="another bench report folder whose report.md becomes a section; "
        "DIR=TITLE replaces its heading",
    )
    args = ap.parse_args()
    date, where = keep_records(args.report, args.assets, "results.json")
    data = json.loads((args.report / "results.json").read_text())
    summary = data["summary"]
    notes = data.get("notes", {})
    lines = [
        "# Benchmarks",
        "",
        f"## {args.title}",
        "",
        "Produced by:",
        "",
        "```bash",
        "burstkpn make-testset ../shared/data/eval/cbsd68 --out TESTSET --seed 0",
        data["command"],
        "python benchmarks/write_benchmarks_md.py "
        + " ".join([str(args.report)] + [f"--extra {shlex.quote(str(e))}" for e in args.extra])
        + (' --note "..."' if args.note else ""),
        "```",
        "",
        f"Run on {date}: {where}. {data['bursts']} bursts. PSNR (dB) / SSIM on "
        "sRGB-gamma-corrected images clipped to [0, 1], 8-pixel border ignored, computed per "
        "image and then averaged (`burstkpn.metrics`, tested against scikit-image); s / MP is "
        "wall time per megapixel of output on this machine.",
        "",
        *([args.note, ""] if args.note else []),
        markdown_table(summary),
        "",
        *([SHADOWS, "", bias, ""] if (bias := bias_table(summary)) else []),
        "Methods:",
        "",
    ]
    for row in summary["rows"]:
        note = notes.get(row["method"], "")
        lines.append(f"- `{row['method']}`" + (f": {note}" if note else ""))
    if summary.get("skipped"):
        lines += ["", "Skipped: " + ", ".join(summary["skipped"])]
    checks = sanity(summary)
    if checks:
        lines += ["", "Sanity check of the synthesis (oracle alignment then averaging):", ""]
        lines += [f"- {c}" for c in checks]
    stand = standing(summary)
    if stand:
        lines += ["", "Where the learned models stand (mean PSNR, learned minus other):", ""]
        lines += stand
    for extra in args.extra:
        folder, _, title = str(extra).partition("=")
        lines += ["", *extra_section(Path(folder), args.assets, title)]
    atomic_write_bytes(args.out, ("\n".join(lines) + "\n").encode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
