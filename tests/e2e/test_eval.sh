#!/usr/bin/env bash
# bsp eval: the text and JSON reports, data without a split, failures.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-cnn -o m0.h5
"$MAKE_DATA_H5" d.h5 128 28 28 1 10 || fail "make_data_h5"
ok "$BSP" finetune m0.h5 --data d.h5 --epochs 2 --batch 32 -o m1.h5 -q

ok "$BSP" eval m1.h5 --data d.h5
out_has '^accuracy [01]\.[0-9]{4} \([0-9]+ of 32\)  loss [0-9.]+  [0-9]+ images/s  \[.+\]$'
ok "$BSP" eval m1.h5 --data d.h5 --json --batch 7 --threads 1
cp "$WORK/.out" e.json
CHECKS=$((CHECKS + 1))
python3 - e.json <<'PY' || fail "JSON: $(cat e.json)"
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d) >= {"accuracy", "loss", "images_per_s", "n"}, d
assert 0 <= d["accuracy"] <= 1 and d["n"] == 32 and d["images_per_s"] > 0 and d["loss"] > 0, d
assert abs(d["correct"] - d["accuracy"] * d["n"]) < 1e-6, d
PY
# The batch size does not change the numbers (the last batch is partial).
ok "$BSP" eval m1.h5 --data d.h5 --json
cp "$WORK/.out" e2.json
CHECKS=$((CHECKS + 1))
python3 -c "import json; a=json.load(open('e.json')); b=json.load(open('e2.json')); assert a['correct']==b['correct'] and abs(a['loss']-b['loss'])<1e-5, (a, b)" ||
  fail "batch size changed the result"

# A file without a split is evaluated whole; float32 images; stdin.
"$MAKE_DATA_H5" flat.h5 40 28 28 1 10 flat
ok "$BSP" eval m1.h5 --data flat.h5 --json
cp "$WORK/.out" f.json
CHECKS=$((CHECKS + 1))
[ "$(json_get f.json "d['n']")" = 40 ] || fail "flat file: $(cat f.json)"
"$MAKE_DATA_H5" fl.h5 40 28 28 1 10 float
ok "$BSP" eval - --data fl.h5 --limit 5 <m1.h5
out_has '\(([0-9]) of 5\)'

# Fashion-MNIST's test set (the Debian package).
ok "$BSP" eval m1.h5 --data fashion-mnist --limit 300 --json
cp "$WORK/.out" fm.json
CHECKS=$((CHECKS + 1))
[ "$(json_get fm.json "d['n']")" = 300 ] || fail "fashion-mnist: $(cat fm.json)"

