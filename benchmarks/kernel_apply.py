"""Time and memory of per-pixel kernel application (burstkpn.ops.apply_kernels) on CPU.

Each row runs in a fresh Python process: the glibc allocator is tuned with mallopt before the first
large allocation (as in PERF-NOTES; ``--no-malloc-tuning`` leaves glibc's defaults), a tiny call
initialises the libraries, the inputs are allocated, then the method is run once (warm-up) and
``--repeat`` more times; the time is the median of the repeats. Memory is the peak RSS
(``ru_maxrss``) minus the peak RSS right after allocating the inputs, after the first run and
after all runs (with the tuning, freed blocks stay in the process and fragmentation can raise the
peak from one run to the next). "needed" is what any method must hold on top of the inputs: the
output, plus the gradients of frames and kernels for forward+backward.

    python benchmarks/kernel_apply.py                  # the default table (about 30 s)
    python benchmarks/kernel_apply.py --compare        # also the stack / unfold alternatives
    python benchmarks/kernel_apply.py --size 512 --frames 2 --size21 256 --threads 1

On a shared machine whose other core is busy, 2 OpenMP threads can be far slower than 1 (each
parallel region waits for the descheduled thread): compare ``--threads 1`` with the default.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

METHODS = ("op", "stack", "unfold", "loop")


def _tune_malloc() -> None:
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 2**30)
    libc.mallopt(m_trim_threshold, 2**34)


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _make_fn(method: str):
    import torch
    import torch.nn.functional as F

    from burstkpn.ops import apply_kernels

    def padded(frames, r):
        b, n, c, h, w = frames.shape
        x = F.pad(frames.reshape(b * n, c, h, w), (r,) * 4, mode="reflect")
        return x.view(b, n, c, h + 2 * r, w + 2 * r)

    def stack(frames, kernels):  # all K*K shifted views at once, multiply, sum
        k = round(kernels.shape[2] ** 0.5)
        h, w = frames.shape[-2:]
        p = padded(frames, k // 2)
        views = [p[..., i : i + h, j : j + w] for i in range(k) for j in range(k)]
        return (torch.stack(views, dim=3) * kernels[:, :, None]).sum(3)

    def unfold(frames, kernels):
        k = round(kernels.shape[2] ** 0.5)
        b, n, c, h, w = frames.shape
        p = padded(frames, k // 2).reshape(b * n * c, 1, h + k - 1, w + k - 1)
        cols = F.unfold(p, k).view(b, n, c, k * k, h * w)
        return torch.einsum("bnctp,bntp->bncp", cols, kernels.flatten(3)).view(b, n, c, h, w)

    def loop(frames, kernels):  # out-of-place slice loop, differentiated by plain autograd
        k = round(kernels.shape[2] ** 0.5)
        h, w = frames.shape[-2:]
        p = padded(frames, k // 2)
        out = 0
        for t in range(k * k):
            i, j = divmod(t, k)
            out = out + p[..., i : i + h, j : j + w] * kernels[:, :, None, t]
        return out

    return {"op": apply_kernels, "stack": stack, "unfold": unfold, "loop": loop}[method]


def child(cfg: dict) -> dict:
    if cfg["malloc_tuning"]:
        _tune_malloc()
    import torch

    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    b, n, c, size, k = 1, cfg["frames"], cfg["channels"], cfg["size"], cfg["k"]
    backward = cfg["mode"] == "fwd+bwd"
    fn = _make_fn(cfg["method"])

    def run(frames, kernels, grad_out):
        if backward:
            out = fn(frames, kernels)
            grads = torch.autograd.grad(out, (frames, kernels), grad_out)
            del out, grads
        else:
            with torch.no_grad():
                out = fn(frames, kernels)
            del out

    # initialise libraries (autograd engine, OpenMP) on a tiny input so they do not count
    tiny = (b, n, c, 16, 16)
    run(torch.randn(tiny, requires_grad=backward), torch.rand(b, n, k * k, 16, 16,
        requires_grad=backward), torch.randn(tiny))  # fmt: skip
    frames = torch.randn(b, n, c, size, size)
    kernels = torch.empty(b, n, k * k, size, size).uniform_(0, 2 / k**2)
    grad_out = torch.randn(b, n, c, size, size) if backward else None
    frames.requires_grad_(backward)
    kernels.requires_grad_(backward)
    base = _rss_mb()

    def once() -> float:
        t0 = time.perf_counter()
        run(frames, kernels, grad_out)
        return time.perf_counter() - t0

    times = [once()]
    extra_first = _rss_mb() - base
    times += [once() for _ in range(cfg["repeat"])]
    extra_all = _rss_mb() - base
    out_mb = frames.numel() * 4 / 2**20
    needed = out_mb + ((frames.numel() + kernels.numel()) * 4 / 2**20 if backward else 0)
    return {
        "seconds": statistics.median(times[1:] or times),
        "inputs_mb": (frames.numel() + kernels.numel()) * 4 / 2**20,
        "extra_first_mb": extra_first,
        "extra_all_mb": extra_all,
        "needed_mb": needed,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="H = W for the K = 5 rows")
    ap.add_argument("--frames", type=int, default=8, help="N for the K = 5 rows")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--size21", type=int, default=512, help="H = W for the K = 21 row (0: skip)")
    ap.add_argument("--frames21", type=int, default=8, help="N for the K = 21 row")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--no-malloc-tuning", action="store_true", help="leave glibc's defaults")
    ap.add_argument("--compare", action="store_true", help="also time stack and unfold")
    ap.add_argument("--methods", default=None, help=f"comma list from {METHODS} (K = 5 rows)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    methods = args.methods.split(",") if args.methods else ["op"]
    if args.compare and not args.methods:
        methods += ["stack", "unfold"]
    common = {"channels": args.channels, "repeat": args.repeat, "threads": args.threads,
              "malloc_tuning": not args.no_malloc_tuning}  # fmt: skip
    rows = []
    for method in methods:
        for mode in ("forward", "fwd+bwd"):
            rows.append({"method": method, "k": 5, "size": args.size, "frames": args.frames,
                         "mode": mode, **common})  # fmt: skip
    if args.size21:
        rows.append({"method": "op", "k": 21, "size": args.size21, "frames": args.frames21,
                     "mode": "forward", **common})  # fmt: skip

    print("| method | K | N x C x H x W | pass | time (s) | inputs (MB) | needed (MB) | "
          "extra, 1 run (MB) | extra, all runs (MB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    threads = "?"
    for cfg in rows:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(cfg)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(f"| {cfg['method']} | {cfg['k']} | failed: {proc.stderr.strip()[-200:]} |")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        threads = r["threads"]
        shape = f"{cfg['frames']} x {cfg['channels']} x {cfg['size']} x {cfg['size']}"
        print(
            f"| {cfg['method']} | {cfg['k']} | {shape} | {cfg['mode']} | {r['seconds']:.3f} | "
            f"{r['inputs_mb']:.0f} | {r['needed_mb']:.0f} | {r['extra_first_mb']:+.0f} | "
            f"{r['extra_all_mb']:+.0f} |",
            flush=True,
        )
    tuning = "off" if args.no_malloc_tuning else "on"
    print(f"(torch threads: {threads}; malloc tuning {tuning}; time: median of {args.repeat} runs "
          "after one warm-up run)")  # fmt: skip


if __name__ == "__main__":
    main()
