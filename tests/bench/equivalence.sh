#!/bin/bash
# Runs one fixed pipeline with bsp binary BSP into OUT: every stage on the
# built-in networks, every pattern and dtype the stages take, the 108 AIE2
# estimate cells (3 nets x 9 targets x dense/sparse x 2 cost models, as
# JSON), bsp sim on int8 and fp32 programs. Run it with two builds into two
# directories, then compare them with `equivalence.sh --compare OUT1 OUT2`:
# a refactoring that changes nothing a user sees leaves every model file
# (but its producer line), every JSON (but timings) and every assembly
# listing identical.
#
# Usage: tests/bench/equivalence.sh BSP OUT [--quick]
#        tests/bench/equivalence.sh --compare OUT1 OUT2
# Needs h5diff (Debian package hdf5-tools) for --compare. --quick leaves out
# the three ImageNet networks' sim and bench (about 5 minutes less).
set -u

if [ "${1:-}" = --compare ]; then
  A=$2 B=$3
  status=0
  # Timings, rates and load averages are the only values allowed to differ.
  strip() {
    sed -E 's/"(images_per_s|seconds|load_before|load_after|[a-z_]*_ms|[a-z_]*_gflops)": [-0-9.e+]+/"\1": T/g' "$1" |
      if [[ $1 == *.bench.json ]]; then sed -E 's/"speedup": [-0-9.e+]+/"speedup": T/'; else cat; fi
  }
  for f in $(cd "$A" && ls); do
    case $f in
      *.h5)
        # Every dataset and attribute (/history holds the same relative paths in both runs).
        if ! out=$(h5diff -c "$A/$f" "$B/$f" 2>&1); then echo "DIFF $f"; echo "$out" | head -20; status=1; fi ;;
      *.json|*.txt|*.s|*.csv)
        if ! cmp -s <(strip "$A/$f") <(strip "$B/$f"); then
          echo "DIFF $f"; diff <(strip "$A/$f") <(strip "$B/$f") | head -10; status=1
        fi ;;
    esac
  done
  for f in $(cd "$B" && ls); do [ -e "$A/$f" ] || { echo "ONLY IN $B: $f"; status=1; }; done
  [ $status = 0 ] && echo "equivalent: $(ls "$A" | wc -l) outputs"
  exit $status
fi

BSP=$(realpath "$1")
OUT=$2
QUICK=${3:-}
mkdir -p "$OUT"
cd "$OUT" || exit 1
# r NAME CMD...: CMD's stdout into NAME, its exit status and stderr's last line into NAME.status.
r() {
  name=$1
  shift
  "$@" >"$name" 2>"$name.err"
  echo "exit $?" >"$name.status.txt"
  grep -v '^\r\|compact: \|epoch' "$name.err" | tail -2 >>"$name.status.txt"
  rm -f "$name.err"
}
calib="--calib fashion-mnist"

