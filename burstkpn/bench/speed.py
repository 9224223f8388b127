"""Model cost and speed: parameters, GMAC per megapixel, megapixels per second and peak memory.

Each speed measurement runs in a fresh process (``python -m burstkpn.bench.speed --worker``) so
its peak resident memory (``ru_maxrss``) belongs to that model alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from burstkpn.inference import Runner
from burstkpn.models import count_parameters, create_model
from burstkpn.models.traits import model_traits
from burstkpn.runtime import resolve_precision, tune_allocator

DEFAULT_MODELS = ("kpn", "kpn21", "mkpn", "ame_kpn")


def model_spec(spec: str) -> tuple[str, dict]:
    """``kpn21`` is shorthand for KPN with 21x21 kernels, ``ame_kpn_color`` for the colour
    variant of AME-KPN, ``ame_kpn_shared`` for AME-KPN whose colour planes share the coarse
    levels (``shared_coarse``); other names are factory names."""
    if spec == "kpn21":
        return "kpn", {"kernel_size": 21}
    if spec == "ame_kpn_color":
        return "ame_kpn", {"color": True}
    if spec == "ame_kpn_shared":
        return "ame_kpn", {"shared_coarse": True}
    return spec, {}


def burst_length(model: torch.nn.Module, default: int) -> int:
    """Frames a model reads: its own for single-image (1: dcn_lka, deform2d) and clip models
    (deform3d's 5), ``default`` for burst models."""
    traits = model_traits(model)
    return default if traits.kind == "burst" else traits.frames


def gmac_per_megapixel(model: torch.nn.Module, channels: int = 3, frames: int = 8) -> float:
    """Multiply-accumulates per megapixel of a colour burst: convolutions counted by torch's
    FlopCounterMode, plus the kernel application (frames x taps per pixel and channel), or a
    model's own ``extra_macs_per_pixel`` (deformable sampling). Models with a fixed burst length
    (:func:`burst_length`, e.g. deform3d's 5) get bursts of that length."""
    frames = burst_length(model, frames)
    size = 128
    # a per-plane model is counted on one plane and scaled; the colour variant sees all planes
    planes = 1 if model_traits(model).independent_channels else channels
    burst = torch.rand(1, frames, planes, size, size)
    nmap = torch.full((1, planes, size, size), 0.05)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(burst, nmap)
    macs = counter.get_total_flops() / 2
    if hasattr(model, "extra_macs_per_pixel"):
        macs += model.extra_macs_per_pixel * size * size
    elif not getattr(model, "direct", True):
        macs += frames * model.taps * size * size * planes
    return macs * (channels // planes) / (size * size) / 1e3  # -> GMAC per colour MP


def _worker(args: argparse.Namespace) -> dict:
    tune_allocator()
    torch.manual_seed(0)
    name, kw = model_spec(args.model)
    model = create_model(name, args.size, **kw).eval()
    if args.backend == "onnxruntime":  # float32 only; exported before the clock starts (cached)
        from burstkpn.export import OnnxModel

        model, args.precision = OnnxModel(model), "fp32"
    runner = Runner(model, precision=args.precision)
    frames = burst_length(runner.model, 8)
    burst = torch.rand(1, frames, 3, args.height, args.width)
    nmap = torch.full((1, 3, args.height, args.width), 0.05)

    def once():
        return runner(burst, nmap, tile=args.tile)

    once()  # warm-up
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {
        "model": args.model,
        "size": args.size,
        "precision": resolve_precision(args.precision),
        "backend": args.backend,
        "height": args.height,
        "width": args.width,
        "tile": args.tile,
        "frames": frames,
        "seconds": best,
        "mp_per_s": args.height * args.width / 1e6 / best,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_speed(
    models=DEFAULT_MODELS,
    size="cpu",
    height=512,
    width=512,
    precision="auto",
    repeat=3,
    tile=0,
    measure: bool = True,
    backend: str = "torch",
) -> list[dict]:
    """One row per model: parameters and GMAC/MP, and (``measure``) time and peak memory on
    ``backend`` (``torch`` or ``onnxruntime``, float32)."""
    rows = []
    for spec in models:
        name, kw = model_spec(spec)
        model = create_model(name, size, **kw).eval()
        if not measure:
            rows.append(
                {
                    "model": spec,
                    "size": size,
                    "params": count_parameters(model),
                    "gmac_per_mp": gmac_per_megapixel(model),
                }
            )
            continue
        cmd = [
            sys.executable,
            "-m",
            "burstkpn.bench.speed",
            "--worker",
            "--model",
            spec,
            "--size",
            size,
            "--height",
            str(height),
            "--width",
            str(width),
            "--precision",
            precision,
            "--repeat",
            str(repeat),
            "--tile",
            str(tile),
            "--backend",
            backend,
        ]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            tail = (res.stderr.strip().splitlines() or ["unknown error"])[-1]
            row = {"model": spec, "size": size, "backend": backend, "error": tail}
        else:
            row = json.loads(res.stdout.strip().splitlines()[-1])
        row["params"] = count_parameters(model)
        row["gmac_per_mp"] = gmac_per_megapixel(model)
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    head = (
        "| model | size | parameters | GMAC/MP | precision | input | s / burst | MP/s | peak RSS |"
    )
    lines = [head, "|" + "---|" * 9]
    if rows and "seconds" not in rows[0] and "error" not in rows[0]:
        lines = [
            "| model | size | parameters | GMAC per colour megapixel (8 frames) |",
            "|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['model']} | {r['size']} | {r['params']:,} | {r['gmac_per_mp']:.0f} |"
            )
        return "\n".join(lines)
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['model']} | {r['size']} | {r['params']:,} | "
                f"{r['gmac_per_mp']:.0f} | failed: {r['error']} | | | | |"
            )
            continue
        tile = f", tiles {r['tile']}" if r.get("tile") else ""
        backend = r.get("backend", "torch")
        precision = r["precision"] + ("" if backend == "torch" else f" ({backend})")
        lines.append(
            f"| {r['model']} | {r['size']} | {r['params']:,} | {r['gmac_per_mp']:.0f} | "
            f"{precision} | {r.get('frames', 8)}x3x{r['height']}x{r['width']}{tile} | "
            f"{r['seconds']:.2f} | "
            f"{r['mp_per_s']:.3f} | {r['peak_rss_mb']:.0f} MB |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m burstkpn.bench.speed")
    p.add_argument("--worker", action="store_true")
    p.add_argument("--model", default="ame_kpn")
    p.add_argument("--size", default="cpu")
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--precision", default="auto")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--tile", type=int, default=0)
    p.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"))
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args)))
        return 0
    print(
        format_table(
            run_speed(
                [args.model],
                args.size,
                args.height,
                args.width,
                args.precision,
                args.repeat,
                args.tile,
                backend=args.backend,
            )
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
