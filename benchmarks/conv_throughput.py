"""Where the network's time goes on one grey plane through the staged tiled path: the torch
profiler's self time of every convolution shape (calls, seconds, multiply-accumulates, GMAC/s)
and of the other operators, so that the time the convolutions need at this CPU's speed can be
told from the rest (docs/speed/profile.md, thirty-ninth session).

    python benchmarks/conv_throughput.py [--model ame_kpn] [--height 1500] [--width 2000]
        [--tile 512] [--precision auto] [--top 12]

One warm-up run, then one profiled run, on a random 8-frame plane with a flat noise map, in
this process's torch threads. MACs count what each call computes (its window with the margin
included); a 12 MP colour burst is 12 such 3 MP planes.
"""

from __future__ import annotations

import argparse
import collections

import torch
from torch.profiler import profile

from burstkpn.inference import resolve_model
from burstkpn.inference.tiling import tiled_forward
from burstkpn.runtime import (
    DENOISE_MMAP_THRESHOLD,
    autocast,
    prepare_model,
    resolve_precision,
    tune_allocator,
)

# the operators that compute a convolution (oneDNN's, or torch's own where oneDNN is not used)
CONVS = ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward", "aten::thnn_conv2d")


def conv_macs(shapes: list) -> int:
    """Multiply-accumulates of a convolution call with 'same' output size: batch x
    output pixels x output channels x input channels per group x kernel taps."""
    x, w = shapes[0], shapes[1]
    return x[0] * x[2] * x[3] * w[0] * w[1] * w[2] * w[3]


def summarise(events) -> tuple[dict, dict]:
    """``(convolutions by 'in->out kK': [seconds, MACs, calls], other ops: seconds)``."""
    convs: dict = collections.defaultdict(lambda: [0.0, 0, 0])
    other: dict = collections.defaultdict(float)
    for e in events:
        seconds = e.self_cpu_time_total / 1e6
        if e.name in CONVS and len(e.input_shapes) > 1 and e.input_shapes[1]:
            w = e.input_shapes[1]
            row = convs[f"{w[1]}->{w[0]} k{w[2]}"]
            row[0] += seconds
            row[1] += conv_macs(e.input_shapes)
            row[2] += 1
        elif seconds > 0:
            other[e.name] += seconds
    return dict(convs), dict(other)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ame_kpn")
    ap.add_argument("--height", type=int, default=1500)
    ap.add_argument("--width", type=int, default=2000)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    ap.add_argument("--top", type=int, default=12, help="other operators listed")
    args = ap.parse_args(argv)
    tune_allocator(DENOISE_MMAP_THRESHOLD)  # as `burstkpn denoise`
    precision = resolve_precision(args.precision, "cpu")
    model = prepare_model(resolve_model(args.model), "cpu", precision).eval()
    torch.manual_seed(0)
    n = getattr(model, "num_frames", 8)
    burst = torch.rand(1, n, 1, args.height, args.width) * 0.5 + 0.25
    noise = torch.full((1, 1, args.height, args.width), 0.02)

    def run() -> None:
        with torch.inference_mode(), autocast("cpu", precision):
            tiled_forward(model, burst, noise, tile=args.tile)

    run()
    with profile(record_shapes=True) as prof:
        run()
    convs, other = summarise(prof.events())
    conv_s = sum(r[0] for r in convs.values())
    other_s = sum(other.values())
    print(f"{args.model}, {args.height}x{args.width} grey, tile {args.tile}, {precision}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print("| convolution | calls | s | GMAC | GMAC/s |\n|---|--:|--:|--:|--:|")
    for name, (s, macs, calls) in sorted(convs.items(), key=lambda kv: -kv[1][0]):
        rate = f"{macs / 1e9 / s:.0f}" if s > 0 else "-"
        print(f"| {name} | {calls} | {s:.3f} | {macs / 1e9:.1f} | {rate} |")
    total_macs = sum(r[1] for r in convs.values())
    print(f"| **all** | | **{conv_s:.2f}** | {total_macs / 1e9:.0f} | "
          f"{total_macs / 1e9 / max(conv_s, 1e-9):.0f} |")  # fmt: skip
    print(f"\nother operators: {other_s:.2f} s in all; the largest:")
    for name, s in sorted(other.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {name:32s} {s:.3f} s")
    return {"convolutions": convs, "other": other, "conv_s": conv_s, "other_s": other_s}


if __name__ == "__main__":
    main()
