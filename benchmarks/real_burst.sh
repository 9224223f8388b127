#!/usr/bin/env bash
# Scores on real photos without clean ground truth (burstkpn bench real, issue 23 item 4),
# written to $OUT/<name>/ (results.json, report.md, crops*.png, real.html):
#
#   hdrplus_static  the 7-frame HDR+ static burst, whole 1600x1200 frames: frames 0-3 denoised,
#                   frames 4-6 aligned + averaged = the pseudo ground truth
#   polyu_pairs     the 3 PolyU noisy / mean pairs, centred 512x512 crops (PAIRS_CROP; whole
#                   images take tens of minutes of BM3D on the 2784x1856 one)
#
# Default methods of `burstkpn bench real` (ame_kpn_real is skipped where its weights are not
# shipped).
#   benchmarks/real_burst.sh                       OUT=reports/real
#   CROP=512 benchmarks/real_burst.sh              a centred crop of the burst too (a quick check)
#   DATA=... OUT=... PAIRS_CROP=0 benchmarks/real_burst.sh   (0: whole pairs)
#
# BENCHMARKS.md takes both reports as sections (write_benchmarks_md.py copies their records and
# crop grids to docs/benchmarks/<name>/):
#   --extra 'reports/real/hdrplus_static=Real burst without ground truth (HDR+ static, split halves)'
#   --extra 'reports/real/polyu_pairs=Real noisy / mean pairs (PolyU), burst and single-image models'
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/real}
OUT=${OUT:-reports/real}
PAIRS_CROP=${PAIRS_CROP:-512}
crop=()
if [ -n "${CROP:-}" ]; then crop=(--crop "$CROP"); fi
pairs_crop=()
if [ "$PAIRS_CROP" != 0 ]; then pairs_crop=(--crop "$PAIRS_CROP"); fi

time burstkpn bench real "$DATA/hdrplus_static" "${crop[@]}" --out "$OUT/hdrplus_static" --force
time burstkpn bench real --pairs "$DATA/polyu" "${pairs_crop[@]}" --out "$OUT/polyu_pairs" --force
