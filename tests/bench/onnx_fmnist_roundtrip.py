#!/usr/bin/python3
"""The real-data ONNX round trip of issue 23, reproducible.

1. PyTorch 1.13 (Debian's python3-torch) trains a small CNN on Fashion-MNIST
   (convs with batchnorm, a depthwise conv, relu6, max pools, dropout, two
   dense layers) and exports it with torch.onnx.export (opset 13, dynamic
   batch). Its test accuracy and every test image's logits are kept.
2. bsp import brings it in (the normalisation torch trained with as
   --input-mean/--input-std); bsp eval on Fashion-MNIST's test set must give
   torch's predictions image for image (and its logits, relative 1e-4).
3. bsp prune --pattern block:8x8 --density 0.5, bsp finetune 3 epochs, bsp
   eval; bsp export; ONNX Runtime (tests/e2e/run_ort.js) on the exported
   file: its accuracy equals bsp eval's and its predictions are bsp's.
4. The same model quantised (bsp compact --dtype int8) and exported with
   --dtype int8: ONNX Runtime's accuracy and agreement with bsp's int8.

Usage: tests/bench/onnx_fmnist_roundtrip.py [BUILD_DIR [OUT_DIR [EPOCHS]]]
Writes OUT_DIR/summary.txt (and the models). Exit 1 when a check fails.
"""
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn

BUILD = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else 'build')
OUT = sys.argv[2] if len(sys.argv) > 2 else 'bench-onnx-fmnist'
EPOCHS = int(sys.argv[3]) if len(sys.argv) > 3 else 4
BSP = os.path.join(BUILD, 'bsp')
HERE = os.path.dirname(os.path.realpath(__file__))
RUN_ORT = os.path.join(HERE, '..', 'e2e', 'run_ort.js')
D = '/usr/share/datasets/fashion-mnist/'
os.makedirs(OUT, exist_ok=True)
os.chdir(OUT)
summary = open('summary.txt', 'w')
failures = []


def log(*a):
    line = ' '.join(str(x) for x in a)
    print(line, flush=True)
    summary.write(line + '\n')
    summary.flush()


def check(ok, what):
    log(('ok   ' if ok else 'FAIL ') + what)
    if not ok:
        failures.append(what)


