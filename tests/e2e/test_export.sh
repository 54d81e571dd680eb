#!/usr/bin/env bash
# bsp export: ONNX that onnx.checker accepts and ONNX Runtime runs to bsp's
# outputs (check_runtime.py, run_ort.js); the round trip back through bsp import
# restores the model (weights, masks, epsilons, normalisation, history).
source "$E2E_LIB"
E2E_DIR=$(dirname "$E2E_LIB")
"$MAKE_DATA_H5" d.h5 6 28 28 1 10 || fail "make_data_h5"
/usr/bin/python3 - <<'PY' || fail "float images"
import h5py, numpy as np
x = np.random.default_rng(3).standard_normal((5, 28, 28, 1)).astype(np.float32)
with h5py.File('x.h5', 'w') as f:
    f['images'] = x
    f['labels'] = np.zeros(5, np.int64)
PY

# A trained, pruned fmnist-resnet (batchnorms, residual adds, global pool) and
# fmnist-cnn (a flatten of a 7x7 map: Transpose + Flatten).
ok "$BSP" init --arch fmnist-resnet -o r.h5
ok "$BSP" finetune r.h5 --data d.h5 --epochs 1 --batch 3 -q -o rt.h5
ok "$BSP" prune rt.h5 --pattern block:8x8 --density 0.5 -q -o rp.h5
ok "$BSP" init --arch fmnist-cnn -o c.h5
ok "$BSP" finetune c.h5 --data d.h5 --epochs 1 --batch 3 -q -o ct.h5
ok "$BSP" prune ct.h5 --pattern unstructured --density 0.3 -q -o cp.h5
for m in rp cp; do
  ok "$BSP" export $m.h5 -o $m.onnx
  ok "$BSP" eval $m.h5 --data x.h5 --logits $m-bsp.npy
  CHECKS=$((CHECKS + 1))
  /usr/bin/python3 "$E2E_DIR/check_runtime.py" $m.onnx x.h5 $m-bsp.npy --norm-from $m.h5 >rt.out 2>&1 ||
    fail "$m: onnxruntime: $(cat rt.out)"
  # Back in: the same graph and parameters, masks included; the history says both steps.
  ok "$BSP" import $m.onnx -o $m-back.h5
  CHECKS=$((CHECKS + 1))
  h5diff -c $m.h5 $m-back.h5 /graph /graph >diff.out 2>&1 || fail "$m: the round trip changed the graph: $(head -5 diff.out)"
  ok "$BSP" info --json $m-back.h5
  CHECKS=$((CHECKS + 1))
  [ "$(json_get "$WORK/.out" 'd["history"][-2:][0].startswith("bsp export ") and d["history"][-1].startswith("bsp import ")')" = True ] ||
    fail "$m: history after the round trip: $(json_get "$WORK/.out" 'd["history"]')"
done
ok "$BSP" eval rp-back.h5 --data x.h5 --logits back.npy
CHECKS=$((CHECKS + 1))
cmp -s back.npy rp-bsp.npy || fail "the round trip changed eval's outputs"

# int8: the quantised program as QuantizeLinear/DequantizeLinear, which ONNX
# Runtime computes in float with its own rounding (check_runtime.py --int8:
# top-1 agreement and outputs within 5% of the largest).
ok "$BSP" compact rp.h5 --dtype int8 --calib d.h5 -o rq.h5
ok "$BSP" export rq.h5 --dtype int8 -o rq.onnx
ok "$BSP" eval rq.h5 --data x.h5 --logits rq-bsp.npy
CHECKS=$((CHECKS + 1))
/usr/bin/python3 "$E2E_DIR/check_runtime.py" rq.onnx x.h5 rq-bsp.npy --norm-from rq.h5 --int8 >rt.out 2>&1 ||
  fail "int8: onnxruntime: $(cat rt.out)"
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - <<'PY' || fail "int8: the QDQ graph"
import onnx
g = onnx.load('rq.onnx').graph
ops = [n.op_type for n in g.node]
assert 'BatchNormalization' not in ops, 'batchnorms are folded'
init = {t.name: t for t in g.initializer}
w = [t for t in g.initializer if t.name.endswith('.weight_q')]
assert w and all(t.data_type == onnx.TensorProto.INT8 for t in w), 'int8 weights'
b = [t for t in g.initializer if t.name.endswith('.bias_q')]
assert b and all(t.data_type == onnx.TensorProto.INT32 for t in b), 'int32 biases'
assert ops.count('QuantizeLinear') >= len(w), ops
PY
err 1 export "cannot export 'rp\.h5' as int8: it has no int8 program" "$BSP" export rp.h5 --dtype int8 -o x.onnx
err 2 export "--dtype: int4 not in" "$BSP" export rp.h5 --dtype int4 -o x.onnx
err 1 import "unsupported operator 'QuantizeLinear'" "$BSP" import rq.onnx -o y.h5
no_file y.h5

# Imported networks go out again and still compute the ONNX model's function.
for k in resnet vgg inception mobile se; do
  /usr/bin/python3 "$E2E_DIR/make_onnx.py" $k . || fail "make_onnx.py $k"
  ok "$BSP" import $k.onnx --input-mean 0 --input-std 1 -o $k.h5
  ok "$BSP" export $k.h5 -o $k-out.onnx
  CHECKS=$((CHECKS + 1))
  soft=""
  [ $k = vgg ] && soft=--softmax  # it ends with a softmax; make_onnx.py gives the logits before it
  /usr/bin/python3 "$E2E_DIR/check_runtime.py" $k-out.onnx $k-data.h5 $k-logits.npy $soft >rt.out 2>&1 ||
    fail "$k: onnxruntime on the exported model: $(cat rt.out)"
  # and in int8 (clip, depthwise convs, concat, average pools, softmax, lookup tables, mul)
  ok "$BSP" compact $k.h5 --dtype int8 --calib $k-data.h5 -o $k-q.h5
  ok "$BSP" export $k-q.h5 --dtype int8 -o $k-q.onnx
  ok "$BSP" eval $k-q.h5 --data $k-data.h5 --logits $k-q.npy
  CHECKS=$((CHECKS + 1))
  /usr/bin/python3 "$E2E_DIR/check_runtime.py" $k-q.onnx $k-data.h5 $k-q.npy $soft --int8 >rt.out 2>&1 ||
    fail "$k: onnxruntime on the int8 export: $(cat rt.out)"
done

# Failures: one line, exit code, nothing written.
err 2 export "no output file" "$BSP" export rp.h5
err 1 export "cannot read 'missing\.h5'" "$BSP" export missing.h5 -o x.onnx
err 1 export "nodir/x\.onnx" "$BSP" export rp.h5 -o nodir/x.onnx
err 2 export "model is required" "$BSP" export
no_file x.onnx
no_temp_files .

finish
