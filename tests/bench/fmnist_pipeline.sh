#!/bin/sh
# The acceptance benchmark of issue 4 (bsp finetune / bsp eval), reproducible.
# For each architecture (fmnist-cnn, fmnist-resnet), in one run:
#   1. PyTorch 1.13 (Debian's python3-torch), 2 threads: the reference
#      pipeline ../shared/bench/torch_pipeline.py 8 3 (fmnist-cnn) or
#      tests/bench/torch_fmnist_resnet.py 8 3 (the same recipe on
#      fmnist-resnet): 8 dense epochs, prune 8x8 blocks to density 0.5 (first
#      conv dense), 3 fine-tuning epochs; its epoch times and accuracies.
#   2. bsp with the same recipe (SGD Nesterov, momentum 0.9 cycled by
#      onecycle as PyTorch's OneCycleLR does, weight decay 5e-4, onecycle peak
#      0.1, batch 128, no augmentation as in the PyTorch script): init,
#      finetune 8 epochs from scratch, eval; prune block:8x8 --density 0.5,
#      eval, finetune 3 epochs (peak 0.02), eval; prune nm:2:8 from the dense
#      model, finetune 3 epochs --bdwp, eval; the same with --bdwp-shared 8
#      (8 output channels share their N:M choice) and with --bdwp-shared 8
#      --bdwp-every 4.
# Writes OUT_DIR/summary.txt: accuracies, their differences to the dense
# model, median epoch times and the ratios the issue asks for, with the load
# average before and after each part (run it on a quiet machine).
# Usage: tests/bench/fmnist_pipeline.sh [BUILD_DIR [OUT_DIR [THREADS [ARCHS]]]]
#   ARCHS: "fmnist-cnn fmnist-resnet" (default); TORCH_PY: the python with
#   torch (default /usr/bin/python3); SKIP_TORCH=1 skips step 1.
set -e
BUILD=$(realpath "${1:-build}")
OUT=${2:-bench-fmnist}
T=${3:-2}
ARCHS=${4:-fmnist-cnn fmnist-resnet}
BSP=$BUILD/bsp
HERE=$(dirname "$(realpath "$0")")
REPO=$(realpath "$HERE/../..")
TORCH_PY=${TORCH_PY:-/usr/bin/python3}
TORCH_CNN=${TORCH_PIPELINE:-$REPO/../shared/bench/torch_pipeline.py}
mkdir -p "$OUT"
cd "$OUT"
log() { echo "$*" | tee -a summary.txt; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
: >summary.txt
log "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; bsp threads $T"
log "bsp: $("$BSP" --version); started $(date -u +%Y-%m-%dT%H:%M:%SZ)"

for A in $ARCHS; do
  log ""
  log "== $A"
  if [ -z "$SKIP_TORCH" ]; then
    case $A in
      fmnist-cnn) TS=$TORCH_CNN ;;
      fmnist-resnet) TS=$HERE/torch_fmnist_resnet.py ;;
    esac
    log "torch: load before $(load)"
    "$TORCH_PY" "$TS" 8 3 >"torch_$A.txt" 2>&1
    log "torch: load after  $(load)"
  fi
  R="--data fashion-mnist --batch 128 --threads $T --no-augment"
  log "bsp: load before $(load)"
  "$BSP" init --arch "$A" --seed 0 -o "${A}_0.h5"
  "$BSP" finetune "${A}_0.h5" $R --epochs 8 --lr 0.1 -o "${A}_dense.h5" --log "${A}_dense.csv" >"${A}_dense.txt"
  "$BSP" eval "${A}_dense.h5" --data fashion-mnist --threads "$T" --json >"${A}_dense.json"
  "$BSP" prune "${A}_dense.h5" --pattern block:8x8 --density 0.5 -o "${A}_block.h5" >/dev/null
  "$BSP" eval "${A}_block.h5" --data fashion-mnist --threads "$T" --json >"${A}_block0.json"
  "$BSP" finetune "${A}_block.h5" $R --epochs 3 --lr 0.02 -o "${A}_block_ft.h5" --log "${A}_block_ft.csv" >"${A}_block_ft.txt"
  "$BSP" eval "${A}_block_ft.h5" --data fashion-mnist --threads "$T" --json >"${A}_block_ft.json"
  "$BSP" prune "${A}_dense.h5" --pattern nm:2:8 -o "${A}_nm.h5" >/dev/null
  "$BSP" eval "${A}_nm.h5" --data fashion-mnist --threads "$T" --json >"${A}_nm0.json"
  "$BSP" finetune "${A}_nm.h5" $R --epochs 3 --lr 0.02 --bdwp -o "${A}_nm_ft.h5" --log "${A}_nm_ft.csv" >"${A}_nm_ft.txt"
  "$BSP" eval "${A}_nm_ft.h5" --data fashion-mnist --threads "$T" --json >"${A}_nm_ft.json"
  "$BSP" finetune "${A}_nm.h5" $R --epochs 3 --lr 0.02 --bdwp --bdwp-shared 8 -o "${A}_s8_ft.h5" \
    --log "${A}_s8_ft.csv" >"${A}_s8_ft.txt"
  "$BSP" eval "${A}_s8_ft.h5" --data fashion-mnist --threads "$T" --json >"${A}_s8_ft.json"
  "$BSP" finetune "${A}_nm.h5" $R --epochs 3 --lr 0.02 --bdwp --bdwp-shared 8 --bdwp-every 4 -o "${A}_s8e4_ft.h5" \
    --log "${A}_s8e4_ft.csv" >"${A}_s8e4_ft.txt"
  "$BSP" eval "${A}_s8e4_ft.h5" --data fashion-mnist --threads "$T" --json >"${A}_s8e4_ft.json"
  log "bsp: load after  $(load)"
  python3 - "$A" >>summary.txt <<'PY'
