"""Time the last stage of the staged tiled path (the last decoder block's attention and the
heads, eq. 2-6) on one head tile, with the heads in one plain-layout convolution
(``burstkpn.models.heads.plain_layout_head``, bfloat16 inference on CPU) and with the three
channels_last convolutions and the reorder they replace; and the spatial attention's channel
maximum in bfloat16 against its float32 detour (``burstkpn.models.blocks.channel_max``).
docs/speed/profile.md, thirty-ninth session.

    python benchmarks/head_layout.py [--model ame_kpn] [--tile 128] [--rounds 8]

The settings alternate in one process, ``--rounds`` times, 10 calls each; min and median per
call are printed, and the largest difference of the two paths' outputs. bfloat16 only: on a
CPU without native bfloat16 the comparison means nothing (and runs 100x slower), so the script
stops there unless ``--force``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import burstkpn.models.heads as heads
from burstkpn.inference import resolve_model
from burstkpn.inference.staged import TorchStages, staged_margins
from burstkpn.models.blocks import channel_max
from burstkpn.runtime import DENOISE_MMAP_THRESHOLD, native_bf16, prepare_model, tune_allocator


def timed(cases: dict[str, Callable[[], object]], rounds: int, calls: int = 10) -> dict:
    """Per-call seconds of every case, ``rounds`` alternating rounds of ``calls`` calls."""
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            fn()
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            out[name].append((time.perf_counter() - t0) / calls)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ame_kpn")
    ap.add_argument("--tile", type=int, default=128, help="core size (px); the margin is added")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--force", action="store_true", help="run without native bfloat16")
    args = ap.parse_args(argv)
    if not (native_bf16("cpu") or args.force):
        raise SystemExit("this CPU has no native bfloat16: nothing to compare (--force runs it)")
    tune_allocator(DENOISE_MMAP_THRESHOLD)  # as `burstkpn denoise`
    torch.manual_seed(0)
    model = prepare_model(resolve_model(args.model), "cpu", "bf16").eval()
    stages = TorchStages(model)
    size = args.tile + 2 * staged_margins(model)[-1]
    feat_ch = model.kr_head.in_channels
    in_ch = model.backbone.encoder[0][0].in_channels

    def channels_last_bf16(*shape: int) -> torch.Tensor:
        x = torch.rand(*shape).to(torch.bfloat16)
        return x.contiguous(memory_format=torch.channels_last)

    x = channels_last_bf16(1, in_ch, size, size)
    prev = channels_last_bf16(1, feat_ch, size, size)
    stats = (torch.rand(1, feat_ch, 1, 1), torch.rand(1, feat_ch, 1, 1))
    plain = heads.plain_layout_head

    def last(use_plain: bool) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            heads.plain_layout_head = plain if use_plain else (lambda feat: False)
            try:
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                    return stages.last(prev, x, stats, (1, 1, size, size))
            finally:
                heads.plain_layout_head = plain

        return run

    with torch.inference_mode():
        diff = (last(True)() - last(False)()).abs().max().item()
        cases = {
            "last stage, plain-layout heads": last(True),
            "last stage, channels_last heads": last(False),
            "channel max, float32 detour": lambda: channel_max(prev),
            "channel max, bfloat16": lambda: prev.amax(1, keepdim=True),
        }
        times = timed(cases, args.rounds)
    threads = torch.get_num_threads()
    print(f"{args.model}, {args.tile} px core ({size} px window), {threads} threads")
    for name, values in times.items():
        ms = [1e3 * v for v in values]
        print(f"{name:32s} min {min(ms):7.3f}  median {statistics.median(ms):7.3f} ms")
    print(f"largest difference of the two heads' outputs: {diff:.2e}")
    return {"times": times, "difference": diff}


if __name__ == "__main__":
    main()
