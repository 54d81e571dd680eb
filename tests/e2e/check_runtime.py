#!/usr/bin/python3
"""Runs an ONNX model in ONNX Runtime (onnxruntime-node, run_ort.js: a
runtime bsp did not write) and compares its outputs with bsp's.

Usage: check_runtime.py MODEL.onnx DATA.h5 LOGITS.npy [--norm-from BSP_MODEL.h5] [--softmax] [--int8]
  DATA.h5: bsp's data file layout (float32 NHWC /images), the images bsp
  eval read. --norm-from: the bsp model whose input normalisation bsp eval
  applied (norm_mean, norm_std), applied here as bsp-format(5) states (the
  ONNX graph takes normalised images). --softmax: LOGITS are before the
  model's final softmax. onnx.checker must pass too. Exit 1 when the
  difference exceeds 1e-5 of the largest output. --int8: the model is bsp's
  int8 program in QDQ form, which a runtime computes in float with other
  rounding (bsp-export(1)): exit 1 unless the top-1 predictions agree on at
  least 99% of the images (where bsp's largest outputs tie, any of them) and the difference stays within 5% of the
  largest output.
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import onnx

model, data, logits = sys.argv[1:4]
rest = sys.argv[4:]
onnx.checker.check_model(onnx.load(model))
x = h5py.File(data, 'r')['images'][()].astype(np.float32)
if x.ndim == 3:
    x = x[..., None]
if '--norm-from' in rest:
    node = h5py.File(rest[rest.index('--norm-from') + 1], 'r')['graph/nodes/input']
    if 'norm_mean' in node.attrs:
        mean, std = np.asarray(node.attrs['norm_mean'], np.float64), np.asarray(node.attrs['norm_std'], np.float64)
        x = x * (1.0 / std).astype(np.float32) + (-mean / std).astype(np.float32)
x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
with tempfile.TemporaryDirectory() as tmp:
    x.tofile(os.path.join(tmp, 'in.bin'))
    r = subprocess.run(['node', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'run_ort.js'), model,
                        os.path.join(tmp, 'in.bin'), ','.join(map(str, x.shape)), os.path.join(tmp, 'out.bin')],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit('onnxruntime: ' + r.stderr.strip())
    info = json.loads(r.stdout)
    y = np.fromfile(os.path.join(tmp, 'out.bin'), np.float32).reshape(x.shape[0], -1)
b = np.load(logits).astype(np.float64)
if '--softmax' in rest:
    e = np.exp(b - b.max(axis=1, keepdims=True))
    b = e / e.sum(axis=1, keepdims=True)
err = np.abs(y - b).max() / max(np.abs(b).max(), 1e-6)
# Top-1 agreement. An int8 output is coarse: when bsp's largest outputs tie,
# any of the tied classes counts as bsp's prediction.
top = y.argmax(axis=1)
if '--int8' in rest:
    agree = float((b[np.arange(len(top)), top] == b.max(axis=1)).mean())
else:
    agree = float((top == b.argmax(axis=1)).mean())
print('onnxruntime %s: %d images, max relative difference %.3g, top-1 agreement %.4f, outputs within 1e-5: %.4f' %
      (info['version'], x.shape[0], err, agree, float((np.abs(y - b) <= 1e-5 * np.abs(b).max()).mean())))
if '--int8' in rest:
    sys.exit(0 if agree >= 0.99 and err <= 0.05 else 1)
sys.exit(0 if err < 1e-5 else 1)
