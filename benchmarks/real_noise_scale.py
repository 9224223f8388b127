"""The split-halves score of ``burstkpn bench real`` on a static burst when the burst models
get the measured noise level scaled (standard deviation x k): does a stronger noise map make
them denoise real frames better? (docs/benchmarks.md, "Measurements outside BENCHMARKS.md")

    python benchmarks/real_noise_scale.py ../shared/data/real/hdrplus_static --crop 768 \\
        --models ame_kpn ame_kpn_real --scales 1 1.5 2 3 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

from burstkpn.bench.real import burst_case, list_burst
from burstkpn.denoising import denoise_burst, load_frames
from burstkpn.inference import resolve_model, runner_for
from burstkpn.metrics import psnr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("burst")
    ap.add_argument("--crop", type=int, default=768, help="centred crop (0: whole frames)")
    ap.add_argument("--models", nargs="+", default=["ame_kpn", "ame_kpn_real"])
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0, 4.0])
    args = ap.parse_args()
    refs = list_burst(args.burst)
    frames, _ = load_frames(refs)
    case = burst_case(frames, Path(args.burst).name, refs=refs, crop=args.crop or None)

    def score(image) -> float:
        truth = case.truth[None].float()
        return float(psnr(image[None], truth, linear=False, border=case.border)[0])

    print(f"measured sigma_r {case.sigma_r:.5f}, sigma_s {case.sigma_s:.5f}")
    print(f"reference: {score(case.frames[0].float()):.2f} dB")
    for name in args.models:
        runner = runner_for(resolve_model(name))
        burst = case.frames.float()
        measured = denoise_burst(burst, runner, noise=case.noise.for_models()).image
        cells = [f"measured {score(measured):.2f}"]
        for k in args.scales:
            level = (case.sigma_r * k, case.sigma_s * k * k)  # std x k
            cells.append(f"x{k:g} {score(denoise_burst(burst, runner, noise=level).image):.2f}")
        print(f"{name}: " + ", ".join(cells) + " dB")


if __name__ == "__main__":
    main()
