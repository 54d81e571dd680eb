#!/usr/bin/python3
"""The long acceptance benchmark of issue 23: torchvision 0.14's networks
through bsp import, every stage, and bsp export, checked against torch and
ONNX Runtime. Run it on a quiet machine (the timings are only meaningful
then); it takes about an hour on 2 cores.

Per network (random weights, batchnorms with random statistics, random
images: tests/bench/torchvision_export.py):
  - import (the images are normalised already: --input-mean 0 --input-std 1):
    wall time, peak RSS (GNU time), the weights' bytes;
  - eval: the largest absolute and relative (to the largest torch logit)
    difference between bsp's logits and torch's;
  - export fp32: ONNX Runtime's difference to bsp's logits, top-1 agreement;
  - int8 (compact --dtype int8 on the images): export --dtype int8, ONNX
    Runtime's top-1 agreement with bsp's int8 program;
  - every stage: prune block:8x8 0.5, finetune (1 epoch, batch 2),
    compact + bench, compact int8, schedule aie2:4x4, codegen, sim, estimate
    (wall time and status of each);
  - SPEED networks (resnet50 and mobilenet_v2 by default): bench of the
    pruned model against OpenBLAS and against bsp's dense kernel (medians
    of --reps runs), and the AIE2 4x4 int8 estimate, dense and sparse
    (estimate --compare dense).

Usage: tests/bench/onnx_torchvision.py [BUILD_DIR [OUT_DIR [NETS...]]]
  Environment: IMAGES (default 8), REPS (bench repetitions, default 20),
  SPEED (the speed networks), SKIP_STAGES=1 (only import/eval/export).
Writes OUT_DIR/summary.txt and OUT_DIR/summary.json. Exit 1 when a check fails.
"""
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import onnx

NETS = ['resnet18', 'resnet50', 'resnet101', 'vgg16', 'vgg16_bn', 'inception_v3', 'googlenet', 'squeezenet1_1',
        'densenet121', 'mobilenet_v2']
BUILD = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else 'build')
OUT = os.path.realpath(sys.argv[2] if len(sys.argv) > 2 else 'bench-onnx-torchvision')
nets = sys.argv[3:] or NETS
IMAGES = int(os.environ.get('IMAGES', 8))
REPS = int(os.environ.get('REPS', 20))
SPEED = os.environ.get('SPEED', 'resnet50 mobilenet_v2').split()
BSP = os.path.join(BUILD, 'bsp')
HERE = os.path.dirname(os.path.realpath(__file__))
CHECK = os.path.join(HERE, '..', 'e2e', 'check_runtime.py')
os.makedirs(OUT, exist_ok=True)
summary = open(os.path.join(OUT, 'summary.txt'), 'w')
results = {}
failures = []


def log(*a):
    line = ' '.join(str(x) for x in a)
    print(line, flush=True)
    summary.write(line + '\n')
    summary.flush()


def run(cmd, cwd, name=None):
    """Runs cmd; returns (ok, stdout, seconds); keeps stdout/stderr in cwd/name.out|err."""
    t0 = time.time()
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True)
    dt = time.time() - t0
    if name:
        open(os.path.join(cwd, name + '.out'), 'w').write(r.stdout)
        open(os.path.join(cwd, name + '.err'), 'w').write(r.stderr)
    if r.returncode:
        failures.append('%s: %s: %s' % (os.path.basename(cwd), name or cmd[0], r.stderr.strip()[-300:]))
    return r.returncode == 0, r.stdout, dt


def load():
    return open('/proc/loadavg').read().split()[0]


log('cpu: %s, %d cores' % (open('/proc/cpuinfo').read().split('model name')[1].split('\n')[0].strip(': \t'),
                           os.cpu_count()))
log('bsp: %s; started %s; load %s' % (subprocess.run([BSP, '--version'], capture_output=True, text=True).stdout.strip(),
                                      time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), load()))
