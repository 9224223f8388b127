#!/usr/bin/env bash
# Train the six Table-2 configurations of ame_kpn ([AME-KPN]) under one equal budget
# (training/configs/ablation.yaml), resuming any that already started, then export their weights
# and cards to weights/ablation/ame_kpn_model{1..6}.{safetensors,json} for `burstkpn bench
# ablation`. Arguments pick the models (default: all six), so two cores can share them:
#   OMP_NUM_THREADS=1 taskset -c 0 bash training/ablation.sh 1 2 3 &
#   OMP_NUM_THREADS=1 taskset -c 1 bash training/ablation.sh 4 5 6
# A model whose weights exist and whose run folder is gone is skipped: delete its weights to
# train it again.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A SW=(
  [1]='{"channel_attention": false, "spatial_attention": false, "residual": false}'
  [2]='{"channel_attention": true, "spatial_attention": false, "residual": false}'
  [3]='{"channel_attention": false, "spatial_attention": true, "residual": false}'
  [4]='{"channel_attention": true, "spatial_attention": true, "residual": false}'
  [5]='{"channel_attention": false, "spatial_attention": false, "residual": true}'
  [6]='{"channel_attention": true, "spatial_attention": true, "residual": true}'
)
mkdir -p weights/ablation
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(1 2 3 4 5 6)
for i in "${models[@]}"; do
  run=runs/ablation_model$i
  if [ -f "weights/ablation/ame_kpn_model$i.safetensors" ] && [ ! -d "$run" ]; then
    continue  # trained earlier (its run folder is gone): keep it
  fi
  if [ -f "$run/last.safetensors" ]; then
    burstkpn train --resume "$run" --quiet
  else
    rm -rf "$run"  # started but killed before its first checkpoint
    burstkpn train --model ame_kpn --size cpu --model-kwargs "${SW[$i]}" \
      --config training/configs/ablation.yaml --out "$run" --quiet
  fi
  burstkpn export-weights "$run" --name "ame_kpn_model$i" --out-dir weights/ablation --quiet
done