for a in fmnist-cnn fmnist-resnet; do
  "$BSP" init --arch $a --seed 3 -o $a.h5
  r $a.info.json "$BSP" info --json $a.h5
  r $a.ft.log.txt "$BSP" finetune $a.h5 --data fashion-mnist --epochs 1 --limit 1024 --threads 2 -q -o $a-t.h5
  for p in block:8x8 nm:2:4 tw:32 unstructured channel block:4x4; do
    tag=$(echo $p | tr ':' '_')
    r $a-$tag.prune.json "$BSP" prune $a-t.h5 --pattern $p --density 0.5 --json -o $a-$tag.h5
    r $a-$tag.eval.json "$BSP" eval $a-$tag.h5 --data fashion-mnist --limit 2000 --json
    r $a-$tag-f.info.json "$BSP" compact $a-$tag.h5 -o $a-$tag-f.h5
    r $a-$tag-f.eval.json "$BSP" eval $a-$tag-f.h5 --data fashion-mnist --limit 2000 --json
    r $a-$tag-b.info.json "$BSP" compact $a-$tag.h5 --dtype bf16 -o $a-$tag-b.h5
    r $a-$tag-b.eval.json "$BSP" eval $a-$tag-b.h5 --data fashion-mnist --limit 2000 --json
    r $a-$tag-q.info.json "$BSP" compact $a-$tag.h5 --dtype int8 $calib --calib-images 64 -o $a-$tag-q.h5
    r $a-$tag-q.eval.json "$BSP" eval $a-$tag-q.h5 --data fashion-mnist --limit 2000 --json
    r $a-$tag-q.bench.json "$BSP" bench $a-$tag-q.h5 --reps 1 --json
    r $a-$tag-f.bench.json "$BSP" bench $a-$tag-f.h5 --reps 1 --json
  done
  r $a-p2.ft.log.txt "$BSP" finetune $a-block_8x8.h5 --data fashion-mnist --epochs 1 --limit 1024 --threads 2 -q -o $a-p2.h5
  r $a-g.ft.log.txt "$BSP" finetune $a-t.h5 --data fashion-mnist --epochs 1 --limit 1024 --threads 2 -q --gradual \
    --pattern block:8x8 --to 0.5 --prune-every 2 -o $a-g.h5
  r $a-nm.ft.log.txt "$BSP" finetune $a-nm_2_4.h5 --data fashion-mnist --epochs 1 --limit 1024 --threads 2 -q --bdwp -o $a-bdwp.h5
  "$BSP" compact $a-block_8x8.h5 --dtype int8 --pow2 $calib --calib-images 64 -o $a-q2.h5 2>/dev/null
  for q in q q2; do
    for t in 2x2 4x4 npu1; do
      tt=aie2:$t
      [ $t = npu1 ] && tt=npu1
      in=$a-block_8x8-q.h5
      [ $q = q2 ] && in=$a-q2.h5
      r $a-$q-$t.sched.txt "$BSP" schedule $in --target $tt --table -o $a-$q-$t-s.h5
      r $a-$q-$t.cg.txt "$BSP" codegen $a-$q-$t-s.h5 -o $a-$q-$t-c.h5 --asm $a-$q-$t.s
      r $a-$q-$t.sim.json "$BSP" sim $a-$q-$t-c.h5 --images 2 --json
      r $a-$q-$t.est.json "$BSP" estimate $a-$q-$t-c.h5 --compare dense --json
      rm -f $a-$q-$t-c.h5
    done
  done
  for t in 2x2 4x4; do
    r $a-f-$t.sched.txt "$BSP" schedule $a-block_8x8.h5 --target aie2:$t --table -o $a-f-$t-s.h5
    r $a-f-$t.cg.txt "$BSP" codegen $a-f-$t-s.h5 -o $a-f-$t-c.h5 --asm $a-f-$t.s
    r $a-f-$t.sim.json "$BSP" sim $a-f-$t-c.h5 --images 2 --json
    rm -f $a-f-$t-c.h5
  done
done

for a in resnet50 inception_v3 vgg16; do
  "$BSP" init --arch $a -o $a.h5
  r $a.info.json "$BSP" info --json $a.h5
  r $a-p.prune.json "$BSP" prune $a.h5 --pattern block:8x8 --density 0.5 --json -o $a-p.h5
  "$BSP" compact $a-p.h5 --dtype int8 --calib-images 16 -o $a-q.h5 2>/dev/null
  r $a-q.info.json "$BSP" info --json $a-q.h5
  for t in aie2:2x2 aie2:3x3 aie2:4x4 aie2:5x5 aie2:6x6 aie2:7x7 aie2:8x8 npu1 ve2802; do
    for mdl in default paper; do
      r $a-$t-$mdl.est.json "$BSP" estimate $a-q.h5 --target $t --model $mdl --compare dense --json
    done
  done
  r $a-paperflow.est.json "$BSP" estimate $a-p.h5 --target aie2:4x4 --dtype bf16 --mapping paper --model paper --compare dense --json
  r $a-tune.est.json "$BSP" estimate $a-q.h5 --target aie2:4x4 --tune 4 --json
  if [ "$QUICK" != --quick ] && [ $a = resnet50 ]; then
    r $a-sched.txt "$BSP" schedule $a-q.h5 --target aie2:4x4 --table -o $a-s.h5
    r $a-cg.txt "$BSP" codegen $a-s.h5 -o $a-c.h5 --asm $a.s
    r $a-sim.json "$BSP" sim $a-c.h5 --json
    rm -f $a-c.h5 $a-s.h5
    r $a-q.bench.json "$BSP" bench $a-q.h5 --reps 1 --json
    "$BSP" compact $a-p.h5 -o $a-f.h5
    r $a-f.bench.json "$BSP" bench $a-f.h5 --reps 1 --json
    rm -f $a-f.h5
  fi
  rm -f $a.h5 $a-p.h5
done
echo "done: $(ls | wc -l) files in $(pwd)"
