#!/bin/sh
# Issue 22 item 3: the long run of one burst model with the recipe chosen from the candidates
# (training/README.md, "Recipe candidates"), from a separate git worktree of a fixed commit.
#
#   sh training/long_run.sh NAME RUN [THREADS]
#
# NAME: ame_kpn, kpn or mkpn (config training/configs/long/NAME.yaml); RUN: the run folder.
# A new RUN starts from the config; an existing one resumes bit-exactly from its last
# checkpoint (last.safetensors + last.optim.safetensors), however often it was interrupted.
# Stop it any time (Ctrl-C, kill): at most ckpt_every steps are lost.
set -eu
NAME=$1
RUN=$2
HERE=$(dirname "$0")
if [ -e "$RUN/last.optim.safetensors" ]; then
    exec burstkpn train --resume "$RUN" --quiet
fi
exec burstkpn train --config "$HERE/configs/long/$NAME.yaml" --out "$RUN" --quiet