for n in nets:
    d = os.path.join(OUT, n)
    os.makedirs(d, exist_ok=True)
    r = results[n] = {}
    data = n + '-data.h5'
    if not os.path.exists(os.path.join(d, n + '.onnx')):
        ok, _, _ = run(['/usr/bin/python3', os.path.join(HERE, 'torchvision_export.py'), n, n, IMAGES], d, 'torch')
        if not ok:
            log('%s: torch export failed' % n)
            continue
    weights = sum(len(t.raw_data) or 4 * len(t.float_data) for t in onnx.load(os.path.join(d, n + '.onnx')).graph.initializer)
    # import: wall time and peak RSS
    ok, _, dt = run(['/usr/bin/time', '-f', '%e %M', BSP, 'import', n + '.onnx', '--input-mean', 0, '--input-std', 1, '-o', 'm.h5'], d, 'import')
    if not ok:
        log('%s: import failed: %s' % (n, open(os.path.join(d, 'import.err')).read().strip()))
        continue
    wall, rss_kb = open(os.path.join(d, 'import.err')).read().split()[-2:]
    r['import_s'], r['import_rss_mb'], r['weights_mb'] = float(wall), int(rss_kb) / 1024, weights / 2**20
    # eval against torch
    run([BSP, 'eval', 'm.h5', '--data', data, '--logits', 'bsp.npy'], d, 'eval')
    t, b = np.load(os.path.join(d, n + '-torch.npy')).astype(np.float64), np.load(os.path.join(d, 'bsp.npy'))
    r['torch_abs'] = float(np.abs(b - t).max())
    r['torch_rel'] = r['torch_abs'] / float(np.abs(t).max())
    r['torch_top1_equal'] = int((b.argmax(1) == t.argmax(1)).sum())
    if r['torch_rel'] > 1e-4:
        failures.append('%s: logits differ from torch\'s by %.3g relative' % (n, r['torch_rel']))
    # export fp32 and int8, ONNX Runtime
    run([BSP, 'export', 'm.h5', '-o', 'e.onnx'], d, 'export')
    ok, out, _ = run(['/usr/bin/python3', CHECK, 'e.onnx', data, 'bsp.npy'], d, 'ort')
    m = re.search(r'onnxruntime (\S+): .*max relative difference ([^,]+), top-1 agreement ([0-9.]+)', out)
    if m:
        r['ort_version'], r['ort_rel'], r['ort_top1'] = m.group(1), float(m.group(2)), float(m.group(3))
    run([BSP, 'compact', 'm.h5', '--dtype', 'int8', '--calib', data, '-o', 'q.h5'], d, 'int8')
    run([BSP, 'eval', 'q.h5', '--data', data, '--logits', 'q.npy'], d, 'eval_int8')
    qt = np.load(os.path.join(d, 'q.npy'))
    r['int8_top1_vs_torch'] = int((qt.argmax(1) == t.argmax(1)).sum())
    run([BSP, 'export', 'q.h5', '--dtype', 'int8', '-o', 'q.onnx'], d, 'export_int8')
    ok, out, _ = run(['/usr/bin/python3', CHECK, 'q.onnx', data, 'q.npy', '--int8'], d, 'ort_int8')
    m = re.search(r'max relative difference ([^,]+), top-1 agreement ([0-9.]+), outputs within 1e-5: ([0-9.]+)', out)
    if m:
        r['ort_int8_rel'], r['ort_int8_top1'], r['ort_int8_equal'] = map(float, m.groups())
    log('%-14s import %5.2f s, peak %6.0f MB (weights %4.0f MB) | vs torch: abs %.2g rel %.2g, top-1 %d/%d | '
        'ORT fp32 rel %.2g top-1 %.3f | int8: ORT top-1 %.3f, outputs equal %.3f' %
        (n, r['import_s'], r['import_rss_mb'], r['weights_mb'], r['torch_abs'], r['torch_rel'], r['torch_top1_equal'],
         len(t), r.get('ort_rel', -1), r.get('ort_top1', -1), r.get('ort_int8_top1', -1), r.get('ort_int8_equal', -1)))
    if os.environ.get('SKIP_STAGES') == '1':
        continue
    stages = [
        ('prune', ['prune', 'm.h5', '--pattern', 'block:8x8', '--density', '0.5', '-q', '-o', 'p.h5']),
        ('finetune', ['finetune', 'p.h5', '--data', data, '--epochs', 1, '--batch', 2, '--no-augment', '-q', '-o', 'f.h5']),
        ('compact', ['compact', 'f.h5', '-o', 'c.h5']),
        ('bench', ['bench', 'c.h5', '--reps', 1]),
        ('int8', ['compact', 'f.h5', '--dtype', 'int8', '--calib', data, '--calib-images', 4, '-o', 'fq.h5']),
        ('schedule', ['schedule', 'fq.h5', '--target', 'aie2:4x4', '-o', 's.h5']),
        ('codegen', ['codegen', 's.h5', '-o', 'g.h5']),
        ('sim', ['sim', 'g.h5']),
        ('estimate', ['estimate', 's.h5']),
    ]
    r['stages'] = {}
    line = []
    for name, args in stages:
        ok, out, dt = run([BSP] + args, d, 'stage_' + name)
        r['stages'][name] = {'ok': ok, 's': round(dt, 1)}
        line.append('%s %s %.0fs' % (name, 'ok' if ok else 'FAIL', dt))
    sim = open(os.path.join(d, 'stage_sim.out')).read().strip().splitlines()
    r['sim'] = sim[-1] if sim else ''
    log('%-14s stages: %s; sim: %s' % ('', ', '.join(line), r['sim']))

