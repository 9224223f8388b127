"""The ``burstkpn`` command line.

Every subcommand prints a one-line error and exits with status 2 on bad input, shows a progress
bar for long work, writes outputs atomically and never writes over an input or, without
``--force``, into a non-empty output folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from burstkpn.errors import InputError

DEFAULT_BENCH_METHODS = (
    "reference",
    "average",
    "oracle_average",
    "nlm",
    "nlm_multi",
    "bm3d",
    "align_bm3d",
    "kpn",
    "mkpn",
    "ame_kpn",
)
# the defaults of bench video / motion (burstkpn.bench.video, which imports torch: the parser
# is built without it; tests/test_cli_bad_inputs.py checks the two agree)
DEFAULT_VIDEO_METHODS = ("reference", "average", "deform2d", "kpn", "deform3d")
DEFAULT_MOTION_METHODS = ("reference", "average", "kpn", "deform2d", "deform3d")
# the defaults of bench real (burstkpn.bench.real; tests/bench/test_real.py checks they agree)
DEFAULT_REAL_METHODS = (
    "reference",
    "align_mean",
    "nlm",
    "align_bm3d",
    "kpn",
    "ame_kpn",
    "ame_kpn_real",
)
DEFAULT_PAIR_METHODS = (
    "reference",
    "nlm",
    "bm3d",
    "dcn_lka_denoise",
    "deform2d",
    "kpn",
    "ame_kpn",
    "ame_kpn_real",
)


# --------------------------------------------------------------------------- synth
def cmd_synth(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from burstkpn.data.degrade.noise import parse_noise
    from burstkpn.data.degrade.synth import synthesize_burst
    from burstkpn.data.io.files import atomic_write_bytes, prepare_output_dir
    from burstkpn.data.io.images import list_images, load_linear, to_display, write_image
    from burstkpn.data.sampling import match_channels
    from burstkpn.data.testsets.burst import burst_npz
    from burstkpn.viz import contact_sheet, label_tile

    refs = list_images(args.image)
    if len(refs) != 1:
        raise InputError(f"synth takes one image, '{args.image}' names {len(refs)}")
    level = parse_noise(args.noise)
    if args.frames < 2:
        raise InputError(f"a burst needs at least 2 frames, got {args.frames}")
    image = match_channels(load_linear(refs[0]), None if args.keep_channels else 3)
    out = prepare_output_dir(args.out, args.force)
    _refuse_overwriting_input(out, refs)
    g = torch.Generator().manual_seed(args.seed)
    burst = synthesize_burst(
        image, g, num_frames=args.frames, patch_size=args.patch, noise=level, mode=args.mode
    )
    geometry = burst.geometry[0]
    noisy, clean = burst.noisy[0], burst.clean[0]

    write_image(out / "clean.png", to_display(clean))
    tiles = [label_tile(to_display(clean), "clean reference")]
    nmap = burst.noise_map[0]
    nmax = float(nmap.max())
    nmap_img = (nmap / nmax).mean(0, keepdim=True).permute(1, 2, 0).numpy()
    write_image(out / "noise_map.png", nmap_img)
    tiles.append(label_tile(nmap_img, f"noise map (max {nmax:.3f})"))
    for i, frame in enumerate(noisy):
        write_image(out / f"frame_{i:02d}.png", to_display(frame))
        dy, dx = geometry.offsets_px[i].tolist()
        tag = "reference" if i == 0 else f"offset ({dy:+.2f}, {dx:+.2f}) px"
        tiles.append(label_tile(to_display(frame), f"frame {i}: {tag}"))
    write_image(out / "contact_sheet.png", contact_sheet(tiles, columns=5).astype(np.float64) / 255)
    data, clipped = burst_npz(noisy, clean, geometry.offsets, level)
    atomic_write_bytes(out / "burst.npz", data)
    meta = {
        "source": refs[0],
        "seed": args.seed,
        "noise": {"name": level.name, "sigma_r": level.sigma_r, "sigma_s": level.sigma_s},
        "clipped": clipped,
        **geometry.to_dict(),
    }
    atomic_write_bytes(out / "meta.json", (json.dumps(meta, indent=1) + "\n").encode())
    print(
        f"wrote a {args.frames}-frame {geometry.mode} burst ({args.patch}x{args.patch}, "
        f"{level.name}) from {refs[0]} to {out}/ (contact_sheet.png shows it)"
    )
    return 0


def _refuse_overwriting_input(out: Path, refs: list[str]) -> None:
    out = out.resolve()
    for ref in refs:
        p = Path(ref)
        if p.exists() and p.resolve().parent == out:
            raise InputError(f"output folder '{out}' holds the input '{ref}'; choose another")


# --------------------------------------------------------------------------- make-testset
def cmd_make_testset(args: argparse.Namespace) -> int:
    from burstkpn.data.testsets.burst import make_testset

    defaults = {"deblur": "none", "video": "low,high", "burst": "gain1,gain2,gain3,gain4"}
    noise = args.noise or defaults[args.task]
    levels = [s for s in noise.split(";" if ";" in noise else ",") if s.strip()]
    if args.pipeline != "independent" and args.task != "burst":
        raise InputError(
            f"--pipeline {args.pipeline} makes burst test sets, not --task {args.task}"
        )
    if args.task == "video":
        from burstkpn.data.testsets.video import make_video_testset

        manifest = make_video_testset(
            args.source,
            args.out,
            levels=levels,
            num_frames=args.frames or 5,
            patch_size=args.patch,
            seed=args.seed,
            layout=args.layout,
            windows=args.windows,
            channels=None if args.keep_channels else 3,
            force=args.force,
            progress=not args.quiet,
        )
        n = len(manifest["windows"])
        layout = manifest["generator"]["layout"]
        print(
            f"wrote {n // len(levels)} windows from {layout} x {len(levels)} levels "
            f"({', '.join(levels)}) to {args.out}/ with manifest.json"
        )
        return 0
    if args.task == "deblur":
        from burstkpn.data.testsets.deblur import make_deblur_testset

        manifest = make_deblur_testset(
            args.source,
            args.out,
            levels=levels,
            kernel_size=args.blur_size,
            seed=args.seed,
            force=args.force,
            progress=not args.quiet,
        )
        n = len(manifest["pairs"])
        print(f"wrote {n} blurry/sharp pairs ({', '.join(levels)}) to {args.out}/, manifest.json")
        return 0
    manifest = make_testset(
        args.source,
        args.out,
        levels=levels,
        num_frames=args.frames or 8,
        patch_size=args.patch,
        seed=args.seed,
        mode=args.mode,
        channels=None if args.keep_channels else 3,
        force=args.force,
        progress=not args.quiet,
        pipeline=args.pipeline,
    )
    n = len(manifest["bursts"])
    print(f"wrote {n} bursts ({', '.join(levels)}) to {args.out}/ with manifest.json")
    return 0


# --------------------------------------------------------------------------- bench
def cmd_bench_speed(args: argparse.Namespace) -> int:
    from burstkpn.bench.speed import format_table, model_spec, run_speed
    from burstkpn.models import list_models
    from burstkpn.runtime import PRECISION_CHOICES, resolve_precision

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if model_spec(m)[0] not in list_models():
            raise InputError(f"unknown model '{m}' (available: {', '.join(list_models())}, kpn21)")
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
        from burstkpn.data.io.files import atomic_write_bytes

        atomic_write_bytes(args.json, (json.dumps(rows, indent=1) + "\n").encode())
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
    from burstkpn.bench.video import run_motion

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
    from burstkpn.data.io.files import atomic_write_bytes, prepare_output_dir
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
        text = (
            "# ame_kpn.md Table 2: ablation of the AME units\n\n"
            f"Produced by:\n\n```bash\n{command}\n```\n\n"
            f"Mean PSNR (dB) over every burst of `{args.testset}`"
            + (f" (first {args.limit} images)" if args.limit else "")
            + f", checkpoints `{folder}/ame_kpn_model{{1..6}}.safetensors` "
            "(their training budget is in their cards).\n\n"
            + table
            + "\n"
            + (f"\n{note}\n" if note else "")
        )
        results = {"command": command, "testset": str(args.testset), "psnr": scores}
        atomic_write_bytes(out / "report.md", text.encode())
        atomic_write_bytes(out / "results.json", (json.dumps(results, indent=1) + "\n").encode())
        print(f"wrote report.md and results.json to {out}/")
    return 0


# --------------------------------------------------------------------------- train
TRAIN_FLAGS = {  # CLI flag -> TrainConfig field
    "model": "model",
    "size": "size",
    "data": "data",
    "val_data": "val_data",
    "steps": "steps",
    "epoch_steps": "epoch_steps",
    "batch_size": "batch_size",
    "patch_size": "patch_size",
    "precision": "precision",
    "seed": "seed",
    "workers": "workers",
    "lr": "lr",
    "val_every": "val_every",
    "ckpt_every": "ckpt_every",
    "task": "task",
    "loss": "loss",
    "layout": "layout",
    "blur_size": "blur_size",
    "clips": "clips",
    "clip_fraction": "clip_fraction",
    "ema_decay": "ema_decay",
    "threads": "threads",
    "prefetch": "prefetch",
    "compile": "compile",
    "lr_schedule": "lr_schedule",
    "warmup_steps": "warmup_steps",
}


def cmd_train(args: argparse.Namespace) -> int:
    from burstkpn.train import TrainConfig, read_config, train

    if args.resume and args.init:
        raise InputError("--init starts a new run: give it with --out, not with --resume")
    if args.resume:
        run = Path(args.resume)
        cfg = read_config(run)
        # a resumed run may be extended or run faster, nothing else
        for flag in ("steps", "workers", "threads", "prefetch", "compile"):
            if getattr(args, flag) is not None:
                setattr(cfg, flag, getattr(args, flag))
        resume = True
    else:
        if not args.out:
            raise InputError("give --out RUN_FOLDER (or --resume RUN_FOLDER)")
        run = Path(args.out)
        values: dict = {}
        if args.config:
            import yaml

            path = Path(args.config)
            if not path.is_file():
                raise InputError(f"no such config file: '{path}'")
            try:
                values.update(yaml.safe_load(path.read_text()) or {})
            except yaml.YAMLError as exc:
                raise InputError(f"cannot parse '{path}': {str(exc).splitlines()[0]}") from None
        for flag, name in TRAIN_FLAGS.items():
            if getattr(args, flag) is not None:
                values[name] = getattr(args, flag)
        if args.model_kwargs:
            try:
                values["model_kwargs"] = json.loads(args.model_kwargs)
            except json.JSONDecodeError as exc:
                raise InputError(f"--model-kwargs is not JSON: {exc}") from None
        cfg = TrainConfig.from_dict(values)  # train() checks --data before it starts
        resume = False
    log = train(
        cfg,
        run,
        resume=resume,
        init=args.init,
        stop_after=args.stop_after,
        progress=not args.quiet,
    )
    if log:
        print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in log.items()}))
    return 0


def cmd_export_weights(args: argparse.Namespace) -> int:
    from burstkpn.models.factory import weights_dir
    from burstkpn.train import export_weights

    card = export_weights(
        args.run,
        args.name,
        args.out_dir or weights_dir(),
        testset=args.testset,
        limit=args.limit,
        progress=not args.quiet,
    )
    print(
        json.dumps(
            {k: card[k] for k in ("name", "steps", "training_hours")}
            | {"evaluation": card.get("evaluation", {}).get("per_level", card.get("evaluation"))}
        )
    )
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from burstkpn.data.io.files import check_writable
    from burstkpn.export import OPSETS, export_onnx, read_onnx_metadata, require

    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise InputError(f"output '{out}' must end in .onnx")
    if args.opset not in OPSETS:
        raise InputError(f"--opset must be {OPSETS.start}..{OPSETS.stop - 1}, got {args.opset}")
    if out.exists() and not out.is_dir() and not args.force:
        raise InputError(f"output '{out}' exists (use --force to overwrite it)")
    check_writable(out)
    require("onnx")
    require("onnxruntime")
    export_onnx(args.model, out, opset=args.opset, overwrite=args.force)
    meta = read_onnx_metadata(out)
    noise = "" if meta["blind"] == "true" else ", noise_map (B, C, H, W)"
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opset {args.opset}): "
        f"{meta['architecture']}, inputs burst (B, {meta['input_frames']}, C, H, W){noise}, "
        f"H and W multiples of {meta['multiple']}"
    )
    return 0


# --------------------------------------------------------------------------- denoise / demo
def _check_output(path: Path, inputs: list[str], force: bool) -> None:
    """An output image: a known extension, not an input, not existing (without ``force``)
    and writable, all checked before any work."""
    from burstkpn.data.io.files import check_writable
    from burstkpn.data.io.images import IMAGE_EXTENSIONS

    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(f"output '{path}' must end in one of {', '.join(IMAGE_EXTENSIONS)}")
    for ref in inputs:
        if Path(ref).exists() and Path(ref).resolve() == path.resolve():
            raise InputError(f"output '{path}' is one of the inputs; choose another name")
    if path.exists() and not path.is_dir() and not force:
        raise InputError(f"output '{path}' exists (use --force to overwrite it)")
    check_writable(path)


def _check_sequence_target(out: Path, force: bool) -> None:
    """A video file or frame-folder output, before any work: without ``force`` a video file
    must not exist and a folder must be empty; either must be writable. (With ``force`` a
    folder keeps everything but the ``frame_NNNNNN.png`` files this run writes.)"""
    from burstkpn.data.io.files import check_folder_writable, check_writable
    from burstkpn.denoising import VIDEO_EXTENSIONS

    if out.suffix.lower() in VIDEO_EXTENSIONS:
        if out.exists() and not out.is_dir() and not force:
            raise InputError(f"output '{out}' exists (use --force to overwrite it)")
        check_writable(out)
        return
    check_folder_writable(out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(
            f"output folder '{out}' is not empty (--force writes its frame_NNNNNN.png files "
            "there, leaving everything else)"
        )


def _load_model_arg(name: str, task: str | None = None):
    """A checkpoint path or a shipped name; with ``task``, a single-image model's name picks
    its weights for that task (``dcn_lka`` -> ``dcn_lka_denoise``)."""
    from burstkpn.restoration import load_restoration_model

    return load_restoration_model(name, task)


def _restore_one(args: argparse.Namespace, task: str, inputs: list[str], model, out: Path) -> int:
    """``denoise`` / ``deblur`` of one image with a single-image model."""
    import time

    from burstkpn.data.io.images import write_image
    from burstkpn.restoration import load_image, restore_image

    if len(inputs) != 1:
        raise InputError(
            f"'{args.model}' is a single-image model: give one image, got {len(inputs)}"
        )
    image, bits = load_image(inputs[0])  # its size is checked from the header first
    t0 = time.perf_counter()
    result = restore_image(
        image,
        model,
        linear=getattr(args, "linear", False),
        tile=args.tile,
        progress=not args.quiet,
    )
    jpeg = out.suffix.lower() in (".jpg", ".jpeg")
    bits = args.bits or (16 if bits == 16 and not jpeg else 8)
    write_image(out, result.permute(1, 2, 0).numpy(), bits=bits, overwrite=args.force)
    verb = "deblurred" if task == "deblur" else "denoised"
    print(
        f"{verb} {inputs[0]} ({image.shape[-1]}x{image.shape[-2]}) with {args.model} in "
        f"{time.perf_counter() - t0:.1f} s -> {out}"
    )
    return 0


def cmd_deblur(args: argparse.Namespace) -> int:
    from burstkpn.data.io.images import list_images
    from burstkpn.denoising import check_tile
    from burstkpn.restoration import is_single_image, load_restoration_model

    out = Path(args.output)
    check_tile(args.tile)
    inputs = list_images(args.image)
    if len(inputs) != 1:
        raise InputError(f"deblur takes one image, '{args.image}' names {len(inputs)}")
    _check_output(out, inputs, args.force)
    model = load_restoration_model(args.model, "deblur")
    if not is_single_image(model):
        raise InputError(f"'{args.model}' is a burst model; deblur needs a single-image model")
    return _restore_one(args, "deblur", inputs, model, out)


REAL_MODEL = "ame_kpn_real"  # fine-tuned on camera-pipeline noise (issue 23)
LINEAR_MODEL = "ame_kpn"  # trained on independent noise in linear light
BACKENDS = ("torch", "onnxruntime")  # denoise --backend, bench speed --backend


def default_denoise_model(inputs: list[str], *, linear: bool) -> str:
    """The model ``denoise`` uses without ``--model``: developed images and videos (JPEG,
    PNG, TIFF, video files, whose noise went through a camera's demosaicing, colour
    correction, tone curve, sharpening and compression) get :data:`REAL_MODEL`; linear data
    (``--linear``) and raw files (developed here linearly, without tone curve, sharpening or
    compression: :mod:`burstkpn.data.raw`) keep :data:`LINEAR_MODEL`, as does everything
    while no weights of ``REAL_MODEL`` are shipped."""
    from burstkpn.data.io.raw import RAW_EXTENSIONS
    from burstkpn.models.factory import weights_dir

    def raw(path: str) -> bool:
        p = Path(path)
        if p.is_dir():
            return any(f.suffix.lower() in RAW_EXTENSIONS for f in p.iterdir())
        return p.suffix.lower() in RAW_EXTENSIONS

    if linear or any(raw(i) for i in inputs):
        return LINEAR_MODEL
    if (weights_dir() / f"{REAL_MODEL}.safetensors").exists():
        return REAL_MODEL
    return LINEAR_MODEL


def cmd_denoise(args: argparse.Namespace) -> int:
    import time

    from burstkpn.data.io.images import list_images, write_image
    from burstkpn.denoising import (
        VIDEO_EXTENSIONS,
        check_frame_sizes,
        check_tile,
        denoise_burst,
        load_frames,
    )
    from burstkpn.profiling import stage
    from burstkpn.restoration import is_single_image

    out = Path(args.output)
    check_tile(args.tile)
    _check_backend(args, out)
    if args.profile is not None and (
        out.suffix.lower() in VIDEO_EXTENSIONS
        or not out.suffix
        or (len(args.inputs) == 1 and Path(args.inputs[0]).suffix.lower() in VIDEO_EXTENSIONS)
    ):
        raise InputError("--profile times a burst denoised into one image, not a video")
    if args.model is None:
        args.model = default_denoise_model(args.inputs, linear=args.linear)
    if len(args.inputs) == 1 and Path(args.inputs[0]).suffix.lower() in VIDEO_EXTENSIONS:
        return _denoise_video(args, out)
    inputs = list_images(args.inputs if len(args.inputs) > 1 else args.inputs[0])
    if out.suffix.lower() in VIDEO_EXTENSIONS or not out.suffix:
        return _denoise_frames(args, inputs, out)  # frame files -> every frame denoised
    _check_output(out, inputs, args.force)
    _refuse_linear_raw(args.linear, inputs)
    check_frame_sizes(inputs)  # from the headers, before decoding any frame
    model = _load_model_arg(args.model, "denoise")
    if args.backend == "onnxruntime":  # float32, exported once and cached
        from burstkpn.export import OnnxModel

        model = OnnxModel(model)
    if is_single_image(model):
        return _restore_one(args, "denoise", inputs, model, out)
    with _profiled(args.profile) as prof:
        with stage("reading and decoding"):
            frames, bits = load_frames(inputs)
        t0 = time.perf_counter()
        result = denoise_burst(
            frames,
            model,
            noise=args.noise,
            reference=args.reference,
            align=args.align,
            linear=args.linear,
            tile=args.tile,
            precision="fp32" if args.backend == "onnxruntime" else "auto",
            progress=not args.quiet and args.profile is None,
        )
        jpeg = out.suffix.lower() in (".jpg", ".jpeg")
        bits = args.bits or (16 if bits == 16 and not jpeg else 8)
        with stage("writing"):
            image = result.image.permute(1, 2, 0).numpy()
            write_image(out, image, bits=bits, overwrite=args.force)
    if prof is not None:
        _report_profile(prof, args, frames.shape)
    moved = float(abs(result.shifts).max()) if result.shifts.size else 0.0
    aligned = f"aligned, max shift {moved:.1f} px" if moved else "no alignment"
    print(
        f"denoised {len(inputs)} frames with {args.model} in {time.perf_counter() - t0:.1f} s "
        f"(noise {_NOISE_SOURCE[result.noise_source]}: sigma_r={result.sigma_r:.4g}, "
        f"sigma_s={result.sigma_s:.4g}; {aligned}) -> {out}"
    )
    return 0


@contextlib.contextmanager
def _profiled(target: str | None):
    """``--profile``: a :class:`~burstkpn.profiling.Profile` active for the block (else
    ``None``)."""
    if target is None:
        yield None
        return
    from burstkpn.profiling import profiling

    with profiling() as prof:
        yield prof


def _report_profile(prof, args: argparse.Namespace, shape) -> None:
    """Print the stage table; ``--profile FILE.json`` also writes it there."""
    import torch

    n, c, h, w = shape
    print(
        f"profile: {n} frames of {w}x{h}x{c}, tile {args.tile}, torch threads "
        f"{torch.get_num_threads()}"
    )
    print(prof.table())
    if args.profile != "-":
        prof.write_json(
            args.profile,
            frames=n,
            height=h,
            width=w,
            channels=c,
            tile=args.tile,
            model=str(args.model),
            torch_threads=torch.get_num_threads(),
        )
        print(f"profile written to {args.profile}")


_NOISE_SOURCE = {
    "burst": "measured from the burst",
    "image": "measured from single frames",
    "given": "given",
}


def _check_backend(args: argparse.Namespace, out: Path) -> None:
    """``--backend onnxruntime``: a burst to one image (videos and frame folders run on
    torch), with onnxruntime and onnx (for the export) installed; checked before any work."""
    from burstkpn.denoising import VIDEO_EXTENSIONS

    if args.backend == "torch":
        return
    video_in = len(args.inputs) == 1 and Path(args.inputs[0]).suffix.lower() in VIDEO_EXTENSIONS
    if video_in or out.suffix.lower() in VIDEO_EXTENSIONS or not out.suffix:
        raise InputError(
            "--backend onnxruntime denoises a burst into one image; videos and frame folders "
            "run on torch"
        )
    from burstkpn.export import require

    require("onnxruntime")
    require("onnx")


def _refuse_linear_raw(linear: bool, inputs: list[str]) -> None:
    """``--linear`` with camera raw files, which are developed to sRGB: a one-line error."""
    from burstkpn.data.io.raw import is_raw

    if linear and any(is_raw(i) for i in inputs):
        raise InputError("raw files are developed to sRGB before denoising: drop --linear")


def _denoise_frames(args: argparse.Namespace, inputs: list[str], out: Path) -> int:
    """A video stored as frame files, denoised frame by frame with the window around each
    (clip models: ``video_window``) into a folder of PNGs or a video file, with ``--noise``,
    ``--align`` and ``--linear`` as for a burst; ``--bits`` (default: the frames' depth)."""
    import time

    from burstkpn.denoising import (
        check_frame_sizes,
        check_sequence_output,
        denoise_frames,
        sequence_bits,
    )

    check_sequence_output(out, args.inputs, inputs)
    _check_sequence_target(out, args.force)
    sequence_bits(out, args.bits)
    _refuse_linear_raw(args.linear, inputs)
    check_frame_sizes(inputs)
    model = _load_model_arg(args.model, "denoise")
    t0 = time.perf_counter()
    info = denoise_frames(
        inputs,
        out,
        model,
        fps=args.fps,
        noise=args.noise,
        align=args.align,
        linear=args.linear,
        tile=args.tile,
        bits=args.bits,
        progress=not args.quiet,
        overwrite=args.force,
    )
    print(
        f"denoised {info['frames']} frames with {args.model} in "
        f"{time.perf_counter() - t0:.1f} s (noise sigma_r={info['sigma_r']:.4g}, "
        f"sigma_s={info['sigma_s']:.4g}) -> {out} ({info['bits']}-bit)"
    )
    return 0


def _denoise_video(args: argparse.Namespace, out: Path) -> int:
    """A video file, denoised frame by frame with the window around each into a video file or
    a folder of PNGs, with ``--noise``, ``--align`` and ``--linear`` as for a burst; ``--bits``
    (default: the stream's depth; 16 only into .mkv / .avi FFV1 or PNG frames)."""
    import time

    from burstkpn.denoising import VIDEO_EXTENSIONS, denoise_video, sequence_bits

    video = Path(args.inputs[0])
    if out.resolve() == video.resolve():
        raise InputError(f"output '{out}' is the input; choose another name")
    if out.suffix and out.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputError(f"video output must be {', '.join(VIDEO_EXTENSIONS)} or a folder name")
    _check_sequence_target(out, args.force)
    sequence_bits(out, args.bits)
    model = _load_model_arg(args.model, "denoise")
    t0 = time.perf_counter()
    info = denoise_video(
        video,
        out,
        model,
        noise=args.noise,
        align=args.align,
        linear=args.linear,
        tile=args.tile,
        bits=args.bits,
        progress=not args.quiet,
        overwrite=args.force,
    )
    print(
        f"denoised {info['frames']} frames at {info['fps']:.3g} fps with {args.model} in "
        f"{time.perf_counter() - t0:.1f} s (noise sigma_r={info['sigma_r']:.4g}, "
        f"sigma_s={info['sigma_s']:.4g}) -> {out} ({info['bits']}-bit)"
    )
    return 0


DEMO_NAME = "burstkpn_demo.png"  # demo's default output: burstkpn_demo_2.png, ... when taken


def _write_new(name: str, image) -> Path:
    """Write ``image`` under ``name`` or, when taken, the first free ``STEM_K.EXT`` (K = 2,
    3, ...), each created exclusively: reruns never overwrite anything."""
    from burstkpn.data.io.images import write_image
    from burstkpn.errors import OutputExistsError

    path = Path(name)
    for k in range(1, 10_000):
        candidate = path if k == 1 else path.with_name(f"{path.stem}_{k}{path.suffix}")
        if candidate.exists():
            continue
        try:
            return write_image(candidate, image, overwrite=False)
        except OutputExistsError:  # taken meanwhile by another run
            continue
    raise InputError(f"no free name for '{name}': remove some of the earlier outputs")


def cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from burstkpn.data.degrade.noise import parse_noise
    from burstkpn.data.degrade.synth import synthesize_burst
    from burstkpn.data.io.images import list_images, load_linear, to_display, write_image
    from burstkpn.data.sampling import match_channels
    from burstkpn.denoising import denoise_burst
    from burstkpn.metrics import psnr
    from burstkpn.viz import contact_sheet, label_tile

    if args.out is not None:
        _check_output(Path(args.out), [], args.force)
    else:
        _check_output(Path(DEMO_NAME), [], True)  # a free name is found when writing
    level = parse_noise(args.noise)
    ref = list_images(args.image)[0]
    image = match_channels(load_linear(ref), 3)
    burst = synthesize_burst(
        image, torch.Generator().manual_seed(args.seed), patch_size=args.patch, noise=level
    )
    model = _load_model_arg(args.model)
    result = denoise_burst(burst.noisy[0], model, noise="auto", linear=True, align="auto")
    before = float(psnr(burst.noisy[:, 0], burst.clean)[0])
    after = float(psnr(result.image[None], burst.clean)[0])
    tiles = [
        label_tile(to_display(burst.clean[0]), "clean"),
        label_tile(to_display(burst.noisy[0, 0]), f"noisy reference {before:.2f} dB"),
        label_tile(to_display(result.image), f"{args.model} {after:.2f} dB"),
    ]
    sheet = contact_sheet(tiles, columns=3).astype(np.float64) / 255
    if args.out is not None:
        out = write_image(args.out, sheet, overwrite=args.force)
    else:
        out = _write_new(DEMO_NAME, sheet)
    print(
        f"{ref}, {level.name}, 8 frames: noisy reference {before:.2f} dB -> {args.model} "
        f"{after:.2f} dB (noise estimated: sigma_r={result.sigma_r:.4f} vs "
        f"{level.sigma_r}, sigma_s={result.sigma_s:.4f} vs {level.sigma_s}); wrote {out}"
    )
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from burstkpn import __version__

    parser = argparse.ArgumentParser(
        prog="burstkpn", description="Denoise photo bursts, videos and images with learned kernels."
    )
    parser.add_argument("--version", action="version", version=f"burstkpn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common_burst(p: argparse.ArgumentParser, patch: int, frames: int | None = 8) -> None:
        p.add_argument(
            "--frames",
            type=int,
            default=frames,
            help="frames per burst (default 8; 1: single images; make-testset --task video: 5)",
        )
        p.add_argument("--patch", type=int, default=patch, help=f"output size in px ({patch})")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument(
            "--mode",
            choices=("auto", "full", "subpixel"),
            default="auto",
            help="full: 4x box-downsampled crops with integer offsets (needs 4*patch+128 px); "
            "subpixel: the same offsets /4 at the image's resolution; auto: full if it fits",
        )
        p.add_argument(
            "--keep-channels", action="store_true", help="keep grayscale images single-channel"
        )
        p.add_argument("--force", action="store_true", help="write into a non-empty folder")

    p = sub.add_parser("synth", help="write one synthetic noisy burst as PNGs + a contact sheet")
    p.add_argument("image", help="image file or embedded photo name (e.g. astronaut)")
    p.add_argument("--noise", default="gain3", help="gain1..gain4, low, high or SIGMA_R,SIGMA_S")
    p.add_argument("--out", required=True, help="output folder")
    common_burst(p, 256)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("make-testset", help="write a fixed, seeded benchmark test set")
    p.add_argument("source", help="folder, glob, image file or 'embedded'")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--noise",
        help="levels separated by commas (or by semicolons when a level is SIGMA_R,SIGMA_S); "
        "default gain1,gain2,gain3,gain4 (burst), none (deblur: no noise after the blur)",
    )
    p.add_argument(
        "--task",
        choices=("burst", "deblur", "video"),
        default="burst",
        help="burst: noisy bursts; deblur: whole photos with seeded motion blur + true kernels; "
        "video: noisy 5-frame windows (centre frame first) from clips or photos with motion",
    )
    p.add_argument("--blur-size", type=int, default=15, help="deblur: kernel size (odd, 15)")
    p.add_argument(
        "--layout",
        choices=("auto", "clips", "photos"),
        default="auto",
        help="video: SRC is a folder of frame folders (clips) or photos (synthetic motion)",
    )
    p.add_argument("--windows", type=int, help="video: at most N windows per clip")
    p.add_argument(
        "--pipeline",
        choices=("independent", "camera"),
        default="independent",
        help="burst: independent noise in linear light (default), or camera: noise on a raw "
        "mosaic, developed to 8-bit JPEG frames (burstkpn.data.camera)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    common_burst(p, 128, frames=None)
    p.set_defaults(func=cmd_make_testset)

    p = sub.add_parser("train", help="train a model on synthetic bursts (resumable, DDP)")
    p.add_argument("--model", help="kpn, mkpn, ame_kpn, ...")
    p.add_argument("--size", choices=("cpu", "paper", "tiny"))
    p.add_argument(
        "--model-kwargs", help="constructor arguments as JSON, e.g. '{\"kernel_size\": 21}'"
    )
    p.add_argument("--data", help="folder / glob of clean photos (default: embedded photos)")
    p.add_argument("--val-data", help="validation photos (default: embedded photos)")
    p.add_argument("--config", help="YAML file of training options (flags override it)")
    p.add_argument("--out", help="new run folder")
    p.add_argument("--resume", help="run folder to continue")
    p.add_argument(
        "--init",
        help="start from trained weights: a shipped name (kpn, mkpn, ame_kpn, ...) or a "
        ".safetensors checkpoint; new Adam state, steps count on from the weights' (fine-tune "
        "on your own --data)",
    )
    p.add_argument("--steps", type=int)
    p.add_argument("--epoch-steps", type=int, help="steps per epoch (learning-rate decay)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--patch-size", type=int)
    p.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        help="auto (default): bf16 autocast where the hardware has native bf16, else fp32",
    )
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, help="DataLoader worker processes (default 0)")
    p.add_argument("--threads", type=int, help="torch threads (default 0: every core)")
    p.add_argument(
        "--prefetch",
        type=int,
        help="batches synthesised ahead in a background thread (default 0: off; slower on 2 cores)",
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the model for training (default off)",
    )
    p.add_argument(
        "--lr-schedule",
        choices=("step", "cosine"),
        help="step (the paper's per-epoch decay, default) or cosine (warm-up, then cosine to "
        "lr_min at --steps)",
    )
    p.add_argument("--warmup-steps", type=int, help="cosine schedule: linear warm-up steps")
    p.add_argument(
        "--ema-decay",
        type=float,
        help="average the weights over training (e.g. 0.99; default 0: off); validation, best "
        "and export-weights then use the average",
    )
    p.add_argument("--val-every", type=int)
    p.add_argument("--ckpt-every", type=int)
    p.add_argument(
        "--task",
        choices=("burst", "denoise", "deblur", "video"),
        help="burst (default for burst models): synthetic bursts; denoise / deblur (single-image "
        "models, dcn_lka): pairs made from --data photos, or a SIDD / GoPro / PolyU folder; "
        "video (default for deform3d): 5-frame clips from photos with motion and / or --clips",
    )
    p.add_argument(
        "--loss",
        choices=("mse", "gamma_l1", "group_annealed"),
        help="denoise / deblur: mse on sRGB values (dcn_lka.md eq. 7, default) or gamma L1; "
        "video: group_annealed (deformable_kernels.md eq. 11, default) or gamma_l1 (eq. 9)",
    )
    p.add_argument(
        "--clips", help="video: folder of clean clips (frame folders), e.g. .../video/vid4"
    )
    p.add_argument(
        "--clip-fraction",
        type=float,
        help="video: share of training clips cut from --clips (default 0.5; 1: clips only)",
    )
    p.add_argument(
        "--layout",
        choices=("auto", "photos", "sidd", "gopro", "polyu"),
        help="what --data holds for denoise / deblur (auto: detected)",
    )
    p.add_argument("--blur-size", type=int, help="deblur from photos: kernel size (odd, 15)")
    p.add_argument("--stop-after", type=int, help="stop this process after N steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("denoise", help="denoise a burst of photos (the main job)")
    p.add_argument(
        "inputs",
        nargs="+",
        help="a folder of frames, the frame files (PNG, JPEG, TIFF, camera raw), or a video; "
        "one image for a single-image model (--model dcn_lka)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output image (.png, .tif, .jpg); for a video or a folder of video frames: .mkv "
        "(lossless), .mp4, or a folder name for PNG frames (every frame denoised)",
    )
    p.add_argument(
        "--model",
        help="shipped model name (dcn_lka: its denoising weights) or .safetensors file "
        "(default: ame_kpn_real for developed images and videos, ame_kpn with --linear or raw "
        "input)",
    )
    p.add_argument(
        "--reference",
        type=int,
        default=0,
        help="index of the reference frame (clip models, deform3d: the frames are a video in "
        "temporal order and the window around it is used)",
    )
    p.add_argument("--fps", type=float, default=25.0, help="frames to a video file: frame rate")
    p.add_argument("--noise", default="auto", help="auto, gain1..gain4, low, high or SR,SS")
    p.add_argument("--align", default="auto", choices=("auto", "on", "off"))
    p.add_argument("--linear", action="store_true", help="inputs are linear, not sRGB")
    p.add_argument("--tile", type=int, default=512, help="tile size for bounded memory")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="torch (default; bfloat16 where the CPU runs it natively) or onnxruntime (float32; "
        "the model is exported once to ~/.cache/burstkpn/onnx; a burst to one image)",
    )
    p.add_argument(
        "--bits",
        type=int,
        choices=(8, 16),
        help="output bit depth (default: input's); 16 only in PNG/TIFF, frames, .mkv/.avi",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--profile",
        nargs="?",
        const="-",
        metavar="FILE.json",
        help="a burst to one image: print the time and memory of every stage (and write them "
        "to FILE.json)",
    )
    p.set_defaults(func=cmd_denoise)

    p = sub.add_parser("deblur", help="deblur one photo with a single-image model (dcn_lka)")
    p.add_argument("image", help="image file (PNG, JPEG, TIFF, camera raw)")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .tif, .jpg)")
    p.add_argument(
        "--model",
        default="dcn_lka",
        help="shipped model (dcn_lka: its deblurring weights) or .safetensors file",
    )
    p.add_argument("--tile", type=int, default=512, help="tile size for bounded memory (0: none)")
    p.add_argument("--bits", type=int, choices=(8, 16), help="output bit depth (default: input's)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_deblur)

    p = sub.add_parser("demo", help="the main job on an embedded photo, with PSNR before/after")
    p.add_argument("--image", default="astronaut", help="embedded photo or image file")
    p.add_argument(
        "--noise",
        default="gain2",
        help="default gain2, the heaviest named level inside the training noise range "
        "(Gains 3-4 lie outside it)",
    )
    p.add_argument("--model", default="ame_kpn")
    p.add_argument("--patch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        help="output image (default burstkpn_demo.png, or burstkpn_demo_2.png, ... when it "
        "exists: reruns never overwrite)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing --out")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("export-onnx", help="export a burst model to ONNX (float32, any size)")
    p.add_argument("model", help="shipped model (kpn, mkpn, ame_kpn) or .safetensors checkpoint")
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 13..20 (default 17)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("export-weights", help="copy a run's weights + a card into the package")
    p.add_argument("run", help="run folder")
    p.add_argument("--name", required=True, help="weights name, e.g. ame_kpn")
    p.add_argument("--out-dir", help="default: burstkpn/weights/")
    p.add_argument("--testset", help="evaluate on this test set for the card")
    p.add_argument("--limit", type=int, help="only the first N images of the test set")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_export_weights)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(
        dest="bench", required=True, metavar="BENCH"
    )
    p = bench.add_parser("quality", help="PSNR / SSIM per noise level of methods on a test set")
    p.add_argument("--testset", required=True, help="folder written by make-testset")
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_BENCH_METHODS),
        help="comma-separated: classical names, model names or .safetensors paths",
    )
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--limit", type=int, help="only the first N images (all their levels)")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--command-text", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_bench_quality)

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
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_bench_restore)

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
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_bench_real)

    def motion_options(p: argparse.ArgumentParser, sweep: str) -> None:
        p.add_argument("--speeds", default="0,1,2,4,8,16", help=f"{sweep}px per frame")
        p.add_argument("--windows", type=int, default=4, help=f"{sweep}windows (default 4)")
        p.add_argument("--source", default="embedded", help=f"{sweep}photos (default embedded)")
        p.add_argument("--noise", default="low", help=f"{sweep}noise level (default low)")
        p.add_argument("--patch", type=int, default=96, help=f"{sweep}window size (96)")
        p.add_argument("--seed", type=int, default=0, help=f"{sweep}seed (default 0)")

    p = bench.add_parser("video", help="PSNR / SSIM at Low / High on a video test set (Table 3)")
    p.add_argument("--testset", required=True, help="folder written by make-testset --task video")
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_VIDEO_METHODS),
        help="comma-separated: reference, average, model names or .safetensors paths",
    )
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
        help="deformable_kernels.md Fig. 9 / 10 of a deform3d (time_distribution.png, "
        "kernels.png in the report): by default of the first deform3d among the methods; "
        "MODEL: a deform3d name or .safetensors checkpoint; 'none': no figures",
    )
    motion_options(p, "motion sweep: ")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_bench_video)

    p = bench.add_parser("motion", help="PSNR vs per-frame motion (deformable_kernels.md Fig. 8)")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_MOTION_METHODS),
        help="comma-separated: reference, average, model names or .safetensors paths",
    )
    motion_options(p, "")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_bench_motion)

    p = bench.add_parser("ablation", help="ame_kpn.md Table 2 from the six checkpoints")
    p.add_argument("--testset", required=True)
    p.add_argument("--checkpoints", help="folder with ame_kpn_model{1..6}.safetensors")
    p.add_argument("--limit", type=int)
    p.add_argument("--out", help="report folder: report.md and results.json")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_bench_ablation)

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
    return parser


class _Terminated(BaseException):
    """SIGTERM, raised where the process is, so that cleanup (temporary files) runs."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM becomes an exception, so that temporary files are removed on the way out (train,
    # whose checkpoints and DDP launchers rely on the default, is left as it is)
    catch_term = args.command != "train" and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if catch_term else None
    if args.command != "train":  # train sets its own (--threads)
        from burstkpn.runtime import fit_threads_to_affinity

        fit_threads_to_affinity()
    try:
        with warnings.catch_warnings():
            _one_line_warnings(args.command)
            return args.func(args)
    except InputError as exc:
        print(f"burstkpn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"burstkpn {args.command}: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"burstkpn {args.command}: terminated", file=sys.stderr)
        return 143
    finally:
        if catch_term:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _one_line_warnings(command: str) -> None:
    """Show burstkpn's own warnings as ``burstkpn CMD: warning: ...`` lines (every time);
    other warnings as Python shows them."""
    import warnings

    from burstkpn.errors import BurstkpnWarning

    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, BurstkpnWarning):
            print(f"burstkpn {command}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.simplefilter("always", BurstkpnWarning)
    warnings.showwarning = showwarning


if __name__ == "__main__":
    sys.exit(main())
