"""Wall time of ``denoise_burst`` on a burst folder with a given core size for the last stage
of the staged tiled path (``burstkpn.inference.staged.HEAD_TILE``: the last attention and the
heads), and the output's digest, to compare settings (docs/speed/profile.md).

    python benchmarks/head_tile.py BURST_FOLDER --head-tile 128 512 128 512 [--model ame_kpn]
        [--device cuda]

Each setting runs in turn in this process (one torch thread unless ``--threads``); the
digest shows that the output does not depend on the setting (on one device: a GPU's
reductions may differ in the last bits from setting to setting, which the digest shows too).
On CUDA the 128 px head tiles, sized for a CPU's cache, are launch-bound (docs/speed/profile.md,
"12 MP on an NVIDIA H200"); this measures larger ones before any default changes.
"""

from __future__ import annotations

import argparse
import hashlib
import time

import torch

from burstkpn.data.io.images import list_images
from burstkpn.denoising import denoise_burst, load_frames
from burstkpn.inference import resolve_model, runner_for, staged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("burst")
    ap.add_argument("--head-tile", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--model", default="ame_kpn")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    frames, _ = load_frames(list_images(args.burst))
    runner = runner_for(resolve_model(args.model), device=args.device)
    for head_tile in args.head_tile:
        staged.HEAD_TILE = head_tile
        t0 = time.perf_counter()
        out = denoise_burst(frames, runner, noise="auto").image
        seconds = time.perf_counter() - t0
        digest = hashlib.sha256(out.contiguous().numpy().tobytes()).hexdigest()[:12]
        print(f"{args.model} head tile {head_tile}: {seconds:.1f} s, output sha256 {digest}")


if __name__ == "__main__":
    main()
