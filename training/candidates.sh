#!/bin/sh
# Issue 22 item 2: the recipe candidates at an equal wall-clock budget, one at a time with the
# whole machine, same seed, each scored with `burstkpn bench quality` at all four gains.
#
#   sh training/candidates.sh SELECTION_TESTSET MINUTES [a_round5 b_patch128 ...]
#
# Two chains may run side by side, each pinned to its own core with one thread
# (`taskset -c 0 sh training/candidates.sh ... a_round5 c_cosine`): the step budgets, not the
# wall time, make the comparison equal.
# Each candidate's step count is MINUTES of training at the images/s this CPU measured for its
# patch size on a quiet machine (IMAGES_PER_S_64 / IMAGES_PER_S_128, from
# benchmarks/train_speed.py), so that a candidate is not charged for other work the machine
# did beside it. Runs go to runs/cand_NAME (resumable: rerun the same command after an
# interruption); the EMA weights are exported to runs/cand_NAME/export/ and scored into
# runs/cand_NAME/bench/.
set -eu
TESTSET=$1
MINUTES=$2
shift 2
NAMES=${*:-a_round5 b_patch128 c_cosine d_wide_noise e_unit_kernels}
IPS64=${IMAGES_PER_S_64:?set IMAGES_PER_S_64 (benchmarks/train_speed.py)}
IPS128=${IMAGES_PER_S_128:?set IMAGES_PER_S_128 (benchmarks/train_speed.py)}
LIMIT=${LIMIT:-12}
HERE=$(dirname "$0")
for NAME in $NAMES; do
    CFG=$HERE/configs/candidates/$NAME.yaml
    RUN=runs/cand_$NAME
    PATCH=$(sed -n 's/^patch_size: *//p' "$CFG")
    BATCH=$(sed -n 's/^batch_size: *//p' "$CFG")
    if [ "$PATCH" -ge 128 ]; then IPS=$IPS128; else IPS=$IPS64; fi
    STEPS=$(awk "BEGIN { print int($MINUTES * 60 * $IPS / $BATCH) }")
    echo "== $NAME: $STEPS steps ($MINUTES min at $IPS images/s)"
    if [ -e "$RUN/last.optim.safetensors" ]; then
        burstkpn train --resume "$RUN" --steps "$STEPS" --quiet
    else
        burstkpn train --config "$CFG" --steps "$STEPS" --out "$RUN" --quiet
    fi
    burstkpn export-weights "$RUN" --name "cand_$NAME" --out-dir "$RUN/export" --quiet
    burstkpn bench quality --testset "$TESTSET" --methods "reference,$RUN/export/cand_$NAME.safetensors" \
        --limit "$LIMIT" --out "$RUN/bench" --force --quiet
done
