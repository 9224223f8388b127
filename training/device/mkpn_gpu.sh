#!/bin/bash
# The twenty-second session's GPU leg of mkpn's long run (training/README.md, "The long run
# (mkpn)"): on a lent machine with one NVIDIA H200 and 16 CPU cores, resume the packed run
# from step 8800, stop at 11300, switch on `prealign` (as the kpn and ame_kpn runs did at that
# step), resume to the run's planned end for Table 1, step 20000, or until LIMIT seconds of
# this script are nearly spent; then pack the last checkpoint into $OUT.
#
#   STATE=DIR_WITH_THE_PACKED_RUN DATA=DIR_WITH_URBAN100 OUT=DIR bash training/device/mkpn_gpu.sh 570
#
# The training photos are the same 70 Urban100 images (copied onto the machine: the lent
# machine reaches nothing outside it); 14 DataLoader worker processes synthesise the bursts
# (one item takes about 34 ms of one core). Everything else is the run's own config.yaml.
set -u
T0=$(date +%s); LIMIT=${1:-570}
R=/tmp/run/long_mkpn
rm -rf /tmp/run && mkdir -p /tmp/run && cp -r "$STATE" $R && gunzip $R/*.gz
sed -i "s#^data: .*#data: $DATA#; s#^workers: .*#workers: 14#" $R/config.yaml
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
step() {  # the step of the last checkpoint (its card's)
  python3 -c "import json,sys; from safetensors import safe_open
with safe_open(sys.argv[1], 'pt') as f: print(json.loads(f.metadata()['card'])['step'])" $R/last.safetensors
}
s=$(step); echo "start step $s, $(left) s left"
if [ "$s" -lt 11300 ]; then
  timeout -s TERM $(( $(left) - 35 )) burstkpn train --resume $R --precision fp32 \
    --quiet --stop-after $((11300 - s)) > "$OUT/train1.log" 2>&1
  s=$(step); echo "after phase 1: step $s, $(left) s left"
fi
if [ "$s" -ge 11300 ] && [ "$(left)" -gt 100 ]; then
  sed -i "s#^model_kwargs: .*#model_kwargs: {prealign: true}#" $R/config.yaml
  timeout -s TERM $(( $(left) - 35 )) burstkpn train --resume $R --precision fp32 \
    --quiet --stop-after $((20000 - s)) > "$OUT/train2.log" 2>&1
  s=$(step); echo "after phase 2: step $s, $(left) s left"
fi
# files of at most 16 MiB come back from the lent machine: the Adam + EMA state in parts
gzip -1 -c $R/last.safetensors > "$OUT/last.safetensors.gz"
gzip -1 -c $R/last.optim.safetensors | split -b 15M - "$OUT/optim.gz.part"
cp $R/metrics.jsonl $R/config.yaml "$OUT/"
echo "packed step $s at $(( $(date +%s) - T0 )) s"
