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
step "$BSP" compact m0.h5 --dtype int8 -o m0q.h5
step "$BSP" info --weighted m0q.h5
step "$BSP" bench m0q.h5 --reps 3
step "$BSP" init --arch resnet50 -o resnet50.h5
step "$BSP" info --weighted resnet50.h5
echo "demo finished: files in $(pwd)"
