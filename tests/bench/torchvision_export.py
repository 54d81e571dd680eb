#!/usr/bin/python3
"""Exports a torchvision 0.14 classification network to ONNX as
torch.onnx.export (PyTorch 1.13, Debian's python3-torch) writes it, with
random weights (none can be downloaded here), batchnorms with random scales
and shifts and the running statistics of the network's own activations on
the images, as a trained network has them; also random images and torch's
logits on them, for tests/bench/onnx_torchvision.sh.

Usage: torchvision_export.py NAME OUT_PREFIX [IMAGES]
  NAME: a torchvision.models constructor (resnet50, mobilenet_v2, ...).
  Writes OUT_PREFIX.onnx (opset 13, batch dynamic), OUT_PREFIX-data.h5 (bsp's
  data file layout: /images NHWC float32, /labels) and OUT_PREFIX-torch.npy
  (torch's logits [IMAGES, 1000], float32). IMAGES defaults to 4.
"""
import sys
import time

import h5py
import numpy as np
import torch
import torchvision

name, out = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 4
torch.manual_seed(0)
size = 299 if name == 'inception_v3' else 224
kw = {}
if name in ('inception_v3', 'googlenet'):
    kw = dict(aux_logits=False, init_weights=True)
m = getattr(torchvision.models, name)(weights=None, **kw).eval()
g = torch.Generator().manual_seed(1)
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.weight.data.uniform_(0.5, 1.5, generator=g)
        mod.bias.data.uniform_(-0.2, 0.2, generator=g)
x = torch.randn(count, 3, size, size, generator=g)
# Running statistics as a trained network has them: those of its own
# activations (one pass in training mode, cumulative averages), so that
# activations keep their scale through deep networks (random statistics
# alone blow ResNet-101's and Inception-v3's logits up to 1e7 and 1e14).
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.reset_running_stats()
        mod.momentum = None
m.train()
with torch.no_grad():
    for i in range(0, count, 4):
        m(x[i:i + 4])
m.eval()
t0 = time.time()
torch.onnx.export(m, x[:1], out + '.onnx', opset_version=13, input_names=['x'], output_names=['logits'],
                  dynamic_axes={'x': {0: 'N'}, 'logits': {0: 'N'}}, do_constant_folding=True)
with torch.no_grad():
    y = torch.cat([m(x[i:i + 4]) for i in range(0, count, 4)]).numpy()
np.save(out + '-torch.npy', y)
with h5py.File(out + '-data.h5', 'w') as f:
    f['images'] = x.numpy().transpose(0, 2, 3, 1)
    f['labels'] = np.zeros(count, np.int64)
print(name, 'exported in %.1f s' % (time.time() - t0))
