#!/bin/sh
# The demo pipeline: every stage of bsp that exists so far, file to file.
# Usage: pipeline.sh BSP WORKDIR
set -e
BSP=$(realpath "${1:-build/bsp}")
mkdir -p "${2:-demo}"
cd "${2:-demo}"
step() {
  echo "+ $*"
  "$@"
}
step "$BSP" init --list
step "$BSP" init --arch fmnist-cnn --seed 1 -o m0.h5
step "$BSP" info m0.h5
# Train briefly on Fashion-MNIST (1 epoch on the first 6,400 images; the full
# recipe is 8 epochs: tests/bench/fmnist_pipeline.sh), prune, fine-tune with
# the masks held, evaluate on the test set.
step "$BSP" finetune m0.h5 --data fashion-mnist --epochs 1 --limit 6400 -o m1.h5
step "$BSP" eval m1.h5 --data fashion-mnist
step "$BSP" prune m1.h5 --pattern block:8x8 --density 0.5 -o m2.h5
step "$BSP" info --weighted m2.h5
step "$BSP" eval m2.h5 --data fashion-mnist
step "$BSP" finetune m2.h5 --data fashion-mnist --epochs 1 --limit 6400 -o m3.h5
step "$BSP" eval m3.h5 --data fashion-mnist --json
step "$BSP" compact m3.h5 -o m4.h5
step "$BSP" info --weighted m4.h5
step "$BSP" bench m4.h5 --reps 3
step "$BSP" compact m3.h5 --dtype int8 --calib fashion-mnist -o m4q.h5
step "$BSP" eval m4q.h5 --data fashion-mnist
step "$BSP" bench m4q.h5 --reps 3 --baseline dense
step "$BSP" schedule m4q.h5 --target aie2:4x4 -o m5.h5 --table
step "$BSP" codegen m5.h5 -o m6.h5 --asm m6.s
step "$BSP" sim m6.h5 --images 2
step "$BSP" estimate m6.h5 --compare dense
step "$BSP" estimate m4q.h5 --target npu1 --model paper --csv
step "$BSP" init --arch resnet50 -o resnet50.h5
step "$BSP" info --weighted resnet50.h5
# Compare patterns at density 0.5 (in memory: --dry-run), summary lines only.
for p in block:8x8 nm:2:4 tw:128 unstructured; do
  echo "+ $BSP prune resnet50.h5 --pattern $p --density 0.5 --dry-run | tail -n 1"
  "$BSP" prune resnet50.h5 --pattern "$p" --density 0.5 --dry-run | tail -n 1
done
step "$BSP" prune resnet50.h5 --pattern block:8x8 --density 0.5 -o resnet50p.h5
step "$BSP" estimate resnet50p.h5 --target aie2:4x4 --dtype int8 --model paper --compare dense
echo "demo finished: files in $(pwd)"
