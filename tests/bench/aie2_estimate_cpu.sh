#!/bin/sh
# CPU seconds (user + sys) of `bsp estimate --compare dense` for resnet50,
# inception_v3 and vgg16 (block:8x8 density 0.5, int8) on every target
# (aie2:2x2 ... aie2:8x8, npu1, ve2802) under one cost model, for one or more
# bsp binaries, run one after the other per cell so that they see the same
# load: a paired comparison of two builds' planning cost.
# Usage: tests/bench/aie2_estimate_cpu.sh MODEL_DIR COST_MODEL BSP [BSP...]
#   MODEL_DIR holds NET-sparse.h5 (data/experiments makes them); COST_MODEL
#   is paper or default. Prints per binary the CPU seconds summed over the
#   27 cells (with reading the model files, the same for every binary).
set -eu
dir=$1 model=$2
shift 2
export OMP_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
for b in "$@"; do echo 0 >"$tmp/$i"; i=$((i + 1)); done
for net in resnet50 inception_v3 vgg16; do
  for t in aie2:2x2 aie2:3x3 aie2:4x4 aie2:5x5 aie2:6x6 aie2:7x7 aie2:8x8 npu1 ve2802; do
    i=0
    for b in "$@"; do
      s=$( { /usr/bin/time -f '%U %S' "$b" estimate "$dir/$net-sparse.h5" --target "$t" --dtype int8 \
             --model "$model" --compare dense >/dev/null; } 2>&1 | tail -1)
      awk -v s="$s" -v p="$(cat "$tmp/$i")" 'BEGIN { split(s, a, " "); print p + a[1] + a[2] }' >"$tmp/$i.n"
      mv "$tmp/$i.n" "$tmp/$i"
      i=$((i + 1))
    done
  done
done
i=0
for b in "$@"; do echo "$b: $(cat "$tmp/$i") s CPU ($model)"; i=$((i + 1)); done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