for n in SPEED:
    if n not in results or 'import_s' not in results[n]:
        continue
    d = os.path.join(OUT, n)
    r = results[n]
    run([BSP, 'prune', 'm.h5', '--pattern', 'block:8x8', '--density', '0.5', '-q', '-o', 'sp.h5'], d)
    run([BSP, 'compact', 'sp.h5', '-o', 'sc.h5'], d)
    for base in ('blas', 'dense'):
        l0 = load()
        ok, out, _ = run([BSP, 'bench', 'sc.h5', '--reps', REPS, '--baseline', base, '--json'], d, 'speed_' + base)
        if ok:
            tot = json.loads(out)['total']
            r['bench_' + base] = {'dense_ms': tot['dense_ms'], 'sparse_ms': tot['sparse_ms'], 'speedup': tot['speedup'],
                                  'load': [l0, load()]}
    run([BSP, 'compact', 'sp.h5', '--dtype', 'int8', '--calib', n + '-data.h5', '-o', 'sq.h5'], d)
    run([BSP, 'schedule', 'sq.h5', '--target', 'aie2:4x4', '-o', 'ss.h5'], d)
    ok, out, _ = run([BSP, 'estimate', 'ss.h5', '--compare', 'dense', '--json'], d, 'speed_estimate')
    if ok:
        e = json.loads(out)
        r['aie2_sparse_ms'], r['aie2_dense_ms'] = e['total_s'] * 1e3, e['dense_total_s'] * 1e3
    bb, bd = r.get('bench_blas', {}), r.get('bench_dense', {})
    log('%-14s bench 50%% 8x8 (median of %d): OpenBLAS %.2f ms -> sparse %.2f ms (%.2fx); bsp dense %.2f ms -> %.2f ms '
        '(%.2fx) | AIE2 4x4 int8 estimate: dense %.3f ms, sparse %.3f ms (%.2fx)' %
        (n, REPS, bb.get('dense_ms', -1), bb.get('sparse_ms', -1), bb.get('speedup', -1), bd.get('dense_ms', -1),
         bd.get('sparse_ms', -1), bd.get('speedup', -1), r.get('aie2_dense_ms', -1), r.get('aie2_sparse_ms', -1),
         r.get('aie2_dense_ms', 0) / max(r.get('aie2_sparse_ms', 1), 1e-9)))

json.dump(results, open(os.path.join(OUT, 'summary.json'), 'w'), indent=1)
log('finished %s; load %s' % (time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), load()))
for f in failures:
    log('FAIL ' + f)
sys.exit(1 if failures else 0)
