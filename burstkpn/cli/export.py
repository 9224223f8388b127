"""``burstkpn export-onnx`` and ``burstkpn export-weights``: a model to ONNX, a training run's
weights (with a card) into the package."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from burstkpn.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("export-onnx", help="export a burst model to ONNX (float32, any size)")
    p.add_argument("model", help="shipped model (kpn, mkpn, ame_kpn) or .safetensors checkpoint")
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 13..20 (default 17)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("export-weights", help="copy a run's weights + a card into the package")
    p.add_argument("run", help="run folder")
    p.add_argument("--name", required=True, help="weights name, e.g. ame_kpn")
    p.add_argument("--out-dir", help="default: burstkpn/weights/")
    p.add_argument("--testset", help="evaluate on this test set for the card")
    p.add_argument("--limit", type=int, help="only the first N images of the test set")
    p.add_argument(
        "--float32",
        action="store_true",
        help="store float32 weights (default: float16, rounded before the card's scores)",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_export_weights)


def cmd_export_weights(args: argparse.Namespace) -> int:
    from burstkpn.models.factory import weights_dir
    from burstkpn.train import export_weights

    card = export_weights(
        args.run,
        args.name,
        args.out_dir or weights_dir(),
        testset=args.testset,
        limit=args.limit,
        progress=not args.quiet,
        half=not args.float32,
    )
    print(
        json.dumps(
            {k: card[k] for k in ("name", "steps", "training_hours")}
            | {"evaluation": card.get("evaluation", {}).get("per_level", card.get("evaluation"))}
        )
    )
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from burstkpn.export import OPSETS, export_onnx, read_onnx_metadata, require
    from burstkpn.jobs import check_new_file

    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise InputError(f"output '{out}' must end in .onnx")
    if args.opset not in OPSETS:
        raise InputError(f"--opset must be {OPSETS.start}..{OPSETS.stop - 1}, got {args.opset}")
    check_new_file(out, args.force)
    require("onnx")
    require("onnxruntime")
    export_onnx(args.model, out, opset=args.opset, overwrite=args.force)
    meta = read_onnx_metadata(out)
    noise = "" if meta["blind"] == "true" else ", noise_map (B, C, H, W)"
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opset {args.opset}): "
        f"{meta['architecture']}, inputs burst (B, {meta['input_frames']}, C, H, W){noise}, "
        f"H and W multiples of {meta['multiple']}"
    )
    return 0
