#!/bin/sh
# Epoch times only (issue 4's speed figures), short enough for a quiet window:
# one dense training epoch and one fine-tuning epoch of 8x8-block density 0.5
# (masks held) in PyTorch 1.13 (the reference scripts run with 1 + 1 epochs)
# and in bsp, plus bsp nm:2:8 --bdwp epochs (per-channel masks, the paper's;
# --bdwp-shared 8; --bdwp-shared 8 --bdwp-every 4), alternating, REPS times each;
# medians. The accuracies come from the full recipe: tests/bench/fmnist_pipeline.sh.
# Usage: tests/bench/fmnist_epoch_times.sh [BUILD_DIR [OUT_DIR [THREADS [ARCHS [REPS]]]]]
#   TORCH_PY: the python with torch (default /usr/bin/python3, Debian's)
set -e
BUILD=$(realpath "${1:-build}")
OUT=${2:-bench-epochs}
T=${3:-2}
ARCHS=${4:-fmnist-cnn fmnist-resnet}
REPS=${5:-1}
BSP=$BUILD/bsp
HERE=$(dirname "$(realpath "$0")")
TORCH_PY=${TORCH_PY:-/usr/bin/python3}
TORCH_CNN=${TORCH_PIPELINE:-$(realpath "$HERE/../..")/../shared/bench/torch_pipeline.py}
mkdir -p "$OUT"
cd "$OUT"
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; threads $T; load $(load)"
R="--data fashion-mnist --batch 128 --threads $T --no-augment --epochs 1 -q"
for A in $ARCHS; do
  case $A in
    fmnist-cnn) TS=$TORCH_CNN ;;
    fmnist-resnet) TS=$HERE/torch_fmnist_resnet.py ;;
  esac
  "$BSP" init --arch "$A" --seed 0 -o "${A}_0.h5"
  "$BSP" prune "${A}_0.h5" --pattern block:8x8 --density 0.5 -o "${A}_b.h5" >/dev/null
  "$BSP" prune "${A}_0.h5" --pattern nm:2:8 -o "${A}_n.h5" >/dev/null
  : >"${A}_times.txt"
  for r in $(seq "$REPS"); do
    "$TORCH_PY" "$TS" 1 1 >"torch_$A.txt" 2>&1 || { echo "torch failed: see $OUT/torch_$A.txt" >&2; exit 1; }
    grep -o 'train_s [0-9.]*' "torch_$A.txt" | awk -v r="$r" '{print "torch", NR == 1 ? "dense" : "block", $2}' >>"${A}_times.txt"
    "$BSP" finetune "${A}_0.h5" $R --lr 0.1 -o d.h5 --log d.csv >/dev/null
    "$BSP" finetune "${A}_b.h5" $R --lr 0.02 -o b.h5 --log b.csv >/dev/null
    "$BSP" finetune "${A}_n.h5" $R --lr 0.02 --bdwp -o n.h5 --log n.csv >/dev/null
    "$BSP" finetune "${A}_n.h5" $R --lr 0.02 --bdwp --bdwp-shared 8 -o n.h5 --log s.csv >/dev/null
    "$BSP" finetune "${A}_n.h5" $R --lr 0.02 --bdwp --bdwp-shared 8 --bdwp-every 4 -o n.h5 --log e.csv >/dev/null
    tail -n 1 d.csv | awk -F, '{print "bsp dense", $8}' >>"${A}_times.txt"
    tail -n 1 b.csv | awk -F, '{print "bsp block", $8}' >>"${A}_times.txt"
    tail -n 1 n.csv | awk -F, '{print "bsp bdwp", $8}' >>"${A}_times.txt"
    tail -n 1 s.csv | awk -F, '{print "bsp bdwp8", $8}' >>"${A}_times.txt"
    tail -n 1 e.csv | awk -F, '{print "bsp bdwp8e4", $8}' >>"${A}_times.txt"
    rm -f d.csv b.csv n.csv s.csv e.csv
  done
  python3 - "$A" <<'PY'
import statistics, sys
a = sys.argv[1]
t = {}
for line in open(f"{a}_times.txt"):
    who, kind, s = line.split()
    t.setdefault((who, kind), []).append(float(s))
m = {k: statistics.median(v) for k, v in t.items()}
td, tb, bd, bb = m[("torch", "dense")], m[("torch", "block")], m[("bsp", "dense")], m[("bsp", "block")]
bn, bs, be = m[("bsp", "bdwp")], m[("bsp", "bdwp8")], m[("bsp", "bdwp8e4")]
print(f"{a}: epoch s (median of {len(t[('bsp', 'dense')])}): torch dense {td:.1f}, torch block-masked {tb:.1f}; "
      f"bsp dense {bd:.1f} ({bd / td:.2f}x torch; target <= 1, goal 0.7), "
      f"bsp block d0.5 {bb:.1f} ({bb / bd:.2f}x bsp dense; target <= 0.75), "
      f"bsp nm:2:8 --bdwp {bn:.1f} ({bn / bd:.2f}x bsp dense), --bdwp-shared 8 {bs:.1f} ({bs / bd:.2f}x), "
      f"--bdwp-shared 8 --bdwp-every 4 {be:.1f} ({be / bd:.2f}x; target <= 0.65)")
PY
done
echo "load after: $(load)"
