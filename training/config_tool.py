"""Edit the config of a run folder (or make one from shipped weights' card) for the round
scripts in this folder, instead of Python inlined in shell:

    python training/config_tool.py set RUN lr=3e-4 ema_decay=0.99 "exposure_range=[0.1, 1.0]"
    python training/config_tool.py cooldown RUN 3e-5 0.98
    python training/config_tool.py from-card NAME OUT.yaml steps=4900 lr=3e-4

``set`` overwrites keys of ``RUN/config.yaml`` (values parsed as YAML). ``cooldown`` sets the
base learning rate so that ``lr * lr_decay ** epoch`` equals the given rate at the run's current
epoch (read from ``last.optim.safetensors``), and the EMA decay. ``from-card`` writes the
training config stored in the card of shipped weights ``NAME``, with overrides, to a new file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from safetensors import safe_open

from burstkpn.models.factory import read_metadata, weights_dir


def overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"config_tool: expected KEY=VALUE, got '{pair}'")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key] = parsed
    return out


def write(path: Path, cfg: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(cfg, sort_keys=True))
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("set")
    p.add_argument("run", type=Path)
    p.add_argument("pairs", nargs="+")
    p = sub.add_parser("cooldown")
    p.add_argument("run", type=Path)
    p.add_argument("lr", type=float)
    p.add_argument("ema_decay", type=float)
    p = sub.add_parser("from-card")
    p.add_argument("name")
    p.add_argument("out", type=Path)
    p.add_argument("pairs", nargs="*")
    args = ap.parse_args()
    if args.command == "from-card":
        card = read_metadata(weights_dir() / f"{args.name}.safetensors")["card"]
        write(args.out, {**card["config"], **overrides(args.pairs)})
        return
    path = args.run / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    if args.command == "set":
        cfg.update(overrides(args.pairs))
    else:
        with safe_open(str(args.run / "last.optim.safetensors"), framework="pt") as f:
            step = int(f.metadata()["step"])
        epoch = step // cfg["epoch_steps"]
        cfg["lr"] = float(f"{args.lr / cfg['lr_decay'] ** epoch:.3g}")
        cfg["ema_decay"] = args.ema_decay
        print(f"{args.run}: step {step}, epoch {epoch}: lr {cfg['lr']:g} (effective {args.lr:g})")
    write(path, cfg)


if __name__ == "__main__":
    main()
