#!/bin/bash
# The CUDA inference path on a machine with a GPU (docs/speed/profile.md, "12 MP on an NVIDIA
# H200"): kpn, mkpn and ame_kpn on a 1024x768 colour burst with --device cuda and --device cpu
# (the two outputs compared), then the synthetic 12 MP colour burst twice on the GPU with
# --profile (written to $OUT/p12_1.json, $OUT/p12_2.json).
#   OUT=DIR bash benchmarks/gpu_check.sh        (from the repository root)
export PYTHONUNBUFFERED=1
export PYTHONPATH=${PYTHONPATH:-$PWD}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; lscpu | grep "Model name"; nproc
t=$(date +%s)
timeout 90 python3 benchmarks/big_burst.py /tmp/b12 --width 4000 --height 3000 --crop 1024x768 > /dev/null || echo "big_burst failed"
echo "burst made in $(( $(date +%s) - t )) s"
for m in kpn mkpn ame_kpn; do
  for d in cuda cpu; do
    timeout 60 python3 -m burstkpn.cli denoise /tmp/b12_1024x768 --model $m --device $d -o /tmp/$m.$d.png --force --quiet 2>&1 | tail -2
  done
  python3 - $m <<'P'
import sys, numpy as np, imageio.v3 as iio
from skimage.metrics import peak_signal_noise_ratio as psnr
m = sys.argv[1]
a = iio.imread(f"/tmp/{m}.cuda.png").astype(np.float64); b = iio.imread(f"/tmp/{m}.cpu.png").astype(np.float64)
d = np.abs(a - b)
print(f"{m}: cuda vs cpu PSNR {psnr(b, a, data_range=255):.2f} dB, max |diff| {d.max():.0f}/255, share differing {np.mean(d > 0):.4f}")
P
done
for i in 1 2; do
  timeout 100 python3 -m burstkpn.cli denoise /tmp/b12 --model ame_kpn --device cuda -o /tmp/b12_$i.png --force --profile $OUT/p12_$i.json --quiet 2>&1 | tail -2
done
echo "total $(( $(date +%s) - t )) s"
