#!/bin/sh
# Round 4 of the shipped burst models (training/README.md): continue the shipped weights NAME
# (burstkpn/weights/NAME.safetensors, round 3: 3400 steps) with `burstkpn train --init`, which
# starts a new Adam state and counts the steps on from the weights' 3400. The run repeats the
# weights' own training config (their card) with the round-3 settings: lr 3e-4 decayed per
# 1000-step epoch (2.1e-4 at step 3400), weight averaging (ema_decay 0.99), darker bursts
# (exposure_range [0.1, 1]) to step TOTAL - 100, then the cool-down of training/cooldown.sh
# (lr 3e-5, ema_decay 0.98) to step TOTAL (default 5000). Run again on the same RUN after an
# interruption: it resumes (bit-exactly) from the run's last checkpoint.
#
#   sh training/round4.sh kpn runs/kpn_cpu_r4 [TOTAL]
set -eu
NAME=$1
RUN=$2
TOTAL=${3:-5000}
MAIN=$((TOTAL - 100))
if [ -e "$RUN/last.optim.safetensors" ]; then
    burstkpn train --resume "$RUN" --steps "$MAIN" --quiet
else
    mkdir -p "$RUN"
    python "$(dirname "$0")/config_tool.py" from-card "$NAME" "$RUN/init_config.yaml" \
        "steps=$MAIN" lr=3e-4 ema_decay=0.99 "exposure_range=[0.1, 1.0]"
    burstkpn train --config "$RUN/init_config.yaml" --init "$NAME" --out "$RUN" --quiet
fi
sh "$(dirname "$0")/cooldown.sh" "$RUN" "$TOTAL"