import csv, json, os, re, statistics, sys
a = sys.argv[1]
acc = lambda f: 100 * json.load(open(f))["accuracy"]
secs = lambda f: [float(r["seconds"]) for r in csv.DictReader(open(f))]
dense, block0, block, nm0, nm, s8, s8e4 = (acc(f"{a}_{k}.json") for k in ("dense", "block0", "block_ft", "nm0", "nm_ft",
                                                                        "s8_ft", "s8e4_ft"))
d_s, b_s, n_s, s_s, e_s = (statistics.median(secs(f"{a}_{k}.csv")) for k in ("dense", "block_ft", "nm_ft", "s8_ft",
                                                                             "s8e4_ft"))
ips = json.load(open(f"{a}_dense.json"))["images_per_s"]
print(f"bsp dense, 8 epochs:                  {dense:.2f}%  (target >= 93.5 for fmnist-cnn)")
print(f"bsp block:8x8 d0.5, before finetune:  {block0:.2f}%")
print(f"bsp block:8x8 d0.5, 3 epochs:         {block:.2f}%  ({block - dense:+.2f} points; target within 0.5)")
print(f"bsp nm:2:8, before finetune:          {nm0:.2f}%")
print(f"bsp nm:2:8 --bdwp, 3 epochs:          {nm:.2f}%  ({nm - dense:+.2f} points; target within 1)")
print(f"bsp nm:2:8 --bdwp-shared 8, 3 epochs: {s8:.2f}%  ({s8 - dense:+.2f} points)")
print(f"  the same with --bdwp-every 4:       {s8e4:.2f}%  ({s8e4 - dense:+.2f} points)")
print(f"bsp epoch (median): dense {d_s:.1f} s, block d0.5 {b_s:.1f} s (ratio {b_s / d_s:.2f}; target <= 0.75), "
      f"nm:2:8 bdwp {n_s:.1f} s ({n_s / d_s:.2f}), shared 8 {s_s:.1f} s ({s_s / d_s:.2f}), "
      f"shared 8 every 4 {e_s:.1f} s ({e_s / d_s:.2f}; target <= 0.65)")
print(f"bsp eval of the dense model: {ips:.0f} images/s")
t = f"torch_{a}.txt"
if os.path.exists(t):
    txt = open(t).read()
    ep = [float(x) for x in re.findall(r"train_s ([0-9.]+)", txt)]
    res = re.search(r"RESULT dense ([0-9.]+) pruned\+finetuned ([0-9.]+)", txt)
    pr = re.search(r"pruned \(no finetune\) acc ([0-9.]+)", txt)
    if len(ep) >= 8 and res:
        td = statistics.median(ep[:8])
        print(f"torch dense, 8 epochs: {res.group(1)}%; pruned {pr.group(1) if pr else '?'}% -> finetuned {res.group(2)}%")
        print(f"torch dense epoch (median): {td:.1f} s; bsp / torch = {d_s / td:.2f} (target <= 1, goal 0.7); "
              f"torch finetune epoch (median) {statistics.median(ep[8:]):.1f} s")
    else:
        print(f"torch: no result in {t}")
PY
  tail -n 9 summary.txt
done
log ""
log "finished $(date -u +%Y-%m-%dT%H:%M:%SZ); load $(load)"
