#!/usr/bin/env bash
# bsp import: ONNX models written as torch.onnx.export writes them, their
# outputs against a numpy evaluation of the ONNX operators (make_onnx.py,
# independent of bsp), names, history, and the failures.
source "$E2E_LIB"
MAKE_ONNX=$(dirname "$E2E_LIB")/make_onnx.py
for k in resnet vgg inception mobile se bad-op dynamic external opset two-outputs; do
  /usr/bin/python3 "$MAKE_ONNX" $k . || fail "make_onnx.py $k"
done

# Each network imported computes what the ONNX model computes (every stage
# after takes it as it takes a zoo model).
for k in resnet vgg inception mobile se; do
  ok "$BSP" import $k.onnx --input-mean 0 --input-std 1 -o $k.h5
  ok "$BSP" eval $k.h5 --data $k-data.h5 --logits $k-out.npy
  CHECKS=$((CHECKS + 1))
  /usr/bin/python3 - $k <<'PY' || fail "$k: bsp's outputs differ from the ONNX model's"
import sys
import numpy as np
k = sys.argv[1]
a, b = np.load(k + '-out.npy'), np.load(k + '-logits.npy')
assert a.shape == b.shape, (a.shape, b.shape)
err = np.abs(a - b).max() / np.abs(b).max()
assert err < 1e-5, err
PY
done

# Names from torch's scopes, the flatten of a 6x6 map, the history.
ok "$BSP" info --json resnet.h5
CHECKS=$((CHECKS + 1))
python3 - "$WORK/.out" <<'PY' || fail "resnet: names, ops or history"
import json, sys
d = json.load(open(sys.argv[1]))
names = [l["name"] for l in d["layers"]]
assert names == ["input", "conv1", "bn1", "relu", "maxpool", "layer1.0.conv1", "layer1.0.relu", "layer1.0.conv2",
                 "layer1.0", "layer1.0.relu_1", "avgpool", "fc"], names
ops = [l["op"] for l in d["layers"]]
assert ops[2] == "batchnorm" and ops[4] == "maxpool" and ops[-1] == "dense", ops
assert d["history"][0] == "onnx 'resnet.onnx': producer make_onnx.py 1, opset 13", d["history"]
assert d["history"][1].startswith("bsp import resnet.onnx"), d["history"]
assert d["arch"] == "test-resnet"
PY
ok "$BSP" info vgg.h5
out_has '^reshape +flatten +\[216\]'
out_has '^classifier\.3 +dense +\[10\]'
ok "$BSP" info mobile.h5
out_has '^features\.1\.conv\.0 +conv2d +\[12, 12, 8\]'
out_has '^features\.1\.conv\.1 +clip'
# Its depthwise conv stays dense unless asked for.
ok "$BSP" prune mobile.h5 --pattern block:8x8 --density 0.5 -n
out_has '^features\.1\.conv\.2 +conv2d'
grep -Eq '^features\.1\.conv\.0 ' "$WORK/.out" && fail "prune touched the depthwise conv by default"
ok "$BSP" prune mobile.h5 --pattern block:8x8 --density 0.5 --include-depthwise -n
out_has '^features\.1\.conv\.0 +conv2d +block:8x8'
err 2 prune 'selects only depthwise convs, which stay dense without --include-depthwise' \
  "$BSP" prune mobile.h5 --pattern block:8x8 --density 0.5 --layers '^features\.1\.conv\.0$' -n

