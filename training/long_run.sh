#!/bin/sh
# Issue 22 item 3: the long run of one burst model with the recipe chosen from the candidates
# (training/README.md, "Recipe candidates"), from a separate git worktree of a fixed commit.
#
#   sh training/long_run.sh NAME RUN [THREADS]
#
# NAME: ame_kpn, kpn or mkpn (config training/configs/long/NAME.yaml); RUN: the run folder.
# A new RUN starts from the config; an existing one resumes bit-exactly from its last
# checkpoint (last.safetensors + last.optim.safetensors), however often it was interrupted,
# in the precision this CPU runs fastest (below).
# Stop it any time (Ctrl-C, kill): at most ckpt_every steps are lost.
set -eu
NAME=$1
RUN=$2
THREADS=${3:-0}  # torch threads (0: every core); 1 beside other work on a pinned core
HERE=$(dirname "$0")
# a state committed to the repository is gzip-packed (training/README.md): unpack a copy of it
for f in "$RUN/last.safetensors.gz" "$RUN/last.optim.safetensors.gz"; do
    if [ -e "$f" ] && [ ! -e "${f%.gz}" ]; then gunzip -k "$f"; fi
done
if [ -e "$RUN/last.optim.safetensors" ]; then
    # bf16 where this CPU runs it natively, else fp32 (bf16 is 7-100x slower on AVX2-only
    # CPUs); the resolved name goes into the run's config.yaml. A run resumed on the machine
    # it ran on stays bit-exact; a change of precision is a change of numerics.
    PRECISION=$(python -c "from burstkpn.runtime import resolve_precision as r; print(r('auto'))")
    exec burstkpn train --resume "$RUN" --precision "$PRECISION" --threads "$THREADS" --quiet
fi
exec burstkpn train --config "$HERE/configs/long/$NAME.yaml" --out "$RUN" --threads "$THREADS" --quiet
