#!/usr/bin/env bash
# bsp prune: wall time, CPU time and peak RSS (including reading and writing
# the model files) on ResNet-50 and VGG-16 for the patterns of issue 3, and
# the fraction of the weight L2 norm each pattern keeps at density 0.5 on the
# He-initialised ResNet-50. Medians of REPS runs; the load (uptime) is
# printed before and after, since the machine is shared.
# Usage: tests/bench/prune_bench.sh [BSP] [WORKDIR] [REPS] [MODELS]
set -eu
BSP=$(realpath "${1:-build/bsp}")
WORK=${2:-/tmp/bsp-prune-bench}
REPS=${3:-5}
MODELS=${4:-"resnet50 vgg16"}
mkdir -p "$WORK"
cd "$WORK"
echo "load before: $(uptime)"
for m in $MODELS; do
  [ -f "$m.h5" ] || "$BSP" init --arch "$m" -o "$m.h5"
done

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

printf '\n%-9s %-13s %9s %9s %9s %10s\n' model pattern "wall s" "cpu s" "read s" "peak MB"
for m in $MODELS; do
  # Reading alone (bsp info's table also reads every weight) as a reference.
  for _ in $(seq "$REPS"); do
    /usr/bin/time -f '%e' -o t.txt "$BSP" info "$m.h5" >/dev/null
    cat t.txt
  done | median >read.txt
  for spec in "block:8x8 0.5" "nm:2:8 0.25" "tw:128 0.5" "unstructured 0.5"; do
    set -- $spec
    : >runs.txt
    for _ in $(seq "$REPS"); do
      /usr/bin/time -f '%e %U %S %M' -o t.txt "$BSP" prune "$m.h5" -p "$1" -d "$2" -o out.h5 -q 2>/dev/null
      cat t.txt >>runs.txt
    done
    wall=$(awk '{print $1}' runs.txt | median)
    cpu=$(awk '{print $2 + $3}' runs.txt | median)
    rss=$(awk '{print $4 / 1024}' runs.txt | median)
    printf '%-9s %-13s %9.2f %9.2f %9.2f %10.0f\n' "$m" "$1" "$wall" "$cpu" "$(cat read.txt)" "$rss"
  done
done
rm -f out.h5 t.txt runs.txt read.txt

if [[ " $MODELS " == *" resnet50 "* ]]; then
  printf '\nresnet50 (He init, seed 0), density 0.5, every conv/dense but conv1:\n'
  printf '%-34s %9s %9s\n' pattern density "L2 kept"
  for spec in "block:8x8" "block:8x8 --scope global" "block:8x8 --criterion variance" "block:4x4" \
    "block:16x16" "nm:2:4" "tw:128" "tw:128 --scope layer" "tvw:128" "unstructured" \
    "unstructured --scope global" "channel"; do
    # shellcheck disable=SC2086
    "$BSP" prune resnet50.h5 -p $spec -d 0.5 -n --json 2>/dev/null |
      python3 -c 'import json, sys
d = json.load(sys.stdin)
print("%-34s %9.4f %9.4f" % (sys.argv[1], d["density"], d["l2_kept"]))' "$spec"
  done
fi
echo
echo "load after: $(uptime)"
