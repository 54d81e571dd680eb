#!/bin/sh
# Image folders against in-memory data (issue 28 item 1's acceptance):
# writes Fashion-MNIST as an image folder of PNGs (60,000 training images in
# train/LABEL/, the 10,000 test images in val/LABEL/, and lists/train.txt,
# lists/val.txt naming the same files in IDX order), then
#  1. decoding + augmentation throughput on one thread (images/s per core),
#     for these 28x28 PNGs and for synthetic 500x375 JPEGs to 224x224;
#  2. one fmnist-cnn epoch each, same initial model and seed:
#     a. IDX data, no augmentation (no decoding: the trainer alone);
#     b. the list files, no augmentation, --crop-fraction 1 (the evaluation
#        transform is the identity on 28x28 images) and the IDX run's
#        normalisation: the same numbers as (a) are expected, bit for bit;
#        its speed against (a) is what decoding on the side costs the trainer;
#     c. the class folders with torchvision's transforms (RandomResizedCrop +
#        flip; val: Resize 32 + CenterCrop 28);
#     with the seconds the trainer waited for decoded batches;
#  3. the speed of (a) against (b) on the first 15,000 images, alternated
#     REPS times (on a shared machine the load drifts between single runs).
# Usage: tests/bench/imgfolder_fmnist.sh [BUILD_DIR [OUT_DIR [THREADS [WORKERS [REPS]]]]]
set -e
BUILD=$(realpath "${1:-build}")
OUT=${2:-bench-imgfolder}
T=${3:-2}
W=${4:-1}
REPS=${5:-3}
BSP=$BUILD/bsp
mkdir -p "$OUT"
cd "$OUT"
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; trainer threads $T; decoding threads $W; load $(load)"
if [ ! -f fm/lists/val.txt ]; then
  s=$(date +%s.%N)
  "$BUILD/tests/make_images" fm --train 60000 --val 10000
  echo "wrote fm/: $(find fm -name '*.png' | wc -l) PNGs, $(du -sh fm | cut -f1), $(echo "$(date +%s.%N) - $s" | bc) s"
fi

echo "== 1. one thread, load $(load)"
"$BUILD/tests/bench/bench_imgfolder" fm 28 28 1 20000
"$BUILD/tests/bench/bench_imgfolder" --synthetic 300

echo "== 2. one fmnist-cnn epoch, batch 128, seed 1"
"$BSP" init --arch fmnist-cnn --seed 0 -o m0.h5
R="--epochs 1 --batch 128 --threads $T --seed 1 -q"
rm -f a.jsonl b.jsonl c.jsonl
echo "a. load $(load)"
"$BSP" finetune m0.h5 --data fashion-mnist --no-augment $R --log a.jsonl -o a.h5
# The IDX run's normalisation (norm_mean, norm_std of the input node), to 17 digits.
NORM=$(/usr/bin/python3 - a.h5 <<'PY'
import h5py, sys
f = h5py.File(sys.argv[1], "r")
found = {}
f.visititems(lambda n, o: found.update({k: v for k, v in o.attrs.items() if k in ("norm_mean", "norm_std")}))
print(",".join("%.17g" % x for x in found["norm_mean"]), ",".join("%.17g" % x for x in found["norm_std"]))
PY
)
MEAN=${NORM% *}
STD=${NORM#* }
echo "b. load $(load)"
"$BSP" finetune m0.h5 --data fm/lists --no-augment --crop-fraction 1 --mean "$MEAN" --std "$STD" --workers "$W" $R \
  --log b.jsonl -o b.h5
echo "c. load $(load)"
"$BSP" finetune m0.h5 --data fm --workers "$W" $R --log c.jsonl -o c.h5
echo "done, load $(load)"
python3 - a.jsonl b.jsonl c.jsonl <<'PY'
import json, sys
rows = [json.loads(open(p).read()) for p in sys.argv[1:]]
names = ["a. IDX, no augmentation", "b. list files, identity transforms", "c. folders, torchvision transforms"]
print("%-38s %9s %9s %9s %8s %10s %9s" % ("run", "loss", "train", "test", "s", "images/s", "waited s"))
for n, r in zip(names, rows):
    w = r.get("data_wait_s")
    print("%-38s %9.6f %8.4f%% %8.4f%% %8.1f %10.0f %9s" % (n, r["loss"], 100 * r["train_acc"], 100 * r["test_acc"],
          r["seconds"], r["images_per_s"], "-" if w is None else "%.2f" % w))
a, b = rows[0], rows[1]
same = all(a[k] == b[k] for k in ("loss", "train_acc", "test_loss", "test_acc"))
print("a and b: %s; b's speed is %.3f of a's" % ("identical loss and accuracies" if same else "DIFFER", b["images_per_s"] / a["images_per_s"]))
PY

echo "== 3. a against b, first 15000 images, alternated $REPS times (wall and CPU seconds of the whole command)"
rm -f sa.jsonl sb.jsonl sa.time sb.time
i=0
while [ $i -lt "$REPS" ]; do
  /usr/bin/time -a -o sa.time -f '%e %U %S' \
    "$BSP" finetune m0.h5 --data fashion-mnist --no-augment --limit 15000 $R --log sa.jsonl -o sa.h5
  /usr/bin/time -a -o sb.time -f '%e %U %S' \
    "$BSP" finetune m0.h5 --data fm/lists --no-augment --crop-fraction 1 --mean "$MEAN" --std "$STD" --workers "$W" \
    --limit 15000 $R --log sb.jsonl -o sb.h5
  i=$((i + 1))
done
echo "done, load $(load)"
python3 - sa.jsonl sb.jsonl sa.time sb.time <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
ta, tb = ([[float(v) for v in l.split()] for l in open(p) if l[0].isdigit()] for p in sys.argv[3:5])
for x, y, u, v in zip(a, b, ta, tb):
    print("a %5.0f images/s, %6.1f CPU s   b %5.0f images/s, %6.1f CPU s, waited %.3f s   b/a speed %.3f, CPU %.3f" % (
        x["images_per_s"], u[1] + u[2], y["images_per_s"], v[1] + v[2], y["data_wait_s"],
        y["images_per_s"] / x["images_per_s"], (v[1] + v[2]) / (u[1] + u[2])))
PY
