#!/bin/bash
# Resume a packed long run (training/runs/NAME: last*.safetensors.gz, config.yaml, metrics)
# on a machine with a CUDA GPU, as mkpn's run was finished in the twenty-second session:
# to step SWITCH without `prealign`, then with it (the long runs' recipe), to step END, or until
# LIMIT seconds of this script are nearly spent; the last checkpoint is packed into $OUT in
# files under 16 MiB (a lent machine's limit on what comes back).
#
#   STATE=training/runs/long_ame_kpn_color DATA=DIR_OF_URBAN100 OUT=DIR \
#     [END=20000] [SWITCH=11300] [WORKERS=14] bash training/device/resume_gpu.sh 570
#
# Back on the workstation: gunzip -c OUT/last.safetensors.gz > RUN/last.safetensors;
# cat OUT/optim.gz.part* | gunzip -c > RUN/last.optim.safetensors; OUT/metrics.jsonl and
# OUT/config.yaml replace the run's (set `data:` and `workers:` back in config.yaml).
set -u
T0=$(date +%s); LIMIT=${1:-570}
END=${END:-20000}; SWITCH=${SWITCH:-11300}; WORKERS=${WORKERS:-14}
R=/tmp/run/$(basename "$STATE")
rm -rf /tmp/run && mkdir -p /tmp/run && cp -r "$STATE" "$R" && gunzip "$R"/*.gz
sed -i "s#^data: .*#data: $DATA#; s#^workers: .*#workers: $WORKERS#" "$R/config.yaml"
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
step() {  # the step of the last checkpoint (its card's)
  python3 -c "import json,sys; from safetensors import safe_open
with safe_open(sys.argv[1], 'pt') as f: print(json.loads(f.metadata()['card'])['step'])" "$R/last.safetensors"
}
train() {  # train N: resume for N steps at most, stopped LIMIT - 35 s after the start
  timeout -s TERM $(( $(left) - 35 )) python3 -m burstkpn.cli train --resume "$R" \
    --precision fp32 --quiet --stop-after "$1" >> "$OUT/train.log" 2>&1
}
s=$(step); echo "start step $s, $(left) s left"
if [ "$s" -lt "$SWITCH" ]; then
  train $((SWITCH - s)); s=$(step); echo "step $s, $(left) s left"
fi
if [ "$s" -ge "$SWITCH" ] && [ "$s" -lt "$END" ] && [ "$(left)" -gt 100 ]; then
  grep -q "prealign: true" "$R/config.yaml" || python3 - "$R/config.yaml" <<'P'
import sys, yaml
path = sys.argv[1]
cfg = yaml.safe_load(open(path))
cfg["model_kwargs"] = {**(cfg.get("model_kwargs") or {}), "prealign": True}
open(path, "w").write(yaml.safe_dump(cfg, sort_keys=True))
P
  train $((END - s)); s=$(step); echo "step $s, $(left) s left"
fi
gzip -1 -c "$R/last.safetensors" > "$OUT/last.safetensors.gz"
gzip -1 -c "$R/last.optim.safetensors" | split -b 15M - "$OUT/optim.gz.part"
cp "$R/metrics.jsonl" "$R/config.yaml" "$OUT/"
echo "packed step $s at $(( $(date +%s) - T0 )) s"
