#!/bin/sh
# The acceptance runs of issue 6 (the AIE2 back end) that are too long for the
# test suite, reproducible:
#   1. bsp sim on ResNet-50 int8 (block:8x8 density 0.5, first conv dense,
#      `bsp compact --dtype int8`) at aie2:2x2 and aie2:4x4: schedule, codegen,
#      run the program on the simulated array and compare bit for bit with the
#      int8 reference forward;
#   2. bsp sim on fmnist-cnn and fmnist-resnet (block:8x8 density 0.5), int8
#      and fp32, on every mesh aie2:2x2 ... aie2:8x8;
#   3. bench_aie2_estimate: resnet50, inception_v3 and vgg16, dense and sparse,
#      on every target under both cost models (every cell must schedule), and
#      the time it takes.
# Usage: tests/bench/aie2_acceptance.sh [BUILD_DIR [OUT_DIR [THREADS]]]
# Writes OUT_DIR/summary.txt (one line per run: what, PASS/FAIL, wall seconds)
# and the JSON of every bsp sim beside it. Exit status 1 when anything failed.
set -u
BUILD=$(realpath "${1:-build}")
OUT=${2:-aie2-acceptance}
T=${3:-2}
BSP=$BUILD/bsp
mkdir -p "$OUT"
cd "$OUT" || exit 1
: >summary.txt
log() { echo "$*" | tee -a summary.txt; }
now() { date +%s.%N; }
failed=0
# The comparison figures of a bsp sim --json output (nothing for other runs).
diffs() { grep -o '"max_abs_diff": [^,]*\|"tolerance": [^,]*' "$1" 2>/dev/null | tr '\n' ' '; }
# run NAME CMD...: runs CMD, logs PASS/FAIL and the wall time.
run() {
  name=$1
  shift
  t0=$(now)
  if "$@" >"$name.out" 2>"$name.err"; then st=PASS; else st=FAIL; failed=1; fi
  t1=$(now)
  log "$(printf '%-40s %s %8.1f s  %s' "$name" "$st" "$(awk "BEGIN { print $t1 - $t0 }")" "$(diffs "$name.out")")"
  [ $st = PASS ] || sed 's/^/    /' "$name.err" | tail -3 | tee -a summary.txt
}
calib=""
[ -d /usr/share/datasets/fashion-mnist ] && calib="--calib fashion-mnist"
log "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; threads $T"
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. ResNet-50 int8 (random He-normal weights: the check is the program
#    against the reference, not accuracy).
[ -f r50.h5 ] || "$BSP" init --arch resnet50 -o r50.h5
[ -f r50p.h5 ] || "$BSP" prune r50.h5 --pattern block:8x8 --density 0.5 -o r50p.h5 >/dev/null
[ -f r50q.h5 ] || "$BSP" compact r50p.h5 --dtype int8 --threads "$T" -o r50q.h5 2>/dev/null
for t in 2x2 4x4; do
  run "resnet50-int8-$t-schedule" "$BSP" schedule r50q.h5 --target "aie2:$t" -o "r50q-$t-s.h5"
  run "resnet50-int8-$t-codegen" "$BSP" codegen "r50q-$t-s.h5" -o "r50q-$t-c.h5"
  run "resnet50-int8-$t-sim" "$BSP" sim "r50q-$t-c.h5" --json --threads "$T"
  rm -f "r50q-$t-s.h5"
done

# 2. The Fashion-MNIST networks, fp32 and int8, every mesh.
for arch in fmnist-cnn fmnist-resnet; do
  [ -f "$arch.h5" ] || "$BSP" init --arch "$arch" -o "$arch.h5"
  [ -f "$arch-p.h5" ] || "$BSP" prune "$arch.h5" --pattern block:8x8 --density 0.5 -o "$arch-p.h5" >/dev/null
  # shellcheck disable=SC2086
  [ -f "$arch-q.h5" ] || "$BSP" compact "$arch-p.h5" --dtype int8 $calib --threads "$T" -o "$arch-q.h5" 2>/dev/null
  for dt in fp32 int8; do
    in=$arch-p.h5
    [ $dt = int8 ] && in=$arch-q.h5
    for n in 2 3 4 5 6 7 8; do
      name=$arch-$dt-${n}x$n-sim
      t0=$(now)
      if "$BSP" schedule "$in" --target "aie2:${n}x$n" --dtype $dt -o s.h5 2>"$name.err" &&
        "$BSP" codegen s.h5 -o c.h5 2>>"$name.err" &&
        "$BSP" sim c.h5 --json --threads "$T" >"$name.out" 2>>"$name.err"; then st=PASS; else st=FAIL; failed=1; fi
      t1=$(now)
      log "$(printf '%-40s %s %8.1f s  %s' "$name (schedule+codegen+sim)" "$st" "$(awk "BEGIN { print $t1 - $t0 }")" "$(diffs "$name.out")")"
      [ $st = PASS ] || sed 's/^/    /' "$name.err" | tail -3 | tee -a summary.txt
    done
  done
done
rm -f s.h5 c.h5

# 3. Every net on every target.
run estimate-all-targets env OMP_NUM_THREADS="$T" "$BUILD/tests/bench/bench_aie2_estimate" --model both
sed 's/^/    /' estimate-all-targets.err | tee -a summary.txt
log "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $failed
