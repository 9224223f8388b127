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
python "$(dirname "$0")/config_tool.py" cooldown "$RUN" 3e-5 0.98
burstkpn train --resume "$RUN" --steps "$TOTAL" --quiet
