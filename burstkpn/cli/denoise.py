"""``burstkpn denoise``, ``burstkpn deblur`` and ``burstkpn demo``: the main jobs, which
:mod:`burstkpn.jobs` runs (the choice between burst, frame folder, video and single-image
models included); here are their options and what they print."""

from __future__ import annotations

import argparse

BACKENDS = ("torch", "onnxruntime")  # denoise --backend, bench speed --backend

_NOISE_SOURCE = {
    "burst": "measured from the burst",
    "image": "measured from single frames",
    "given": "given",
}


def add_parser(sub) -> None:
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
    _device_option(p)
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
    _device_option(p)
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


def _device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="where the network runs (default cpu; cuda where a GPU is present)",
    )


def _job_options(args: argparse.Namespace) -> dict:
    """The options denoise and deblur share, as keywords of their jobs."""
    return dict(
        model=args.model,
        tile=args.tile,
        device=args.device,
        bits=args.bits,
        force=args.force,
        progress=not args.quiet,
    )


def cmd_denoise(args: argparse.Namespace) -> int:
    from burstkpn.jobs import denoise_path
    from burstkpn.runtime import DENOISE_MMAP_THRESHOLD, tune_allocator

    tune_allocator(DENOISE_MMAP_THRESHOLD)  # before the frames are read (runtime.py)

    r = denoise_path(
        args.inputs,
        args.output,
        noise=args.noise,
        reference=args.reference,
        align=args.align,
        linear=args.linear,
        backend=args.backend,
        fps=args.fps,
        profile=args.profile is not None,
        **_job_options(args),
    )
    if r.profile is not None:
        info = r.profile_info
        print(
            f"profile: {info['frames']} frames of {info['width']}x{info['height']}x"
            f"{info['channels']}, tile {args.tile}, torch threads {info['torch_threads']}"
        )
        print(r.profile.table())
        if args.profile != "-":
            r.profile.write_json(args.profile, **info)
            print(f"profile written to {args.profile}")
    if r.kind == "image":
        _print_restored("denoised", r)
    elif r.kind == "burst":
        aligned = f"aligned, max shift {r.max_shift:.1f} px" if r.max_shift else "no alignment"
        used = f"{r.frames_used} of {r.frames}" if 0 < r.frames_used < r.frames else r.frames
        print(
            f"denoised {used} frames with {r.model} in {r.seconds:.1f} s "
            f"(noise {_NOISE_SOURCE[r.noise_source]}: sigma_r={r.sigma_r:.4g}, "
            f"sigma_s={r.sigma_s:.4g}; {aligned}) -> {r.output}"
        )
    else:
        fps = f" at {r.fps:.3g} fps" if r.kind == "video" else ""
        print(
            f"denoised {r.frames} frames{fps} with {r.model} in {r.seconds:.1f} s (noise "
            f"sigma_r={r.sigma_r:.4g}, sigma_s={r.sigma_s:.4g}) -> {r.output} ({r.bits}-bit)"
        )
    return 0


def _print_restored(verb: str, r) -> None:
    print(
        f"{verb} {r.source} ({r.width}x{r.height}) with {r.model} in {r.seconds:.1f} s "
        f"-> {r.output}"
    )


def cmd_deblur(args: argparse.Namespace) -> int:
    from burstkpn.jobs import deblur_path

    r = deblur_path(args.image, args.output, **_job_options(args))
    _print_restored("deblurred", r)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from burstkpn.jobs import demo

    r = demo(
        args.image,
        noise=args.noise,
        model=args.model,
        patch=args.patch,
        seed=args.seed,
        out=args.out,
        force=args.force,
    )
    print(
        f"{r.source}, {r.level.name}, 8 frames: noisy reference {r.before:.2f} dB -> "
        f"{args.model} {r.after:.2f} dB (noise estimated: sigma_r={r.sigma_r:.4f} vs "
        f"{r.level.sigma_r}, sigma_s={r.sigma_s:.4f} vs {r.level.sigma_s}); wrote {r.output}"
    )
    return 0
