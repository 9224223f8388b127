"""``burstkpn bench speed|quality|restore|real|video|motion|ablation``: the benchmarks.

The default method lists are kept here, where the parser reads them without importing torch;
``burstkpn.bench.video`` and ``burstkpn.bench.real`` have their own (tests check they agree).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from burstkpn.bench.defaults import (
    DEFAULT_BENCH_METHODS,
    DEFAULT_MOTION_METHODS,
    DEFAULT_PAIR_METHODS,
    DEFAULT_REAL_METHODS,
    DEFAULT_VIDEO_METHODS,
)
from burstkpn.cli.denoise import BACKENDS
from burstkpn.errors import InputError


def add_parser(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(
        dest="bench", required=True, metavar="BENCH"
    )
    p = bench.add_parser("quality", help="PSNR / SSIM per noise level of methods on a test set")
    p.add_argument("--testset", required=True, help="folder written by make-testset")
    _methods_option(p, DEFAULT_BENCH_METHODS, "classical names, model names")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--limit", type=int, help="only the first N images (all their levels)")
    p.add_argument("--command-text", help=argparse.SUPPRESS)
    _run_options(p, cmd_bench_quality)

    p = bench.add_parser("restore", help="single-image denoising / deblurring on image pairs")
    p.add_argument("--task", required=True, choices=("denoise", "deblur"))
    p.add_argument("--pairs", help="folder of real pairs (PolyU, SIDD or GoPro layout)")
    p.add_argument("--testset", help="folder written by make-testset --task deblur")
    p.add_argument(
        "--methods",
        help="comma-separated: reference, nlm, bm3d (denoise); blurry, wiener, richardson_lucy "
        "(deblur); shipped weights (dcn_lka_denoise, dcn_lka_deblur) or .safetensors paths",
    )
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--limit", type=int, help="only the first N images")
    _run_options(p, cmd_bench_restore)

    p = bench.add_parser(
        "real",
        help="PSNR / SSIM on a real static burst without ground truth (the second half of the "
        "frames, aligned and averaged, is the reference) or on real noisy / mean pairs",
    )
    p.add_argument(
        "folder",
        nargs="?",
        help="a static burst (>= 3 frames, sorted by name): the first ceil(N/2) frames are "
        "denoised, the rest make the pseudo ground truth",
    )
    p.add_argument(
        "--pairs",
        metavar="DIR",
        help="instead of a burst: a folder of noisy / mean pairs (PolyU X_real.JPG / X_Real.JPG "
        "with X_mean.JPG)",
    )
    p.add_argument(
        "--methods",
        help="comma-separated: reference, align_mean, average, nlm, nlm_multi, bm3d, align_bm3d, "
        "shipped weights or .safetensors paths (default: "
        + ", ".join(DEFAULT_REAL_METHODS)
        + "; with --pairs: "
        + ", ".join(DEFAULT_PAIR_METHODS)
        + ")",
    )
    p.add_argument(
        "--crop", type=int, metavar="SIZE", help="score the centred SIZE x SIZE crop (default: all)"
    )
    p.add_argument("--out", metavar="DIR", help="report folder (default reports/real/<folder>)")
    p.add_argument(
        "--limit", type=int, metavar="N", help="only the first N frames (--pairs: N pairs)"
    )
    _run_options(p, cmd_bench_real)

    p = bench.add_parser("video", help="PSNR / SSIM at Low / High on a video test set (Table 3)")
    p.add_argument("--testset", required=True, help="folder written by make-testset --task video")
    _methods_option(p, DEFAULT_VIDEO_METHODS, "reference, average, model names")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--limit", type=int, help="only the first N windows (all their levels)")
    p.add_argument(
        "--motion-sweep", action="store_true", help="also run bench motion, shown in the report"
    )
    p.add_argument(
        "--kernels",
        nargs="?",
        const="auto",
        metavar="MODEL",
        help="[DeformKernels] Fig. 9 / 10 of a deform3d (time_distribution.png, "
        "kernels.png in the report): by default of the first deform3d among the methods; "
        "MODEL: a deform3d name or .safetensors checkpoint; 'none': no figures",
    )
    _motion_options(p, "motion sweep: ")
    _run_options(p, cmd_bench_video)

    p = bench.add_parser("motion", help="PSNR vs per-frame motion ([DeformKernels] Fig. 8)")
    p.add_argument("--out", required=True, help="report folder")
    _methods_option(p, DEFAULT_MOTION_METHODS, "reference, average, model names")
    _motion_options(p, "")
    _run_options(p, cmd_bench_motion)

    p = bench.add_parser("ablation", help="[AME-KPN] Table 2 from the six checkpoints")
    p.add_argument("--testset", required=True)
    p.add_argument("--checkpoints", help="folder with ame_kpn_model{1..6}.safetensors")
    p.add_argument("--limit", type=int)
    p.add_argument("--out", help="report folder: report.md and results.json")
    _run_options(p, cmd_bench_ablation)

    p = bench.add_parser("speed", help="parameters, GMAC/MP, MP/s and peak memory per model")
    p.add_argument("--models", default="kpn,kpn21,mkpn,ame_kpn", help="comma-separated names")
    p.add_argument("--size", default="cpu", help="cpu, paper or both as cpu,paper")
    p.add_argument("--cost-only", action="store_true", help="parameters and GMAC/MP only")
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--width", type=int, default=512)
    p.add_argument(
        "--precision", default="auto", help="auto (bf16 where native, else fp32), bf16 or fp32"
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--tile", type=int, default=0, help="tile size for tiled inference (0: none)")
    p.add_argument(
        "--backend",
        default="torch",
        help="torch, onnxruntime (float32) or both as torch,onnxruntime: one row per backend",
    )
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.set_defaults(func=cmd_bench_speed)


def _methods_option(p: argparse.ArgumentParser, defaults: tuple[str, ...], names: str) -> None:
    p.add_argument(
        "--methods",
        default=",".join(defaults),
        help=f"comma-separated: {names} or .safetensors paths",
    )


def _run_options(p: argparse.ArgumentParser, func) -> None:
    """The options every bench shares, and the function that runs it."""
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=func)


def _motion_options(p: argparse.ArgumentParser, sweep: str) -> None:
    p.add_argument("--speeds", default="0,1,2,4,8,16", help=f"{sweep}px per frame")
    p.add_argument("--windows", type=int, default=4, help=f"{sweep}windows (default 4)")
    p.add_argument("--source", default="embedded", help=f"{sweep}photos (default embedded)")
    p.add_argument("--noise", default="low", help=f"{sweep}noise level (default low)")
    p.add_argument("--patch", type=int, default=96, help=f"{sweep}window size (96)")
    p.add_argument("--seed", type=int, default=0, help=f"{sweep}seed (default 0)")


def cmd_bench_speed(args: argparse.Namespace) -> int:
    from burstkpn.bench.speed import format_table, model_spec, run_speed
    from burstkpn.models import list_models
    from burstkpn.runtime import PRECISION_CHOICES, resolve_precision

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if model_spec(m)[0] not in list_models():
            raise InputError(
                f"unknown model '{m}' (available: {', '.join(list_models())}, kpn21, "
                "ame_kpn_color, ame_kpn_shared)"
            )
    if args.precision not in PRECISION_CHOICES:
        raise InputError(
            f"precision must be one of {', '.join(PRECISION_CHOICES)}, got '{args.precision}'"
        )
    args.precision = resolve_precision(args.precision)
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    for backend in backends:
        if backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
    if "onnxruntime" in backends and not args.cost_only:
        from burstkpn.export import require

        require("onnxruntime")
    rows = []
    for size in args.size.split(","):
        for backend in backends if not args.cost_only else ["torch"]:
            rows += run_speed(
                models,
                size,
                args.height,
                args.width,
                args.precision,
                args.repeat,
                args.tile,
                measure=not args.cost_only,
                backend=backend,
            )
    print(format_table(rows))
    if args.json:
        from burstkpn.jobs import write_json

        write_json(args.json, rows)
    return 0


def cmd_bench_quality(args: argparse.Namespace) -> int:
    from burstkpn.bench.quality import markdown_table, run_quality

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    command = (
        "burstkpn bench quality " + " ".join(sys.argv[3:])
        if args.command_text is None
        else (args.command_text)
    )
    summary = run_quality(
        args.testset,
        methods,
        args.out,
        limit=args.limit,
        force=args.force,
        progress=not args.quiet,
        command=command,
    )
    print(markdown_table(summary))
    print(f"wrote results.csv, results.json, report.md and report.html to {args.out}/")
    return 0


def cmd_bench_restore(args: argparse.Namespace) -> int:
    from burstkpn.bench.quality import markdown_table
    from burstkpn.bench.restore import DEFAULT_METHODS, run_restore

    methods = [m.strip() for m in (args.methods or "").split(",") if m.strip()]
    summary = run_restore(
        args.task,
        methods or list(DEFAULT_METHODS[args.task]),
        args.out,
        testset=args.testset,
        pairs=args.pairs,
        limit=args.limit,
        force=args.force,
        progress=not args.quiet,
        command="burstkpn bench restore " + " ".join(sys.argv[3:]),
    )
    print(markdown_table(summary))
    print(f"wrote results.csv, results.json and report.md to {args.out}/")
    return 0


def cmd_bench_real(args: argparse.Namespace) -> int:
    import shlex

    from burstkpn.bench.quality import markdown_table
    from burstkpn.bench.real import run_real_burst, run_real_pairs

    if (args.folder is None) == (args.pairs is None):
        raise InputError("give a burst FOLDER or --pairs DIR (one of the two)")
    source = Path(args.folder or args.pairs)
    methods = [m.strip() for m in (args.methods or "").split(",") if m.strip()]
    run = run_real_burst if args.pairs is None else run_real_pairs
    defaults = DEFAULT_REAL_METHODS if args.pairs is None else DEFAULT_PAIR_METHODS
    out = args.out or Path("reports") / "real" / source.resolve().name
    payload = run(
        source,
        methods or defaults,
        out,
        crop=args.crop,
        limit=args.limit,
        force=args.force,
        progress=not args.quiet,
        command="burstkpn bench real " + " ".join(shlex.quote(a) for a in sys.argv[3:]),
    )
    print(markdown_table(payload["summary"]))
    for case in payload["cases"]:
        n = case["noise"]
        print(
            f"{case['name']}: noise sigma_r={n['sigma_r']:.4g}, sigma_s={n['sigma_s']:.4g} "
            f"({n['estimator']}), {case['border']}-px border"
        )
    print(f"wrote results.json, report.md, crops PNG and real.html to {out}/")
    return 0


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{what} must be numbers separated by commas, got '{text}'") from None


def _motion_kwargs(args: argparse.Namespace) -> dict:
    return {
        "speeds": _floats(args.speeds, "--speeds"),
        "source": args.source,
        "windows": args.windows,
        "patch_size": args.patch,
        "level": args.noise,
        "seed": args.seed,
    }


def cmd_bench_video(args: argparse.Namespace) -> int:
    from burstkpn.bench.quality import markdown_table
    from burstkpn.bench.video import run_video

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    summary = run_video(
        args.testset,
        methods,
        args.out,
        limit=args.limit,
        motion_sweep=_motion_kwargs(args) if args.motion_sweep else None,
        kernels=args.kernels,
        force=args.force,
        progress=not args.quiet,
        command="burstkpn bench video " + " ".join(sys.argv[3:]),
    )
    print(markdown_table(summary))
    extra = ", motion.csv, motion.png" if args.motion_sweep else ""
    if (Path(args.out) / "kernels.json").is_file():
        extra += ", time_distribution.png, kernels.png, kernels.json"
    print(f"wrote results.csv, results.json, report.md, report.html{extra} to {args.out}/")
    return 0


def cmd_bench_motion(args: argparse.Namespace) -> int:
    from burstkpn.bench.motion import run_motion

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    table = run_motion(
        args.out,
        methods=methods,
        force=args.force,
        progress=not args.quiet,
        command="burstkpn bench motion " + " ".join(sys.argv[3:]),
        **_motion_kwargs(args),
    )
    speeds = _floats(args.speeds, "--speeds")
    print("mean PSNR (dB) per px/frame: " + ", ".join(f"{s:g}" for s in speeds))
    for name, values in table.items():
        print(f"  {name}: " + ", ".join(f"{v:.2f}" for v in values))
    print(f"wrote motion.csv, motion.json, motion.md and motion.png to {args.out}/")
    return 0


def cmd_bench_ablation(args: argparse.Namespace) -> int:
    import shlex

    from burstkpn.bench.quality import run_ablation
    from burstkpn.data.io.files import prepare_output_dir
    from burstkpn.jobs import write_ablation_report
    from burstkpn.models.factory import weights_dir

    folder = args.checkpoints or weights_dir() / "ablation"
    out = prepare_output_dir(args.out, args.force) if args.out else None
    table, scores = run_ablation(args.testset, folder, limit=args.limit, progress=not args.quiet)
    print(table)
    missing = [i for i, v in scores.items() if v is None]
    note = ""
    if missing:
        note = f"missing checkpoints in {folder}: " + ", ".join(
            f"ame_kpn_model{i}.safetensors" for i in missing
        )
        print(note)
    if out is not None:
        command = "burstkpn bench ablation " + " ".join(shlex.quote(a) for a in sys.argv[3:])
        write_ablation_report(
            out,
            command=command,
            testset=args.testset,
            checkpoints=folder,
            limit=args.limit,
            table=table,
            scores=scores,
            note=note,
        )
        print(f"wrote report.md and results.json to {out}/")
    return 0
