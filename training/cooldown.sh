#!/bin/sh
# Cool-down phase of the shipped round-2 runs (training/README.md): continue a run folder that
# holds its Adam state (last.optim.safetensors) from its current step to TOTAL steps at an
# effective learning rate of 3e-5 (the round-2 schedule was at 2.4e-4) while averaging the
# weights (ema_decay 0.98); export-weights then ships the average. The run's config.yaml is
# edited in place: the base lr is set so that lr * lr_decay^epoch = 3e-5 at the current epoch.
#
#   sh training/cooldown.sh runs/kpn_cpu_r2 2400
set -eu
RUN=$1
TOTAL=$2
python - "$RUN" <<'PY'
import sys
from pathlib import Path

import yaml
from safetensors import safe_open

run = Path(sys.argv[1])
cfg = yaml.safe_load((run / "config.yaml").read_text())
with safe_open(str(run / "last.optim.safetensors"), framework="pt") as f:
    step = int(f.metadata()["step"])
epoch = step // cfg["epoch_steps"]
cfg["lr"] = float(f"{3e-5 / cfg['lr_decay'] ** epoch:.3g}")
cfg["ema_decay"] = 0.98
(run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=True))
print(f"{run}: step {step}, epoch {epoch}: lr {cfg['lr']:g} (effective 3e-5), ema_decay 0.98")
PY
burstkpn train --resume "$RUN" --steps "$TOTAL" --quiet
