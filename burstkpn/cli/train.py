"""``burstkpn train``: a training run from flags, a YAML config or a run folder to resume."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from burstkpn.errors import InputError

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


def add_parser(sub) -> None:
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
        help="denoise / deblur: mse on sRGB values ([DCN-LKA] eq. 7, default) or gamma L1; "
        "video: group_annealed ([DeformKernels] eq. 11, default) or gamma_l1 (eq. 9)",
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
    p.add_argument(
        "--stop-after",
        type=int,
        help="stop this process after N more steps, counted from the step it starts at (a "
        "resume or --init at step S stops at S + N, with a checkpoint there)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from burstkpn.train import TrainConfig, read_config, train

    if args.resume and args.init:
        raise InputError("--init starts a new run: give it with --out, not with --resume")
    if args.resume:
        run = Path(args.resume)
        cfg = read_config(run)
        # a resumed run may be extended or run faster, nothing else; precision is a speed
        # setting too: a run begun in bf16 on a CPU with native bf16 continues in fp32 on an
        # AVX2-only one, where bf16 is 7-100x slower (the rewritten config.yaml records it)
        for flag in ("steps", "workers", "threads", "prefetch", "compile", "precision"):
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
