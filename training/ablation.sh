#!/usr/bin/env bash
# Train the six Table-2 configurations of ame_kpn (ame_kpn.md) under one equal budget
# (training/configs/ablation.yaml), resuming any that already started, then copy their weights
# to weights/ablation/ame_kpn_model{1..6}.safetensors for `burstkpn bench ablation`.
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
for i in 1 2 3 4 5 6; do
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
  cp "$run/last.safetensors" "weights/ablation/ame_kpn_model$i.safetensors"
done
