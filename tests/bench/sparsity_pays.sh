#!/bin/sh
# The acceptance benchmark of issue 25 (sparsity that pays in every format on
# the CPU): whole ResNet-50 (He init, every conv but the first pruned), batch
# 1, against bsp's dense path of the same precision in the same run:
#   fp32: `bsp bench MODEL --baseline dense` (bsp's fp32 dense kernel on the
#         same model);
#   int8: `bsp bench MODEL --against r50_q.h5` (the unpruned model compacted
#         to int8, on the int8 dense kernel).
# Each row is the median over RUNS runs of the whole-model speedup (with its
# range), beside the median over the conv layers of the per-layer speedup.
# Usage: tests/bench/sparsity_pays.sh [BUILD_DIR [OUT_DIR [THREADS [REPS [RUNS [PATTERNS]]]]]]
# PATTERNS: space-separated "pattern,density,dtype[,scope]" cases (density
# "-" for N:M; scope: bsp prune --scope, else prune's default; default cases:
# the issue's table, tw in both scopes). Run it on a quiet machine: the
# summary records the load.
set -e
BUILD=$(realpath "${1:-build}")
OUT=${2:-bench-pays}
T=${3:-2}
REPS=${4:-20}
RUNS=${5:-5}
CASES=${6:-"block:8x8,0.5,int8 block:8x8,0.25,int8 nm:2:8,-,fp32 nm:2:4,-,fp32 nm:2:4,-,int8 nm:2:8,-,int8 tw:128,0.25,fp32 tw:128,0.25,int8 tw:128,0.25,fp32,layer tw:128,0.25,int8,layer block:8x8,0.5,fp32 block:8x8,0.25,fp32"}
BSP=$BUILD/bsp
HERE=$(dirname "$(realpath "$0")")
mkdir -p "$OUT"
cd "$OUT"
log() { echo "$*" | tee -a summary.txt; }
: >summary.txt
log "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; threads $T; reps $REPS; runs $RUNS"
log "bsp: $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo unknown)"
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -f r50.h5 ] || "$BSP" init --arch resnet50 -o r50.h5
[ -f r50_q.h5 ] || "$BSP" compact r50.h5 --dtype int8 -o r50_q.h5 2>/dev/null
: >rows.txt
for c in $CASES; do
  IFS=, read -r pattern density dtype scope <<EOF_CASE
$c
EOF_CASE
  scope=${scope:-default}
  tag=$(echo "$pattern-$density-$scope" | tr ':' '_')
  if [ ! -f "$tag.h5" ]; then
    set -- --pattern "$pattern"
    [ "$density" = - ] || set -- "$@" --density "$density"
    [ "$scope" = default ] || set -- "$@" --scope "$scope"
    "$BSP" prune r50.h5 "$@" -o "$tag.h5" >/dev/null
  fi
  if [ "$dtype" = int8 ]; then
    [ -f "${tag}_q.h5" ] || "$BSP" compact "$tag.h5" --dtype int8 -o "${tag}_q.h5" 2>/dev/null
    model=${tag}_q.h5
    set -- --against r50_q.h5
  else
    [ -f "${tag}_c.h5" ] || "$BSP" compact "$tag.h5" -o "${tag}_c.h5"
    model=${tag}_c.h5
    set -- --baseline dense
  fi
  for k in $(seq "$RUNS"); do
    "$BSP" bench "$model" "$@" --threads "$T" --reps "$REPS" --json >"${tag}_${dtype}_$k.json"
  done
  echo "$pattern $density $dtype $scope ${tag}_${dtype}" >>rows.txt
done
log "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

RUNS=$RUNS /usr/bin/python3 - <<'PY' | tee -a summary.txt
import json, os, statistics
med = statistics.median
runs = range(1, int(os.environ["RUNS"]) + 1)
print(f"{'model':<32} {'dense ms':>9} {'sparse ms':>9} {'speedup':>8} {'range':>11} {'layer med':>9}  kernels")
for line in open("rows.txt"):
    pattern, density, dtype, scope, stem = line.split()
    docs = [json.load(open(f"{stem}_{k}.json")) for k in runs]
    sp = [d["total"]["speedup"] for d in docs]
    per_layer = []
    for d in docs:
        v = [l["speedup"] for l in d["layers"] if l["op"] == "conv2d" and l["speedup"] is not None]
        per_layer.append(med(v))
    kernels = sorted({l["sparse_kernel"] for l in docs[0]["layers"] if l["op"] == "conv2d" and l["sparse_kernel"]})
    name = f"{dtype} {pattern}" + (f" {density}" if density != "-" else "") + (f" ({scope} scope)" if scope != "default" else "")
    print(f"{name:<32} {med(d['total']['dense_ms'] for d in docs):9.2f} {med(d['total']['sparse_ms'] for d in docs):9.2f}"
          f" {med(sp):7.2f}x {min(sp):5.2f}-{max(sp):4.2f}x {med(per_layer):8.2f}x  {','.join(kernels)}")
PY
