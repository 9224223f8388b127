#!/bin/sh
# Round 3 of the shipped burst models (training/README.md): continue a round-2 run folder that
# holds its Adam and EMA state (last.optim.safetensors, step 2400) in a copy, with darker
# training bursts (exposure_range [0.1, 1]), weight averaging (ema_decay 0.99) and the round-2
# learning rate (3e-4 decayed per 1000-step epoch) to step 3300, then the cool-down of
# training/cooldown.sh (lr 3e-5, ema_decay 0.98) to step 3400.
#
#   sh training/round3.sh runs/kpn_cpu_r2 runs/kpn_cpu_r3
set -eu
SRC=$1
RUN=$2
[ -e "$RUN" ] && { echo "round3.sh: $RUN exists" >&2; exit 1; }
cp -r "$SRC" "$RUN"
python "$(dirname "$0")/config_tool.py" set "$RUN" lr=3e-4 ema_decay=0.99 "exposure_range=[0.1, 1.0]"
burstkpn train --resume "$RUN" --steps 3300 --quiet
sh "$(dirname "$0")/cooldown.sh" "$RUN" 3400