def bsp(*args):
    t0 = time.time()
    r = subprocess.run([BSP] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode:
        log('FAIL bsp %s: %s' % (' '.join(map(str, args)), r.stderr.strip()))
        sys.exit(1)
    return r.stdout, time.time() - t0


def images(f):
    return np.frombuffer(gzip.open(D + f).read(), np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0


def labels(f):
    return np.frombuffer(gzip.open(D + f).read(), np.uint8, offset=8).astype(np.int64)


def ort(model, x_nchw):
    x_nchw.astype(np.float32).tofile('ort-in.bin')
    r = subprocess.run(['node', RUN_ORT, model, 'ort-in.bin', ','.join(map(str, x_nchw.shape)), 'ort-out.bin'],
                       capture_output=True, text=True)
    if r.returncode:
        log('FAIL onnxruntime: ' + r.stderr.strip())
        sys.exit(1)
    return np.fromfile('ort-out.bin', np.float32).reshape(x_nchw.shape[0], -1), json.loads(r.stdout)['version']


log('cpu: %s, %d cores' % (open('/proc/cpuinfo').read().split('model name')[1].split('\n')[0].strip(': \t'), os.cpu_count()))
log('bsp: %s; torch %s' % (subprocess.run([BSP, '--version'], capture_output=True, text=True).stdout.strip(),
                           torch.__version__))

# ---- 1. PyTorch ----
torch.manual_seed(0)
torch.set_num_threads(2)
Xtr, Ytr = images('train-images-idx3-ubyte.gz'), labels('train-labels-idx1-ubyte.gz')
Xte, Yte = images('t10k-images-idx3-ubyte.gz'), labels('t10k-labels-idx1-ubyte.gz')
MEAN, STD = float(Xtr.mean()), float(Xtr.std())


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


net = nn.Sequential(
    *block(1, 32), *block(32, 32), nn.MaxPool2d(2),
    nn.Conv2d(32, 32, 3, 1, 1, groups=32, bias=False), nn.BatchNorm2d(32), nn.ReLU6(),  # depthwise
    *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
    nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
xtr = torch.from_numpy((Xtr - MEAN) / STD)
xte = torch.from_numpy((Xte - MEAN) / STD)
ytr = torch.from_numpy(Ytr)
opt = torch.optim.Adam(net.parameters(), 1e-3)
t0 = time.time()
for ep in range(EPOCHS):
    net.train()
    perm = torch.randperm(len(xtr))
    for i in range(0, len(xtr), 128):
        idx = perm[i:i + 128]
        opt.zero_grad()
        nn.functional.cross_entropy(net(xtr[idx]), ytr[idx]).backward()
        opt.step()
    log('torch epoch %d done, %.0f s' % (ep + 1, time.time() - t0))
net.eval()
with torch.no_grad():
    torch_logits = torch.cat([net(xte[i:i + 1000]) for i in range(0, len(xte), 1000)]).numpy()
torch_acc = float((torch_logits.argmax(1) == Yte).mean())
log('torch test accuracy %.4f (%d epochs, %d test images)' % (torch_acc, EPOCHS, len(Yte)))
torch.onnx.export(net, torch.zeros(1, 1, 28, 28), 'torch.onnx', opset_version=13, input_names=['input'],
                  output_names=['logits'], dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}})

# ---- 2. bsp import, eval ----
_, t = bsp('import', 'torch.onnx', '--input-mean', MEAN, '--input-std', STD, '-o', 'm.h5')
log('bsp import: %.2f s' % t)
out, _ = bsp('eval', 'm.h5', '--data', 'fashion-mnist', '--json', '--logits', 'm.npy')
acc_import = json.loads(out)['accuracy']
b = np.load('m.npy')
same = int((b.argmax(1) == torch_logits.argmax(1)).sum())
rel = float(np.abs(b - torch_logits).max() / np.abs(torch_logits).max())
log('bsp eval after import: accuracy %.4f; predictions equal to torch\'s: %d of %d; max logit difference %.3g relative'
    % (acc_import, same, len(Yte), rel))
check(same == len(Yte) and acc_import == torch_acc, 'import: bsp eval gives torch\'s predictions image for image')
check(rel < 1e-4, 'import: logits within 1e-4 of torch\'s')

# ---- 3. prune, finetune, export, ONNX Runtime ----
bsp('prune', 'm.h5', '--pattern', 'block:8x8', '--density', '0.5', '-q', '-o', 'p.h5')
out, _ = bsp('eval', 'p.h5', '--data', 'fashion-mnist', '--json')
acc_pruned = json.loads(out)['accuracy']
_, t = bsp('finetune', 'p.h5', '--data', 'fashion-mnist', '--epochs', 3, '-q', '-o', 'f.h5')
log('bsp finetune 3 epochs: %.0f s' % t)
out, _ = bsp('eval', 'f.h5', '--data', 'fashion-mnist', '--json', '--logits', 'f.npy')
acc_ft = json.loads(out)['accuracy']
log('bsp eval: pruned (block:8x8 0.5) %.4f, after 3 epochs of finetune %.4f' % (acc_pruned, acc_ft))
bsp('export', 'f.h5', '-o', 'f.onnx')
x = (Xte - MEAN) / STD  # the graph takes normalised NCHW images (bsp-export(1))
y, version = ort('f.onnx', x)
acc_ort = float((y.argmax(1) == Yte).mean())
fb = np.load('f.npy')
agree = int((y.argmax(1) == fb.argmax(1)).sum())
log('onnxruntime %s on the exported file: accuracy %.4f; predictions equal to bsp\'s: %d of %d; max difference %.3g relative'
    % (version, acc_ort, agree, len(Yte), float(np.abs(y - fb).max() / np.abs(fb).max())))
check(acc_ort == acc_ft and agree == len(Yte), 'export fp32: the runtime\'s accuracy is bsp eval\'s')

# ---- 4. int8 ----
bsp('compact', 'f.h5', '--dtype', 'int8', '--calib', 'fashion-mnist', '--calib-images', 256, '-o', 'q.h5')
out, _ = bsp('eval', 'q.h5', '--data', 'fashion-mnist', '--json', '--logits', 'q.npy')
acc_q = json.loads(out)['accuracy']
bsp('export', 'q.h5', '--dtype', 'int8', '-o', 'q.onnx')
y, _ = ort('q.onnx', x)
qb = np.load('q.npy')
acc_qort = float((y.argmax(1) == Yte).mean())
agree = int((y.argmax(1) == qb.argmax(1)).sum())
log('int8: bsp eval %.4f; onnxruntime on the --dtype int8 export %.4f; predictions equal: %d of %d; '
    'outputs equal within 1e-5: %.4f; max difference %.3g relative'
    % (acc_q, acc_qort, agree, len(Yte), float((np.abs(y - qb) <= 1e-5 * np.abs(qb).max()).mean()),
       float(np.abs(y - qb).max() / np.abs(qb).max())))
check(agree >= 0.99 * len(Yte), 'export int8: the runtime agrees with bsp\'s int8 on 99% of the images')
log('')
log('summary: torch %.4f | bsp after import %.4f | pruned %.4f | finetuned %.4f | onnxruntime fp32 %.4f | '
    'bsp int8 %.4f | onnxruntime int8 %.4f' % (torch_acc, acc_import, acc_pruned, acc_ft, acc_ort, acc_q, acc_qort))
sys.exit(1 if failures else 0)