# Failures.
# Every image's outputs, as .npy or HDF5; the same logits either way, and
# the same accuracy as the report (batches of any size).
ok "$BSP" eval m1.h5 --data d.h5 --batch 7 --logits lg.npy --json
cp "$WORK/.out" lg.json
ok "$BSP" eval m1.h5 --data d.h5 --logits lg.h5
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - <<'PY' || fail "--logits"
import json
import h5py, numpy as np
a = np.load('lg.npy')
b = h5py.File('lg.h5', 'r')['logits'][()]
labels = h5py.File('d.h5', 'r')['test/labels'][()]
assert a.shape == (len(labels), 10) and a.dtype == np.float32, (a.shape, a.dtype)
assert np.allclose(a, b, rtol=1e-5, atol=1e-6), np.abs(a - b).max()
d = json.load(open('lg.json'))
assert abs((a.argmax(1) == labels).mean() - d['accuracy']) < 1e-9, d['accuracy']
PY
# A model that ends with a softmax: the logits before it, from either engine
# (the trainer's forward and the kernels runner), fp32 and int8.
/usr/bin/python3 "$(dirname "$E2E_LIB")/make_onnx.py" vgg . || fail "make_onnx.py vgg"
ok "$BSP" import vgg.onnx --input-mean 0 --input-std 1 -o v.h5
ok "$BSP" compact v.h5 --dtype int8 --calib vgg-data.h5 -o vq.h5
BSP_EVAL_ENGINE=net ok "$BSP" eval v.h5 --data vgg-data.h5 --logits vn.npy
BSP_EVAL_ENGINE=runner ok "$BSP" eval v.h5 --data vgg-data.h5 --logits vr.npy
ok "$BSP" eval vq.h5 --data vgg-data.h5 --logits vq.npy
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - <<'PY' || fail "--logits of a model ending with a softmax"
import numpy as np
ref, n, r, q = np.load('vgg-logits.npy'), np.load('vn.npy'), np.load('vr.npy'), np.load('vq.npy')
scale = np.abs(ref).max()
assert np.abs(n - ref).max() < 1e-4 * scale, ('net', np.abs(n - ref).max())
assert np.abs(r - ref).max() < 1e-4 * scale, ('runner', np.abs(r - ref).max())
assert np.abs(q - ref).max() < 0.1 * scale, ('int8', np.abs(q - ref).max())
PY
err 1 eval "nodir/lg\.npy" "$BSP" eval m1.h5 --data d.h5 --logits nodir/lg.npy
no_file nodir/lg.npy
err 1 eval "cannot read data 'nope': no such file or directory" "$BSP" eval m1.h5 --data nope
"$MAKE_DATA_H5" d8.h5 32 8 8 3 10
err 1 eval "data 'd8.h5' does not fit model 'm1.h5': test images are 8x8x3 \(HxWxC\) but the model takes 28x28x1" \
  "$BSP" eval m1.h5 --data d8.h5
"$MAKE_DATA_H5" bad.h5 32 28 28 1 10 badlabel
err 1 eval "label 12 of test image 7 is out of range: model 'm1.h5' has 10 classes" "$BSP" eval m1.h5 --data bad.h5
"$MAKE_DATA_H5" tr.h5 32 28 28 1 10 split
err 2 eval "--data is required" "$BSP" eval m1.h5
err 2 eval "--batch must be at least 1" "$BSP" eval m1.h5 --data d.h5 --batch 0
err 1 eval "cannot read 'm9.h5'" "$BSP" eval m9.h5 --data d.h5

# Finite weights that overflow float32 in the forward pass: no loss is
# reported from it (a relu turns NaN into 0, and the logits looked like a
# uniform guess, loss ln 10), on either fp32 engine; int8 is checked by compact.
overflowing_model m1.h5 huge.h5
err 1 eval "the forward pass is not finite: node 'conv3\.conv' outputs nan or infinite values on images 0 to 31 \(the model overflows float32\)" \
  "$BSP" eval huge.h5 --data d.h5
BSP_EVAL_ENGINE=runner err 1 eval "the forward pass is not finite: node 'conv3\.(conv|bn|relu)' outputs nan or infinite values on images 0 to 31" \
  "$BSP" eval huge.h5 --data d.h5 --logits huge-lg.npy
no_file huge-lg.npy
"$MAKE_DATA_H5" dh.h5 32 28 28 1 10 huge
err 1 eval "cannot read 'dh.h5': dataset 'test/images': image [0-9]+ has pixel 1e\+30" "$BSP" eval m1.h5 --data dh.h5

# Memory held to a budget (issue 28): ResNet-50 on 24 images of 224x224
# with the default batch peaks under 2 GB (unbounded, the trainer's network
# would hold 24 x about 110 MB of layer outputs).
ok "$BSP" init --arch resnet50 -o r50.h5
"$MAKE_DATA_H5" r224.h5 24 224 224 3 1000 flat || fail "make_data_h5"
CHECKS=$((CHECKS + 1))
python3 - "$BSP" <<'PY' || fail "bsp eval resnet50: peak memory"
import resource, subprocess, sys
r = subprocess.run([sys.argv[1], "eval", "r50.h5", "--data", "r224.h5"], capture_output=True, text=True)
assert r.returncode == 0, r.stderr
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
assert peak < 2 * 1024**3, f"peak resident {peak / 2**30:.2f} GiB"
print(f"peak {peak / 2**30:.2f} GiB", file=sys.stderr)
PY
finish
