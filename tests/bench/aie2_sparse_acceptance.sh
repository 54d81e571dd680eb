#!/bin/sh
# The acceptance runs of issue 27 (the AIE-ML sparse operand) that are too
# long for the test suite, reproducible:
#   1. bsp sim on ResNet-50 int8 pruned nm:2:4, block:8x8+nm:2:4 at 0.25,
#      tw:128+nm:2:4 at 0.25 and tvw:128 at 0.25 (first conv dense; tvw
#      layers use the operand where their weights keep it), at aie2:2x2 and aie2:4x4:
#      the program against the int8 reference, bit for bit;
#   2. bsp sim on fmnist-cnn and fmnist-resnet with the same patterns, int8,
#      on every mesh aie2:2x2 ... aie2:8x8;
#   3. ResNet-50 at aie2:4x4, int8, each pattern against dense under the
#      default and the paper cost model (bsp estimate --compare dense);
#   4. bench_aie2_estimate --patterns: resnet50, inception_v3 and vgg16,
#      dense, block:8x8 at 0.5, nm:2:4 and block:8x8+nm:2:4 at 0.25 on
#      aie2:2x2 ... aie2:8x8 under both cost models, and the time it takes.
# Usage: tests/bench/aie2_sparse_acceptance.sh [BUILD_DIR [OUT_DIR [THREADS]]]
# Writes OUT_DIR/summary.txt; exit status 1 when anything failed.
set -u
BUILD=$(realpath "${1:-build}")
OUT=${2:-aie2-sparse-acceptance}
T=${3:-2}
BSP=$BUILD/bsp
mkdir -p "$OUT"
cd "$OUT" || exit 1
: >summary.txt
log() { echo "$*" | tee -a summary.txt; }
now() { date +%s.%N; }
failed=0
PATTERNS="nm:2:4 block:8x8+nm:2:4@0.25 tw:128+nm:2:4@0.25 tvw:128@0.25"
# prune IN OUT P[@D]
prune() {
  p=${3%@*}
  if [ "$p" = "$3" ]; then "$BSP" prune "$1" -p "$p" -o "$2" -q; else "$BSP" prune "$1" -p "$p" -d "${3#*@}" -o "$2" -q; fi
}
# sim_run NAME MODEL TARGET: schedule, codegen and sim; logs PASS only when bit-exact.
sim_run() {
  t0=$(now)
  if "$BSP" schedule "$2" --target "$3" -o s.h5 2>"$1.err" && "$BSP" codegen s.h5 -o c.h5 2>>"$1.err" &&
    "$BSP" sim c.h5 --threads "$T" >"$1.out" 2>>"$1.err" && grep -q 'bit-exact' "$1.out"; then st=PASS; else st=FAIL; failed=1; fi
  t1=$(now)
  log "$(printf '%-52s %s %8.1f s' "$1" "$st" "$(awk "BEGIN { print $t1 - $t0 }")")"
  [ $st = PASS ] || tail -3 "$1.err" | sed 's/^/    /' | tee -a summary.txt
}
log "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; threads $T"
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

[ -f r50.h5 ] || "$BSP" init --arch resnet50 -o r50.h5
i=0
for pat in $PATTERNS; do
  i=$((i + 1))
  [ -f "r50-$i.h5" ] || prune r50.h5 "r50-$i.h5" "$pat" 2>/dev/null
  [ -f "r50-$i-q.h5" ] || "$BSP" compact "r50-$i.h5" --dtype int8 --threads "$T" -o "r50-$i-q.h5" 2>/dev/null
  for t in 2x2 4x4; do sim_run "resnet50-int8-$pat-$t" "r50-$i-q.h5" "aie2:$t"; done
  for m in default paper; do
    "$BSP" estimate "r50-$i.h5" --dtype int8 --target aie2:4x4 --model "$m" --compare dense --json >"est-$i-$m.json"
    log "$(printf 'resnet50 4x4 int8 %-24s %-8s ' "$pat" "$m")$(python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
print('dense %.3f ms, sparse %.3f ms, speedup %.2fx' % (d['dense_total_s'] * 1e3, d['total_s'] * 1e3, d['speedup']))
" "est-$i-$m.json" 2>&1)"
  done
done

for arch in fmnist-cnn fmnist-resnet; do
  [ -f "$arch.h5" ] || "$BSP" init --arch "$arch" -o "$arch.h5"
  i=0
  for pat in $PATTERNS; do
    i=$((i + 1))
    [ -f "$arch-$i.h5" ] || prune "$arch.h5" "$arch-$i.h5" "$pat" 2>/dev/null
    [ -f "$arch-$i-q.h5" ] || "$BSP" compact "$arch-$i.h5" --dtype int8 --threads "$T" -o "$arch-$i-q.h5" 2>/dev/null
    for n in 2 3 4 5 6 7 8; do sim_run "$arch-int8-$pat-${n}x$n" "$arch-$i-q.h5" "aie2:${n}x$n"; done
  done
done
rm -f s.h5 c.h5

t0=$(now)
if OMP_NUM_THREADS="$T" "$BUILD/tests/bench/bench_aie2_estimate" --model both \
  --targets aie2:2x2,aie2:3x3,aie2:4x4,aie2:5x5,aie2:6x6,aie2:7x7,aie2:8x8 \
  --patterns block:8x8@0.5,nm:2:4,block:8x8+nm:2:4@0.25 >table.csv 2>table.err; then st=PASS; else st=FAIL; failed=1; fi
t1=$(now)
log "$(printf '%-52s %s %8.1f s  (%s)' "estimate table" "$st" "$(awk "BEGIN { print $t1 - $t0 }")" "$(tail -2 table.err | tr '\n' ' ')")"
log "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $failed
