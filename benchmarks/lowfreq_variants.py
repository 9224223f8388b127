"""Two inference-time tries against the low-frequency noise burst models leave (issue 23).

The burst models remove the fine grain of a real burst but leave coarse blotches that a plain
mean of the aligned frames removes (docs/benchmarks.md, ``real_score_check.py --variant
box4``). Both variants below keep the network and its weights and change only what is done
around it, in linear light, with a 5-tap binomial pyramid (Burt and Adelson's Laplacian
pyramid: ``down`` blurs and keeps every second pixel, ``up`` inserts zeros and blurs):

- ``pyrLr:MODEL`` (coarse scales through the model): the model also denoises the burst
  taken ``L - 1`` pyramid levels down, each coarser level told a noise variance ``r`` / 100
  times the finer one's (25: independent noise; correlated noise keeps more), and the
  Laplacian pyramid of the outputs is collapsed: each finer output keeps its own detail band
  and takes its low band from the coarser output.
- ``lmL{r|p}:MODEL`` (low band from the frames): the model's output keeps its detail band
  (above ``L`` pyramid levels) and takes its low band from the frames aligned with sub-pixel
  shifts (:func:`burstkpn.ops.align.apply_shifts`), averaged plainly (``p``) or with robust
  weights (``r``: each neighbour's low band weighted per pixel by ``exp(-d^2 / 2 (2 s)^2)``,
  ``d`` its distance to the reference's low band, ``s`` the MAD scale of all neighbours' ``d``).

Usage (the first runs ``real_score_check.py``'s synthetic static bursts with known truth, the
second ``burstkpn bench real``)::

    python benchmarks/lowfreq_variants.py check ../shared/data/eval/cset14 \
        --methods align_mean,ame_kpn_real,lm1p:ame_kpn_real [--variant box4]
    python benchmarks/lowfreq_variants.py real ../shared/data/real/hdrplus_static \
        --methods align_mean,ame_kpn_real,lm1p:ame_kpn_real --out DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_score_check  # noqa: E402  (a script beside this one)

from burstkpn.bench import real as bench_real  # noqa: E402
from burstkpn.cli import main as cli_main  # noqa: E402
from burstkpn.data.io.images import linear_to_srgb, srgb_to_linear  # noqa: E402
from burstkpn.denoising import denoise_burst  # noqa: E402
from burstkpn.inference import runner_for, try_resolve  # noqa: E402
from burstkpn.ops.align import apply_shifts, estimate_shifts  # noqa: E402

BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
ROBUST_SCALE = 2.0  # robust weights: distances are measured in this many MAD scales


def blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial blur of ``(B, C, H, W)``, edges replicated."""
    c = x.shape[1]
    k = BINOMIAL.to(x)
    x = F.pad(x, (2, 2, 2, 2), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def down(x: torch.Tensor) -> torch.Tensor:
    """One pyramid level down (odd sizes padded by replication)."""
    h, w = x.shape[-2:]
    return blur(F.pad(x, (0, w % 2, 0, h % 2), mode="replicate"))[..., ::2, ::2]


def up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """One pyramid level up to ``size``: zeros inserted and blurred, normalised by the blurred
    sampling mask (a gain of 4 inside, exact at the edges too)."""
    b, c, h, w = x.shape
    z = x.new_zeros(b, c + 1, 2 * h, 2 * w)
    z[:, :c, ::2, ::2] = x
    z[:, c, ::2, ::2] = 1.0
    # zero padding here: replicated zeros and samples would weigh the edge samples twice
    k = BINOMIAL.to(x)
    z = F.conv2d(F.pad(z, (2, 2, 0, 0)), k.view(1, 1, 1, 5).expand(c + 1, 1, 1, 5), groups=c + 1)
    z = F.conv2d(F.pad(z, (0, 0, 2, 2)), k.view(1, 1, 5, 1).expand(c + 1, 1, 5, 1), groups=c + 1)
    return (z[:, :c] / z[:, c:])[..., : size[0], : size[1]]


def lowpass(x: torch.Tensor, levels: int) -> torch.Tensor:
    """``x`` taken ``levels`` pyramid levels down and back up: its low band."""
    sizes = []
    for _ in range(levels):
        sizes.append(tuple(x.shape[-2:]))
        x = down(x)
    for size in reversed(sizes):
        x = up(x, size)
    return x


def collapse(outputs: list[torch.Tensor]) -> torch.Tensor:
    """Fine-to-coarse outputs -> one image: every finer output keeps its detail band
    (``o - up(down(o))``) and takes its low band from the coarser result. If each coarser
    output is exactly ``down`` of the finer one, this returns the finest output."""
    fused = outputs[-1]
    for o in reversed(outputs[:-1]):
        size = tuple(o.shape[-2:])
        fused = o - up(down(o), size) + up(fused, size)
    return fused


def robust_mean(lows: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` low bands, reference first -> their mean, each neighbour's pixel
    weighted by its agreement with the reference, on a scale pooled over all neighbours (the
    MAD of the differences: robust to a minority of moved pixels or frames)."""
    ref = lows[:1]
    d = lows[1:] - ref
    mad = (d - d.median()).abs().median()
    scale = (ROBUST_SCALE * 1.4826 * mad).clamp_min(1e-8)
    w = torch.exp(-0.5 * (d**2).mean(1, keepdim=True) / scale**2)
    return (ref + (w * lows[1:]).sum(0, keepdim=True)) / (1 + w.sum(0, keepdim=True))


def coarse_scales(levels: int, ratio: float, model_name: str):
    """The ``pyr`` method: the model at ``levels`` scales, pyramid collapsed."""
    model, _ = try_resolve(model_name, "denoise")
    runner = runner_for(model)

    def run(case) -> torch.Tensor:
        linear = srgb_to_linear(case.frames.float())
        outputs = []
        for level in range(levels):
            noise = (
                case.noise.for_models()
                if level == 0
                else (case.noise.sigma_r * ratio ** (level / 2), case.noise.sigma_s * ratio**level)
            )
            srgb = linear_to_srgb(linear).clamp(0, 1)
            image = denoise_burst(srgb, runner, noise=noise).image.float()
            outputs.append(srgb_to_linear(image)[None])
            linear = down(linear)
        return linear_to_srgb(collapse(outputs)[0]).clamp(0, 1)

    return run


def low_band_merge(levels: int, robust: bool, model_name: str):
    """The ``lm`` method: the model's detail band, the frames' low band."""
    model, _ = try_resolve(model_name, "denoise")
    runner = runner_for(model)

    def run(case) -> torch.Tensor:
        frames = case.frames.float()
        out = denoise_burst(frames, runner, noise=case.noise.for_models()).image.float()
        out = srgb_to_linear(out)[None]
        linear = srgb_to_linear(frames)
        aligned = apply_shifts(linear.clone(), estimate_shifts(linear))
        lows = lowpass(aligned, levels)
        merged = robust_mean(lows) if robust else lows.mean(0, keepdim=True)
        return linear_to_srgb((out - lowpass(out, levels) + merged)[0]).clamp(0, 1)

    return run


_resolve = bench_real.resolve_real_method


def resolve(name: str):
    """``pyrLR:MODEL`` / ``lmL{r,p}:MODEL`` (module docstring), else ``bench real``'s names."""
    spec, _, model = name.partition(":")
    if model and spec.startswith("pyr"):
        return coarse_scales(int(spec[3]), int(spec[4:]) / 100, model), ""
    if model and spec.startswith("lm") and spec[3:] in ("r", "p"):
        return low_band_merge(int(spec[2]), spec[3] == "r", model), ""
    return _resolve(name)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("check", "real"):
        raise SystemExit("usage: lowfreq_variants.py {check,real} ARGS (see the docstring)")
    real_score_check.resolve_real_method = resolve
    bench_real.resolve_real_method = resolve
    if sys.argv[1] == "check":
        sys.argv = [sys.argv[0], *sys.argv[2:]]
        real_score_check.main()
    else:
        raise SystemExit(cli_main(["bench", "real", *sys.argv[2:]]))


if __name__ == "__main__":
    main()
