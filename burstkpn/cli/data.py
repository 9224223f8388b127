"""``burstkpn synth`` and ``burstkpn make-testset``: synthetic bursts and fixed test sets."""

from __future__ import annotations

import argparse

from burstkpn.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("synth", help="write one synthetic noisy burst as PNGs + a contact sheet")
    p.add_argument("image", help="image file or embedded photo name (e.g. astronaut)")
    p.add_argument("--noise", default="gain3", help="gain1..gain4, low, high or SIGMA_R,SIGMA_S")
    p.add_argument("--out", required=True, help="output folder")
    _burst_options(p, 256)
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
        "mosaic, developed to 8-bit JPEG frames (burstkpn.data.degrade.camera)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _burst_options(p, 128, frames=None)
    p.set_defaults(func=cmd_make_testset)


def _burst_options(p: argparse.ArgumentParser, patch: int, frames: int | None = 8) -> None:
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


def cmd_synth(args: argparse.Namespace) -> int:
    from burstkpn.jobs import synth_burst

    out, meta = synth_burst(
        args.image,
        args.out,
        noise=args.noise,
        frames=args.frames,
        patch=args.patch,
        seed=args.seed,
        mode=args.mode,
        channels=None if args.keep_channels else 3,
        force=args.force,
    )
    print(
        f"wrote a {args.frames}-frame {meta['mode']} burst ({args.patch}x{args.patch}, "
        f"{meta['noise']['name']}) from {meta['source']} to {out}/ (contact_sheet.png shows it)"
    )
    return 0


def cmd_make_testset(args: argparse.Namespace) -> int:
    from burstkpn.data.testsets.burst import make_testset

    defaults = {"deblur": "none", "video": "low,high", "burst": "gain1,gain2,gain3,gain4"}
    noise = args.noise or defaults[args.task]
    levels = [s for s in noise.split(";" if ";" in noise else ",") if s.strip()]
    if args.pipeline != "independent" and args.task != "burst":
        raise InputError(
            f"--pipeline {args.pipeline} makes burst test sets, not --task {args.task}"
        )
    channels = None if args.keep_channels else 3
    common = dict(levels=levels, seed=args.seed, force=args.force, progress=not args.quiet)
    if args.task == "video":
        from burstkpn.data.testsets.video import make_video_testset

        manifest = make_video_testset(
            args.source,
            args.out,
            num_frames=args.frames or 5,
            patch_size=args.patch,
            layout=args.layout,
            windows=args.windows,
            channels=channels,
            **common,
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

        manifest = make_deblur_testset(args.source, args.out, kernel_size=args.blur_size, **common)
        n = len(manifest["pairs"])
        print(f"wrote {n} blurry/sharp pairs ({', '.join(levels)}) to {args.out}/, manifest.json")
        return 0
    manifest = make_testset(
        args.source,
        args.out,
        num_frames=args.frames or 8,
        patch_size=args.patch,
        mode=args.mode,
        channels=channels,
        pipeline=args.pipeline,
        **common,
    )
    n = len(manifest["bursts"])
    print(f"wrote {n} bursts ({', '.join(levels)}) to {args.out}/ with manifest.json")
    return 0
