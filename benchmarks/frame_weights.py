"""How a burst model weighs its frames on a static burst, and where its error sits.

    python benchmarks/frame_weights.py --models ame_kpn,ame_kpn_real,kpn --noise gain1,gain2

A static burst (8 copies of one grey crop of an embedded scikit-image photo, linear light,
independent shot / read noise of a named level, the true noise map) goes through each model
with ``return_aux``. Printed per model and level:

- per frame i: the mean kernel sum sum_t K_i (eq. 2) and, for models with eq. (4), the mean
  weight W_i (eq. 3). ``temporal`` = mean of W_i sum_t K_i / N: the share of frame i's own
  samples in the output (on a flat patch the output is sum_i temporal_i X_i plus the residual
  part); ``residual`` = mean of (1 - W_i) / N summed over frames: the share of the residuals R_i;
- the RMSE per pixel and of 4x4 block means (the low-frequency part of the error) for the noisy
  reference, the plain mean of the 8 frames (the best a static burst allows for the low band)
  and the model.

On a static burst every frame is as good as the reference, so a model that averages like the
mean has equal ``temporal`` shares; a 4x4-block RMSE above the mean's is low-frequency noise
left in the output (docs/benchmarks.md, "Measurements outside BENCHMARKS.md").
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.nn.functional as F

from burstkpn.data.degrade.noise import add_noise, estimate_noise_map, parse_noise
from burstkpn.data.io.images import load_linear
from burstkpn.inference.resolve import resolve_model

NUM_FRAMES = 8


def static_burst(
    image: torch.Tensor, sigma_r: float, sigma_s: float, size: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(noisy (1, N, 1, S, S), noise_map (1, 1, S, S), clean (1, 1, S, S))`` from the centre
    ``size`` crop of a linear-light ``image`` ``(C, H, W)``, made grey (the mean of C)."""
    _, h, w = image.shape
    if min(h, w) < size:
        raise ValueError(f"the image ({h}x{w}) is smaller than --size {size}")
    y, x = (h - size) // 2, (w - size) // 2
    clean = image[:, y : y + size, x : x + size].mean(0, keepdim=True)[None]
    frames = clean[:, None].expand(1, NUM_FRAMES, 1, size, size)
    noisy = add_noise(frames, sigma_r, sigma_s, torch.Generator().manual_seed(seed))
    return noisy, estimate_noise_map(noisy[:, 0], sigma_r, sigma_s), clean


def decompose(aux: dict, num_frames: int) -> dict[str, list[float] | float]:
    """Per-frame means of the kernel sums, the weights W_i and the temporal shares
    W_i sum_t K_i / N, and the residual share (see the module's docstring), from a model's
    ``return_aux`` output (``kernels`` ``(B, N, C, T, H, W)``, ``weights`` ``(B, N, C, H, W)``
    when the model has eq. 4)."""
    ksum = aux["kernels"].sum(3)  # (B, N, C, H, W)
    dims = (0, 2, 3, 4)
    out: dict[str, list[float] | float] = {"kernel_sum": ksum.mean(dims).tolist()}
    w = aux.get("weights")
    if w is None:
        out["temporal"] = (ksum.mean(dims) / num_frames).tolist()
        out["residual"] = 0.0
    else:
        out["weight"] = w.mean(dims).tolist()
        out["temporal"] = ((w * ksum).mean(dims) / num_frames).tolist()
        out["residual"] = float((1 - w).mean(dims).sum() / num_frames)
    return out


def rmse(estimate: torch.Tensor, clean: torch.Tensor, block: int = 1) -> float:
    """RMSE of ``estimate`` against ``clean`` ``(B, C, H, W)``, of ``block`` x ``block``
    means when ``block > 1``."""
    err = (estimate - clean).float()
    if block > 1:
        err = F.avg_pool2d(err, block)
    return float(err.square().mean().sqrt())


def scored(base: dict, method: str, estimate: torch.Tensor, clean: torch.Tensor) -> dict:
    """``base`` plus the method's per-pixel and 4x4-block RMSE."""
    return {
        **base,
        "method": method,
        "rmse": rmse(estimate, clean),
        "rmse_4x4": rmse(estimate, clean, 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="ame_kpn,ame_kpn_real,kpn")
    p.add_argument("--noise", default="gain1,gain2", help="named levels or SIGMA_R,SIGMA_S")
    p.add_argument("--image", default="skimage:astronaut")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()

    image = load_linear(args.image)
    rows = []
    for spec in args.noise.split(","):
        level = parse_noise(spec)
        noisy, noise_map, clean = static_burst(
            image, level.sigma_r, level.sigma_s, args.size, args.seed
        )
        base = {"noise": level.name, "sigma_r": level.sigma_r, "sigma_s": level.sigma_s}
        rows += [
            scored(base, "reference", noisy[:, 0], clean),
            scored(base, "mean", noisy.mean(1), clean),
        ]
        for name in args.models.split(","):
            model = resolve_model(name).eval()
            with torch.no_grad():
                out = model(noisy, noise_map, return_aux=True)
            rows.append(
                {**scored(base, name, out.image, clean), **decompose(out.aux, noisy.shape[1])}
            )

    print("| noise | method | RMSE | 4x4-block RMSE | temporal share per frame | residual share |")
    print("|---|---|--:|--:|---|--:|")
    for r in rows:
        shares = " / ".join(f"{v:.3f}" for v in r.get("temporal", []))
        res = f"{r['residual']:.3f}" if "residual" in r else ""
        print(
            f"| {r['noise']} | {r['method']} | {r['rmse']:.5f} | {r['rmse_4x4']:.5f} "
            f"| {shares} | {res} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": " ".join(sys.argv), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
