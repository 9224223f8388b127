"""How much of a burst a model uses: PSNR per gain on a burst test set, with and without the
whole-pixel alignment, and on static bursts against their plain mean.

For every model (a shipped name or a ``.safetensors`` checkpoint) and every burst of
``TESTSET`` (``burstkpn make-testset``; the first ``--limit`` images, all gains):

- ``as given``: the network on the burst as synthesised (every neighbour up to 2 px off, some
  up to 16 px: [AME-KPN] section 3.1), no alignment;
- ``aligned``: the network on the burst moved onto its reference by the whole-pixel part of the
  measured global shifts (:func:`burstkpn.ops.align.align_whole_pixels`; what the runner does
  for ``prealign`` models);
- ``moving object``: the aligned burst with a square a quarter of the burst's side, at a seeded
  position, replaced in three of the seven neighbours by the same frame's pixels an eighth of
  the side away (an object that moved: what a global alignment cannot fix); PSNR over the whole
  image and over the square alone (where a model that trusts the neighbours blindly ghosts;
  squared errors pooled over the bursts);
- ``static``: the clean reference repeated 8 times with fresh noise of the burst's level (seeded),
  the network against the plain mean of the 8 frames (which is what an ideal burst denoiser
  beats on a static scene).

``--balance`` also prints the eq. (4) balance of AME-KPN models on the static bursts: the
reference's and the neighbours' kernel sums, sigmoid weights W and centre taps (means over
pixels, channels and bursts of each gain).

Usage::

    python benchmarks/alignment_check.py TESTSET --limit 14 ame_kpn path/to/other.safetensors
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from burstkpn.data.degrade.noise import estimate_noise_map
from burstkpn.data.testsets.burst import TestSet
from burstkpn.evaluation import select_entries
from burstkpn.inference import Runner, resolve_model
from burstkpn.metrics import prepare, psnr
from burstkpn.ops.align import align_whole_pixels

GAINS = ("gain1", "gain2", "gain3", "gain4")


def static_burst(clean: torch.Tensor, sigma_r: float, sigma_s: float, seed: int) -> torch.Tensor:
    """``(1, 8, C, H, W)``: the clean image ``(C, H, W)`` 8 times, each with its own noise."""
    g = torch.Generator().manual_seed(seed)
    burst = clean[None].repeat(8, 1, 1, 1)
    std = (sigma_r**2 + sigma_s * burst.clamp(min=0)).sqrt()
    return (burst + std * torch.randn(burst.shape, generator=g))[None]


def moving_object(burst: torch.Tensor, seed: int) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """``burst`` ``(1, N, C, H, W)`` with a square of side ``min(H, W) // 4`` replaced in
    neighbours 2, 4 and 6 by the pixels ``side // 2`` px down and right of it in the same frame;
    the square's rows and columns."""
    h, w = burst.shape[-2:]
    side = min(h, w) // 4
    step = side // 2
    g = torch.Generator().manual_seed(seed)
    top = int(torch.randint(0, h - side - step + 1, (1,), generator=g))
    left = int(torch.randint(0, w - side - step + 1, (1,), generator=g))
    rows, cols = slice(top, top + side), slice(left, left + side)
    src = (slice(top + step, top + step + side), slice(left + step, left + step + side))
    out = burst.clone()
    for k in (2, 4, 6):
        if k < burst.shape[1]:
            out[:, k, :, rows, cols] = burst[:, k, :, src[0], src[1]]
    return out, (rows, cols)


def balance(runner: Runner, burst: torch.Tensor, nmap: torch.Tensor) -> dict[str, float]:
    """Eq. (4) inside a kernel model on ``burst``: reference / neighbour kernel sums, W and
    centre taps."""
    aux = runner.forward(burst, nmap, return_aux=True).aux
    k, w = aux["kernels"].float(), aux.get("weights")  # (B, N, C, T, H, W), (B, N, C, H, W)
    centre = k.shape[3] // 2
    out = {
        "ref kernel sum": k[:, 0].sum(2).mean(),
        "nbr kernel sum": k[:, 1:].sum(3).mean(),
        "ref centre tap": k[:, 0, :, centre].mean(),
        "nbr centre tap": k[:, 1:, :, centre].mean(),
    }
    if w is not None:
        out |= {"ref W": w[:, 0].float().mean(), "nbr W": w[:, 1:].float().mean()}
    return {key: float(v) for key, v in out.items()}


def check(
    runner: Runner, testset: TestSet, limit: int | None, with_balance: bool = False
) -> dict[str, dict[str, float]]:
    rows: dict[tuple[str, str], list[float]] = {}

    def add(key: str, level: str, value) -> None:
        rows.setdefault((key, level), []).append(float(value))

    for i, entry in enumerate(select_entries(testset, limit)):
        item, level = testset.load(entry), entry["level"]
        add("noisy reference", level, psnr(item.noisy[:, 0], item.clean))
        add("as given", level, psnr(runner(item.noisy, item.noise_map, aligned=True), item.clean))
        aligned = align_whole_pixels(item.noisy)[0]
        still = runner(aligned, item.noise_map, aligned=True)
        add("aligned", level, psnr(still, item.clean))
        moved, (ys, xs) = moving_object(aligned, seed=i)
        out = runner(moved, item.noise_map, aligned=True)
        add("moving object", level, psnr(out, item.clean))
        # the square's rows pool squared errors (sRGB) over the bursts (a flat square alone would
        # dominate a mean of PSNRs)
        clean = item.clean[..., ys, xs]
        for key, x in (
            ("noisy reference: square", item.noisy[:, 0, :, ys, xs]),
            ("aligned: square", still[..., ys, xs]),
            ("moving object: square", out[..., ys, xs]),
        ):
            add(key, level, (prepare(x.float(), border=0) - prepare(clean, border=0)).pow(2).mean())
        sr, ss = float(entry["sigma_r"]), float(entry["sigma_s"])
        static = static_burst(item.clean[0], sr, ss, seed=i)
        nmap = estimate_noise_map(static[:, 0], sr, ss)
        add("static: mean of 8", level, psnr(static.mean(1), item.clean))
        add("static: model", level, psnr(runner(static, nmap, aligned=True), item.clean))
        if with_balance:
            for key, value in balance(runner, static, nmap).items():
                add(f"static: {key}", level, value)
    keys = dict.fromkeys(k for k, _ in rows)

    def mean(key: str, level: str) -> float:
        values = rows[(key, level)]
        if key.endswith(": square"):  # pooled MSE -> PSNR
            return float(-10 * np.log10(np.mean(values)))
        return float(np.mean(values))

    return {k: {g: mean(k, g) for g in GAINS if (k, g) in rows} for k in keys}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("testset", help="a burst test set folder (burstkpn make-testset)")
    ap.add_argument("models", nargs="+", help="shipped names or .safetensors checkpoints")
    ap.add_argument("--limit", type=int, default=None, help="the first N images")
    ap.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    ap.add_argument("--balance", action="store_true", help="eq. (4) balance on static bursts")
    args = ap.parse_args()
    torch.set_num_threads(1)
    testset = TestSet(args.testset)
    print("| model | burst | " + " | ".join(g.replace("gain", "Gain ") for g in GAINS) + " |")
    print("|---|---|" + "---|" * len(GAINS))
    for name in args.models:
        runner = Runner(resolve_model(name, "denoise"), precision=args.precision)
        for key, values in check(runner, testset, args.limit, args.balance).items():
            cells = " | ".join(f"{values[g]:.2f}" for g in GAINS)
            print(f"| {name} | {key} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
