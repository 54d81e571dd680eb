#!/usr/bin/env bash
# Image-folder data sets (bsp finetune and bsp eval --data DIR): class
# folders and list files written from Fashion-MNIST (PNG and JPEG), one
# epoch and an evaluation, the exact equivalence with the IDX data when the
# transforms are the identity, unreadable images, and the layout errors.
source "$E2E_LIB"

ok "$MAKE_IMAGES" img --train 600 --val 200 --jpeg-every 5 || fail "make_images"
ok "$BSP" init --arch fmnist-cnn -o m0.h5

# One epoch with augmentation (RandomResizedCrop + flip), then eval on val/.
ok "$BSP" finetune m0.h5 --data img --epochs 1 --batch 50 --workers 2 --log l.jsonl -o m1.h5
out_has "^image folder 'img': 600 training and 200 val images in 10 classes, decoded by 2 threads$"
out_has '^epoch 1/1 .* test [0-9.]+% .* img/s  waited [0-9.]+ s for data$'
CHECKS=$((CHECKS + 1))
[ "$(json_get l.jsonl "d['data_wait_s'] >= 0")" = True ] || fail "log has no data_wait_s: $(cat l.jsonl)"
ok "$BSP" eval m1.h5 --data img --json
cp "$WORK/.out" e.json
CHECKS=$((CHECKS + 1))
[ "$(json_get e.json "d['n']")" = 200 ] || fail "eval n: $(cat e.json)"
# The class names went into the model: eval maps the folders by name.
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - m1.h5 <<'PY' || fail "class_names attribute"
import h5py, sys
f = h5py.File(sys.argv[1], "r")
found = []
f.visititems(lambda n, o: found.extend(v for k, v in o.attrs.items() if k == "class_names"))
names = found[0].decode() if isinstance(found[0], bytes) else found[0]
assert names.split("\n")[:-1] == [str(i) for i in range(10)], names
PY
# A list file alone is evaluated whole.
ok "$BSP" eval m1.h5 --data img/lists/val.txt --limit 30 --json
cp "$WORK/.out" v.json
CHECKS=$((CHECKS + 1))
[ "$(json_get v.json "d['n']")" = 30 ] || fail "list n: $(cat v.json)"

# The same images in IDX order, no augmentation, and an evaluation transform
# that is the identity on 28x28 images: the IDX run's numbers exactly.
ok "$MAKE_IMAGES" eq --train 256 --val 256 || fail "make_images eq"
common=(--epochs 1 --batch 64 --no-augment --threads 2 --seed 3)
ok "$BSP" finetune m0.h5 --data eq/lists --crop-fraction 1 "${common[@]}" --log a.jsonl -o a.h5
ok "$BSP" finetune m0.h5 --data fashion-mnist --limit 256 "${common[@]}" --log b.jsonl -o b.h5
CHECKS=$((CHECKS + 1))
python3 - a.jsonl b.jsonl <<'PY' || fail "folder and IDX runs differ: $(cat a.jsonl b.jsonl)"
import json, sys
a, b = (json.loads(open(p).read()) for p in sys.argv[1:])
for k in ("loss", "train_acc", "test_loss", "test_acc"):
    assert a[k] == b[k], (k, a[k], b[k])
PY

# Unreadable images: counted, one warning line, the run goes on.
printf 'not an image' >img/train/3/bad.png
head -c 100 img/train/4/00002.png >img/train/4/cut.png
CHECKS=$((CHECKS + 1))
"$BSP" finetune m1.h5 --data img --epochs 1 --batch 50 -q -o m2.h5 2>warn.txt || fail "finetune with unreadable images"
[ "$(wc -l <warn.txt)" = 1 ] && grep -Eq "^bsp finetune: warning: 2 images could not be read and were skipped \(the first: 'img/train/[34]/(bad|cut).png': .+\)$" warn.txt ||
  fail "warning: $(cat warn.txt)"
printf 'garbage' >img/val/0/bad.jpg
CHECKS=$((CHECKS + 1))
"$BSP" eval m1.h5 --data img --json >e2.json 2>warn.txt || fail "eval with an unreadable image"
grep -q "^bsp eval: warning: 1 image could not be read and was skipped (the first: 'img/val/0/bad.jpg': not a JPEG or PNG file)$" warn.txt ||
  fail "eval warning: $(cat warn.txt)"
[ "$(json_get e2.json "d['n']")" = 200 ] || fail "eval n with an unreadable image: $(cat e2.json)"

# Layout errors.
mkdir -p flat/train && cp img/val/1/*.png flat/train/
err 1 finetune "'flat/train' has no class folders" "$BSP" finetune m0.h5 --data flat --epochs 1 -o f.h5
no_file f.h5
mkdir -p other/train/a other/val/b && cp img/val/1/00005.png other/train/a/ && cp img/val/1/00005.png other/val/b/
err 1 finetune "the class folders of train/ and val/ differ .*'b' is only in val/" "$BSP" finetune m0.h5 --data other -o f.h5
no_file f.h5
mkdir -p two/val/a two/val/b && cp img/val/1/00005.png two/val/a/ && cp img/val/1/00005.png two/val/b/
err 1 eval "its 2 class folders are not the 10 classes model 'm1.h5' was trained on" "$BSP" eval m1.h5 --data two
mkdir -p both/train/a && : >both/train.txt
err 1 finetune "holds both list files .* and class folders" "$BSP" finetune m0.h5 --data both -o f.h5
err 1 eval "has no val images" "$BSP" eval m1.h5 --data flat
err 1 compact "data 'img' is an image folder: only bsp finetune and bsp eval read image folders" \
  "$BSP" compact m1.h5 --dtype int8 --calib img -o c.h5
err 2 finetune "--crop-fraction must be in \(0, 1\]" "$BSP" finetune m0.h5 --data img --crop-fraction 0 -o f.h5
err 2 eval "--mean has 2 values but the model takes 1 channels" "$BSP" eval m0.h5 --data img --mean 0.1,0.2 --std 1,1
err 2 eval "model 'm1.h5' already holds the input normalisation" "$BSP" eval m1.h5 --data img --mean 0.1 --std 1
no_file f.h5
no_temp_files .
finish