# se: HardSigmoid + Mul of its own input is a hardswish, the squeeze-excitation's
# global pool a whole-map avgpool, its scale the mul's second input; a SiLU is
# sigmoid + mul. The trainer takes them, and so does AIE2: lookup-table and
# mul eltwise stages (the scale broadcast to every core), bit-exact in int8.
ok "$BSP" info se.h5
out_has '^features\.0\.2 +hardswish +\[6, 6, 8\]'
grep -Eq 'hardsigmoid.*\[6, 6, 8\]' "$WORK/.out" && fail "se: the hardswish's hardsigmoid stayed"
out_has '^features\.1\.block\.1\.avgpool +avgpool +\[1, 1, 8\]'
out_has '^features\.1\.block\.1\.scale_activation +hardsigmoid +\[1, 1, 8\]'
out_has '^features\.1\.block\.1 +mul +\[6, 6, 8\]'
out_has '^features\.2\.1 +sigmoid'
out_has '^features\.2\.1_2 +mul'
ok "$BSP" finetune se.h5 --data se-data.h5 --epochs 1 --batch 3 --no-augment -q -o se-ft.h5
ok "$BSP" compact se.h5 --dtype int8 --calib se-data.h5 -o se-q.h5
ok "$BSP" schedule se-q.h5 --target aie2:2x2 -o se-s.h5
ok "$BSP" codegen se-s.h5 -o se-c.h5 --asm se.asm
grep -Eq 'kernel .* eltwise .* hardswish' se.asm || fail "se: no hardswish kernel in the program"
grep -Eq 'kernel .* eltwise .* mul bcast' se.asm || fail "se: no broadcasting mul kernel in the program"
ok "$BSP" sim se-c.h5
out_has 'bit-exact with the int8 reference'
ok "$BSP" schedule se.h5 --target aie2:2x2 -o se-fs.h5
ok "$BSP" codegen se-fs.h5 -o se-fc.h5
ok "$BSP" sim se-fc.h5
out_has '^output: .*: match$'

# The stages after it: prune, finetune a step, compact to int8, schedule and simulate.
ok "$BSP" prune resnet.h5 --pattern block:8x8 --density 0.5 --include-first -q -o rp.h5
ok "$BSP" compact rp.h5 --dtype int8 -o rq.h5
ok "$BSP" schedule rq.h5 --target aie2:2x2 -o rs.h5
ok "$BSP" codegen rs.h5 -o rc.h5
ok "$BSP" sim rc.h5
out_has 'bit-exact with the int8 reference'

# Dynamic dimensions need --input-shape; the normalisation is the model's.
ok "$BSP" import dynamic.onnx --input-shape 12x12x3 --input-mean 0.5 --input-std 0.25,0.5,1 -o dyn.h5
ok "$BSP" info --json dyn.h5
CHECKS=$((CHECKS + 1))
[ "$(json_get "$WORK/.out" 'd["input_shape"]')" = "[12, 12, 3]" ] || fail "dynamic: input shape $(json_get "$WORK/.out" 'd["input_shape"]')"

# Failures: one line, exit code, nothing written.
err 1 import "cannot import 'bad-op\.onnx': unsupported operator 'Erf' at node '/features/features\.1/Erf' \(supported: Add, AveragePool,.* HardSigmoid, HardSwish, .* Mul, .* Sigmoid," \
  "$BSP" import bad-op.onnx -o x.h5
err 1 import "input 'x' has a dynamic H dimension: give --input-shape HxWxC" "$BSP" import dynamic.onnx -o x.h5
err 1 import "--input-shape 10x12x3 does not match the graph's input, 12x12x3" "$BSP" import resnet.onnx --input-shape 10x12x3 -o x.h5
err 1 import "opset 5 of the default domain: bsp reads opsets 7 to 18" "$BSP" import opset.onnx -o x.h5
err 1 import "the graph has 2 outputs: bsp models have one" "$BSP" import two-outputs.onnx -o x.h5
ok "$BSP" import external.onnx -o ext.h5
rm external.bin
err 1 import "tensor 'w': external data 'external\.bin' is missing" "$BSP" import external.onnx -o x.h5
echo "not onnx" >junk.onnx
err 1 import "cannot import 'junk\.onnx': not an ONNX model" "$BSP" import junk.onnx -o x.h5
err 1 import "cannot import 'none\.onnx': no such file" "$BSP" import none.onnx -o x.h5
err 1 import "--input-mean has 2 values for 3 channels" "$BSP" import resnet.onnx --input-mean 0,1 -o x.h5
err 2 import "--input-shape '12x12' is not HxWxC" "$BSP" import resnet.onnx --input-shape 12x12 -o x.h5
err 2 import "--input-std values must be positive" "$BSP" import resnet.onnx --input-std 0 -o x.h5
err 2 import "--input-mean 'a,b' is not a comma-separated list" "$BSP" import resnet.onnx --input-mean a,b -o x.h5
err 2 import "no output file" "$BSP" import resnet.onnx
err 2 import "model is required" "$BSP" import
no_file x.h5
no_temp_files .

finish
