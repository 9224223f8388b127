"""Tiled denoising of a large burst by backend and precision, one setting per process.

``burstkpn denoise`` runs torch in the precision ``auto`` picks (bfloat16 where the CPU runs it
natively); this script also runs torch in float32 and onnxruntime (float32, the staged graphs
of :mod:`burstkpn.export.stages`), so that the backends can be compared in the same precision on
one machine. It times :func:`burstkpn.denoising.denoise_burst` only (reading excluded; the ONNX
export, cached after the first call, and the session set-up happen before the clock starts)
with the allocator setting of ``burstkpn denoise``, and prints one JSON line: wall seconds,
peak RSS, the output's largest difference to ``--against`` (an image written by an earlier
run) if given.

    python benchmarks/backend_tiled.py /tmp/burst12mp_2000x1500 --backend onnxruntime \
        --out /tmp/ort.png [--against /tmp/torch32.png]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from burstkpn.data.io.images import read_image, write_image
from burstkpn.denoising import denoise_burst, load_frames
from burstkpn.export import OnnxModel
from burstkpn.inference import Runner
from burstkpn.inference.resolve import resolve_model
from burstkpn.runtime import DENOISE_MMAP_THRESHOLD, tune_allocator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from write_benchmarks_md import machine  # noqa: E402  (a script beside this one)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("burst", help="folder of frames")
    p.add_argument("--model", default="ame_kpn")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--out", help="write the denoised image here (16-bit PNG)")
    p.add_argument("--against", help="an earlier --out image: report the largest difference")
    args = p.parse_args()
    tune_allocator(DENOISE_MMAP_THRESHOLD)  # as `burstkpn denoise` does

    frames, _ = load_frames(args.burst)
    net = resolve_model(args.model, "denoise")
    precision = args.precision
    if args.backend == "onnxruntime":
        net, precision = OnnxModel(net), "fp32"
    runner = Runner(net, precision=precision)
    start = time.perf_counter()
    result = denoise_burst(frames, runner, tile=args.tile)
    seconds = time.perf_counter() - start
    image = result.image.permute(1, 2, 0).numpy()
    row = {
        "backend": args.backend,
        "precision": runner.precision,
        "model": args.model,
        "size": list(frames.shape),
        "tile": args.tile,
        "machine": machine(),
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.out:
        write_image(args.out, image, bits=16, overwrite=True)
    if args.against:
        other = read_image(args.against).astype(np.float64) / 65535
        row["max_abs_diff_vs_against"] = float(np.abs(other - image).max())
    print(json.dumps(row))


if __name__ == "__main__":
    main()
