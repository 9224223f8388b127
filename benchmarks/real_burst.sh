#!/usr/bin/env bash
# Scores on real photos without clean ground truth (burstkpn bench real, issue 23 item 4),
# written to docs/real/<name>/ (results.json, report.md, crops*.png, real.html):
#
#   docs/real/hdrplus_static  the 7-frame HDR+ static burst, whole 1600x1200 frames: frames 0-3
#                             denoised, frames 4-6 aligned + averaged = pseudo ground truth
#   docs/real/polyu_pairs     the 3 PolyU noisy / mean pairs, whole images (the largest is
#                             2784x1856: BM3D alone takes tens of minutes there on one core)
#
# Default methods of `burstkpn bench real` (ame_kpn_real is skipped until its weights ship).
#   CROP=512 benchmarks/real_burst.sh   centred 512x512 crops instead (minutes, a check)
#   DATA=... OUT=... benchmarks/real_burst.sh
#
# BENCHMARKS.md takes both reports as sections: add to the write_benchmarks_md.py command
#   --extra 'docs/real/hdrplus_static=Real burst without ground truth (HDR+ static, split halves)'
#   --extra 'docs/real/polyu_pairs=Real noisy / mean pairs (PolyU), burst and single-image models'
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/real}
OUT=${OUT:-docs/real}
crop=()
if [ -n "${CROP:-}" ]; then crop=(--crop "$CROP"); fi

time burstkpn bench real "$DATA/hdrplus_static" "${crop[@]}" --out "$OUT/hdrplus_static" --force
time burstkpn bench real --pairs "$DATA/polyu" "${crop[@]}" --out "$OUT/polyu_pairs" --force
