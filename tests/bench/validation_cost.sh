#!/usr/bin/env bash
# The cost of validating what bsp reads (issue 24): `bsp info` wall time on
# ResNet-50 and VGG-16 (plain, and compacted to int8 when CALIB is given),
# this build against a build of BASE, the last commit before reading
# validated values (dafa80d^ by default), built from `git archive` in WORKDIR
# (kept there for the next run).
# The two binaries run alternately, REPS times each, so that both see the
# same machine; medians and their ratio are printed. Run on a quiet machine.
# Builds before 2026-12-07 link OpenBLAS, whose thread pool starts and spins
# at load in every command (about 50 ms on `info` on 2 cores); bsp now loads
# it only for bench's baseline. OPENBLAS_NUM_THREADS=1 (the default here)
# keeps that pool from starting in the base, so the ratio is the cost of
# validation alone. OMP_NUM_THREADS=1 shows it without the parallel read.
# Usage: tests/bench/validation_cost.sh [BSP] [WORKDIR] [REPS] [BASE]
set -eu
BSP=$(realpath "${1:-build/bsp}")
WORK=${2:-/tmp/bsp-validation-bench}
REPS=${3:-21}
BASE=${4:-dafa80d^}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$WORK"
BASE_DIR="$WORK/base-src"
if [ ! -x "$BASE_DIR/build/bsp" ]; then
  rm -rf "$BASE_DIR"
  mkdir -p "$BASE_DIR"
  git -C "$SRC" archive "$BASE" | tar -x -C "$BASE_DIR"
  git -C "$SRC" rev-parse --short "$BASE" >"$BASE_DIR/COMMIT"
  (cd "$BASE_DIR" && meson setup build --buildtype=release --wrap-mode=nofallback >/dev/null && ninja -C build bsp >/dev/null)
fi
BASE_BSP="$BASE_DIR/build/bsp"
cd "$WORK"
for m in resnet50 vgg16; do
  [ -f "$m.h5" ] || "$BSP" init --arch "$m" -o "$m.h5"
done
echo "this build: $(git -C "$SRC" rev-parse --short HEAD)  base: $(cat "$BASE_DIR/COMMIT")"
echo "load before: $(uptime)"
echo "OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset} OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS"

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
now() { date +%s%N; }

printf '\n%-10s %10s %10s %8s\n' model "base ms" "this ms" "ratio"
for m in resnet50 vgg16; do
  : >base.txt
  : >this.txt
  "$BSP" info "$m.h5" >/dev/null  # the file in the page cache
  for _ in $(seq "$REPS"); do
    t0=$(now); "$BASE_BSP" info "$m.h5" >/dev/null; t1=$(now)
    "$BSP" info "$m.h5" >/dev/null; t2=$(now)
    echo $(((t1 - t0) / 1000)) >>base.txt
    echo $(((t2 - t1) / 1000)) >>this.txt
  done
  b=$(median <base.txt)
  t=$(median <this.txt)
  awk -v m="$m" -v b="$b" -v t="$t" 'BEGIN {printf "%-10s %10.1f %10.1f %8.3f\n", m, b / 1000, t / 1000, t / b}'
done
echo "load after: $(uptime)"
