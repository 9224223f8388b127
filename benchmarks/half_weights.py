"""Store checkpoints in float16 and measure what it costs (issue 24 item 9: the working tree
stays under 64 MiB, so that a lent GPU machine can take all of it).

    python benchmarks/half_weights.py burstkpn/weights/*.safetensors --json docs/half_weights.json

For each checkpoint: the float32 model and its float16-rounded copy denoise the same synthetic
bursts (embedded scikit-image photos, 128 px, AME-KPN Gains 1-4, fixed seeds, float32
compute); the largest output difference and the PSNR of both against the clean reference are
reported. With ``--write`` the file is replaced (atomically) by its float16 copy, its metadata
card gaining a ``storage`` entry with these measurements; a file stored in float16 already is
skipped (neither measured nor written). Models compute in float32 either way: ``load_model``
copies the half-precision tensors into float32 parameters.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from burstkpn.data import image_to_tensor, read_image, srgb_to_linear, synthesize_burst
from burstkpn.data.io.files import atomic_write_bytes
from burstkpn.inference import Runner
from burstkpn.metrics import psnr
from burstkpn.models import load_model
from burstkpn.models.traits import model_traits

IMAGES = ("astronaut", "chelsea", "coffee", "rocket")
GAINS = ("gain1", "gain2", "gain3", "gain4")


def bursts(frames: int, patch: int = 128):
    """(name, noisy, noise_map, clean) for every image x gain, the same for every model."""
    out = []
    for i, name in enumerate(IMAGES):
        image = srgb_to_linear(image_to_tensor(read_image(f"skimage:{name}")))
        for j, gain in enumerate(GAINS):
            g = torch.Generator().manual_seed(1000 * i + j)
            b = synthesize_burst(image, g, num_frames=frames, patch_size=patch, noise=gain)
            out.append((f"{name}/{gain}", b.noisy, b.noise_map, b.clean))
    return out


def half_state(path: Path) -> dict[str, torch.Tensor]:
    state = load_file(str(path))
    return {k: v.half() if v.dtype == torch.float32 else v for k, v in state.items()}


def measure(path: Path) -> dict:
    full = load_model(path)
    half = load_model(path)
    half.load_state_dict(half_state(path))  # float16 values in float32 parameters
    traits = model_traits(full)
    frames = max(traits.frames, 2) if traits.kind != "clip" else traits.frames
    if traits.kind == "burst":
        frames = max(frames, 8)
    a, b = Runner(full, precision="fp32"), Runner(half, precision="fp32")
    diff, d_psnr = 0.0, []
    for _, noisy, noise_map, clean in bursts(frames):
        x = a.frames_for(noisy)
        nm = None if traits.blind else noise_map
        ya, yb = a(x, nm), b(x, nm)
        diff = max(diff, (ya - yb).abs().max().item())
        d_psnr.append((psnr(yb.clamp(0, 1), clean) - psnr(ya.clamp(0, 1), clean)).abs().item())
    return {
        "dtype": "float16",
        "max_output_difference": float(f"{diff:.3g}"),
        "max_psnr_difference_db": float(f"{max(d_psnr):.3g}"),
        "measured_on": f"{len(IMAGES)} embedded photos x AME-KPN Gains 1-4, 128 px, float32",
        "command": f"python benchmarks/half_weights.py {path} --write",
    }


def stored_dtype(path: Path) -> torch.dtype:
    """The dtype of the file's floating tensors (integer buffers aside)."""
    floats = {v.dtype for v in load_file(str(path)).values() if v.is_floating_point()}
    return torch.float32 if torch.float32 in floats else next(iter(floats))


def write_half(path: Path, storage: dict) -> None:
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
    card = json.loads(metadata["card"])
    card["storage"] = storage
    metadata["card"] = json.dumps(card, sort_keys=True, default=str)
    atomic_write_bytes(path, save(half_state(path), metadata=metadata))
    side = path.with_suffix(".json")
    if side.is_file():  # the card beside a shipped file says the same
        atomic_write_bytes(side, (json.dumps(card, indent=1) + "\n").encode())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--write", action="store_true", help="replace each file by its float16 copy")
    p.add_argument("--json", type=Path, help="add the measurements to this JSON file")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    results = {}
    for path in args.checkpoints:
        if stored_dtype(path) != torch.float32:
            print(f"{path}: stored as {stored_dtype(path)} already, left alone")
            continue
        results[str(path)] = m = measure(path)
        print(
            f"{path}: max |out32 - out16| {m['max_output_difference']:.2e}, "
            f"max |dPSNR| {m['max_psnr_difference_db']:.2e} dB"
        )
        if args.write:
            write_half(path, m)
    if args.json:  # merged with the measurements of earlier calls
        if args.json.is_file():
            results = {**json.loads(args.json.read_text()), **results}
        atomic_write_bytes(args.json, (json.dumps(results, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
