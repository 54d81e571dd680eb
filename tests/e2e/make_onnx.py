#!/usr/bin/python3
"""Small ONNX models for bsp import's tests, written the way torch.onnx.export
writes them (scoped node names, a Shape/Gather/Unsqueeze/Concat/Reshape
flatten, Gemm with transB), with their expected outputs computed here in
numpy from the ONNX operator definitions, independently of bsp.

Usage: make_onnx.py KIND DIR
  writes DIR/KIND.onnx, DIR/KIND-data.h5 (images in bsp's data file layout,
  NHWC float32) and DIR/KIND-logits.npy (the model's outputs on them, before
  a final softmax).
KIND: resnet (conv, batchnorm, relu, ceil-mode maxpool, residual add,
      global average pool, flatten, gemm), vgg (average pool, reshape
      subgraph flatten of a 6x6 map, gemm, dropout, matmul + add, softmax),
      inception (branches with concat, an average pool counting padding,
      a clip as relu), mobile (relu6 clips, a depthwise convolution, an
      inverted residual add), se (MobileNet-V3 / EfficientNet pieces as
      torch writes them at opset 13: hardswish as HardSigmoid + Mul, a
      squeeze-excitation with a GlobalAveragePool read by a 1x1 Conv and a
      scale Mul first, a SiLU as Sigmoid + Mul).
Errors: bad-op, dynamic, external (external data missing), opset, two-outputs.
"""
import sys

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)


def conv(x, w, b, stride=1, pad=(0, 0, 0, 0), group=1):
    n, c, h, ww = x.shape
    o, ig, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[2]), (pad[1], pad[3])))
    ho = (xp.shape[2] - kh) // stride + 1
    wo = (xp.shape[3] - kw) // stride + 1
    y = np.zeros((n, o, ho, wo), np.float64)
    og = o // group
    for g in range(group):
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * ig:(g + 1) * ig, i:i + stride * ho:stride, j:j + stride * wo:stride]
                y[:, g * og:(g + 1) * og] += np.einsum('nchw,oc->nohw', patch, w[g * og:(g + 1) * og, :, i, j])
    return y + (b[None, :, None, None] if b is not None else 0)


def pool(x, k, stride, pad, mode, ceil=False, include_pad=False):
    n, c, h, w = x.shape
    def out(size, p0, p1):
        span = size + p0 + p1 - k
        o = -(-span // stride) + 1 if ceil else span // stride + 1
        if ceil and (o - 1) * stride >= size + p0:
            o -= 1
        return o
    ho, wo = out(h, pad[0], pad[2]), out(w, pad[1], pad[3])
    y = np.zeros((n, c, ho, wo))
    for a in range(ho):
        for b in range(wo):
            y0, x0 = a * stride - pad[0], b * stride - pad[1]
            ys, xs = max(y0, 0), max(x0, 0)
            ye, xe = min(y0 + k, h), min(x0 + k, w)
            win = x[:, :, ys:ye, xs:xe]
            if mode == 'max':
                y[:, :, a, b] = win.max(axis=(2, 3))
            else:
                cnt = (min(y0 + k, h + pad[2]) - y0) * (min(x0 + k, w + pad[3]) - x0) if include_pad else win.shape[2] * win.shape[3]
                y[:, :, a, b] = win.sum(axis=(2, 3)) / cnt
    return y


def bn(x, g, b, m, v, eps=1e-5):
    s = (g / np.sqrt(v + eps))[None, :, None, None]
    return (x - m[None, :, None, None]) * s + b[None, :, None, None]


class Builder:
    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def node(self, op, ins, name, **attrs):
        out = name + '_out'
        self.nodes.append(helper.make_node(op, ins, [out], name=name, **attrs))
        return out

    def weights(self, name, o, i, k):
        w = (rng.standard_normal((o, i, k, k)) * np.sqrt(2.0 / (i * k * k))).astype(np.float32)
        b = (rng.standard_normal(o) * 0.1).astype(np.float32)
        return w, b

    def bn_params(self, c):
        return [(rng.uniform(0.5, 1.5, c)).astype(np.float32), (rng.uniform(-0.2, 0.2, c)).astype(np.float32),
                (rng.uniform(-0.1, 0.1, c)).astype(np.float32), (rng.uniform(0.5, 1.5, c)).astype(np.float32)]


def resnet(b, x):
    """conv-bn-relu, ceil-mode maxpool, a residual block, gap, flatten, gemm."""
    ins = ['x']
    w, bias = b.weights('conv1', 8, 3, 3)
    t = b.node('Conv', ['x', b.const('conv1.weight', w), b.const('conv1.bias', bias)], '/conv1/Conv', pads=[1, 1, 1, 1])
    y = conv(x, w, bias, 1, (1, 1, 1, 1))
    p = b.bn_params(8)
    t = b.node('BatchNormalization', [t] + [b.const('bn1.' + k, v) for k, v in zip(['w', 'b', 'm', 'v'], p)], '/bn1/BatchNormalization')
    y = bn(y, *p)
    t = b.node('Relu', [t], '/relu/Relu')
    y = np.maximum(y, 0)
    t = b.node('MaxPool', [t], '/maxpool/MaxPool', kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 0, 0], ceil_mode=1)
    y = pool(y, 3, 2, (0, 0, 0, 0), 'max', ceil=True)
    skip, yskip = t, y
    w1, b1 = b.weights('l1c1', 8, 8, 3)
    t = b.node('Conv', [t, b.const('layer1.0.conv1.weight', w1), b.const('layer1.0.conv1.bias', b1)], '/layer1/layer1.0/conv1/Conv', pads=[1, 1, 1, 1])
    y = conv(y, w1, b1, 1, (1, 1, 1, 1))
    t = b.node('Relu', [t], '/layer1/layer1.0/relu/Relu')
    y = np.maximum(y, 0)
    w2, b2 = b.weights('l1c2', 8, 8, 3)
    t = b.node('Conv', [t, b.const('layer1.0.conv2.weight', w2), b.const('layer1.0.conv2.bias', b2)], '/layer1/layer1.0/conv2/Conv', pads=[1, 1, 1, 1])
    y = conv(y, w2, b2, 1, (1, 1, 1, 1))
    t = b.node('Add', [t, skip], '/layer1/layer1.0/Add')
    y = y + yskip
    t = b.node('Relu', [t], '/layer1/layer1.0/relu_1/Relu')
    y = np.maximum(y, 0)
    t = b.node('GlobalAveragePool', [t], '/avgpool/GlobalAveragePool')
    y = y.mean(axis=(2, 3), keepdims=True)
    t = b.node('Flatten', [t], '/Flatten', axis=1)
    y = y.reshape(y.shape[0], -1)
    fw = (rng.standard_normal((10, 8)) * 0.3).astype(np.float32)
    fb = (rng.standard_normal(10) * 0.1).astype(np.float32)
    t = b.node('Gemm', [t, b.const('fc.weight', fw), b.const('fc.bias', fb)], '/fc/Gemm', transB=1)
    y = y @ fw.T + fb
    return t, y


def vgg(b, x):
    """conv, relu, average pool, the reshape subgraph of a 6x6 map, gemm, dropout, matmul + add, softmax."""
    w, bias = b.weights('features.0', 6, 3, 3)
    t = b.node('Conv', ['x', b.const('features.0.weight', w), b.const('features.0.bias', bias)], '/features/features.0/Conv', pads=[1, 1, 1, 1])
    y = conv(x, w, bias, 1, (1, 1, 1, 1))
    t = b.node('Relu', [t], '/features/features.1/Relu')
    y = np.maximum(y, 0)
    t = b.node('AveragePool', [t], '/features/features.2/AveragePool', kernel_shape=[2, 2], strides=[2, 2])
    y = pool(y, 2, 2, (0, 0, 0, 0), 'avg')
    # x.view(x.size(0), -1) as torch writes it
    s = b.node('Shape', [t], '/Shape')
    g = b.node('Gather', [s, b.const('idx0', np.array(0, np.int64))], '/Gather', axis=0)
    u = b.node('Unsqueeze', [g, b.const('axes0', np.array([0], np.int64))], '/Unsqueeze')
    c = b.node('Concat', [u, b.const('minus1', np.array([-1], np.int64))], '/Concat', axis=0)
    t = b.node('Reshape', [t, c], '/Reshape')
    y = y.reshape(y.shape[0], -1)  # C, H, W order
    f1 = (rng.standard_normal((12, y.shape[1])) * 0.2).astype(np.float32)
    b1 = (rng.standard_normal(12) * 0.1).astype(np.float32)
    t = b.node('Gemm', [t, b.const('classifier.0.weight', f1), b.const('classifier.0.bias', b1)], '/classifier/classifier.0/Gemm', transB=1)
    y = y @ f1.T + b1
    t = b.node('Relu', [t], '/classifier/classifier.1/Relu')
    y = np.maximum(y, 0)
    t = b.node('Dropout', [t], '/classifier/classifier.2/Dropout')
    f2 = (rng.standard_normal((12, 10)) * 0.3).astype(np.float32)  # [in, out]
    b2 = (rng.standard_normal(10) * 0.1).astype(np.float32)
    t = b.node('MatMul', [t, b.const('classifier.3.weight', f2)], '/classifier/classifier.3/MatMul')
    t = b.node('Add', [t, b.const('classifier.3.bias', b2)], '/classifier/classifier.3/Add')
    y = y @ f2 + b2
    t = b.node('Softmax', [t], '/Softmax', axis=1)
    return t, y  # the logits: bsp eval --logits writes the values before a final softmax


def inception(b, x):
    """two branches concatenated, an average pool that counts padding, clip as relu."""
    outs, ys = [], []
    for k, (co, ks) in enumerate([(4, 1), (6, 3)]):
        w, bias = b.weights('b%d' % k, co, 3, ks)
        p = ks // 2
        t = b.node('Conv', ['x', b.const('branch%d.conv.weight' % k, w), b.const('branch%d.conv.bias' % k, bias)],
                   '/branch%d/conv/Conv' % k, pads=[p, p, p, p])
        y = conv(x, w, bias, 1, (p, p, p, p))
        t = b.node('Clip', [t, b.const('zero%d' % k, np.array(0, np.float32))], '/branch%d/Clip' % k)
        y = np.maximum(y, 0)
        outs.append(t)
        ys.append(y)
    t = b.node('Concat', outs, '/Concat', axis=1)
    y = np.concatenate(ys, axis=1)
    t = b.node('AveragePool', [t], '/pool/AveragePool', kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1)
    y = pool(y, 3, 1, (1, 1, 1, 1), 'avg', include_pad=True)
    w, bias = b.weights('head', 10, 10, 1)
    t = b.node('Conv', [t, b.const('head.weight', w), b.const('head.bias', bias)], '/head/Conv', strides=[2, 2])
    y = conv(y, w, bias, 2)
    t = b.node('GlobalAveragePool', [t], '/gap/GlobalAveragePool')
    y = y.mean(axis=(2, 3), keepdims=True)
    t = b.node('Flatten', [t], '/Flatten')
    y = y.reshape(y.shape[0], -1)
    return t, y


def mobile(b, x):
    """MobileNet-V2's pieces: relu6 (Clip 0..6), a depthwise convolution, an
    inverted residual add."""
    w, bias = b.weights('stem', 8, 3, 3)
    t = b.node('Conv', ['x', b.const('features.0.0.weight', w), b.const('features.0.0.bias', bias)],
               '/features/features.0/features.0.0/Conv', pads=[1, 1, 1, 1])
    y = conv(x, w, bias, 1, (1, 1, 1, 1))
    lo, hi = b.const('six_lo', np.array(0, np.float32)), b.const('six_hi', np.array(6, np.float32))
    t = b.node('Clip', [t, lo, hi], '/features/features.0/features.0.2/Clip')
    y = np.clip(y, 0, 6)
    skip, yskip = t, y
    dw = (rng.standard_normal((8, 1, 3, 3)) * 0.5).astype(np.float32)
    db = (rng.standard_normal(8) * 0.1).astype(np.float32)
    t = b.node('Conv', [t, b.const('features.1.conv.0.weight', dw), b.const('features.1.conv.0.bias', db)],
               '/features/features.1/conv/conv.0/Conv', pads=[1, 1, 1, 1], group=8)
    y = conv(y, dw, db, 1, (1, 1, 1, 1), group=8)
    t = b.node('Clip', [t, lo, hi], '/features/features.1/conv/conv.1/Clip')
    y = np.clip(y, 0, 6)
    pw, pb = b.weights('pw', 8, 8, 1)
    t = b.node('Conv', [t, b.const('features.1.conv.2.weight', pw), b.const('features.1.conv.2.bias', pb)],
               '/features/features.1/conv/conv.2/Conv')
    y = conv(y, pw, pb)
    t = b.node('Add', [skip, t], '/features/features.1/Add')
    y = yskip + y
    t = b.node('GlobalAveragePool', [t], '/GlobalAveragePool')
    y = y.mean(axis=(2, 3), keepdims=True)
    t = b.node('Flatten', [t], '/Flatten')
    y = y.reshape(y.shape[0], -1)
    fw = (rng.standard_normal((10, 8)) * 0.3).astype(np.float32)
    fb = (rng.standard_normal(10) * 0.1).astype(np.float32)
    t = b.node('Gemm', [t, b.const('classifier.1.weight', fw), b.const('classifier.1.bias', fb)], '/classifier/classifier.1/Gemm', transB=1)
    y = y @ fw.T + fb
    return t, y


def se(b, x):
    """MobileNet-V3 / EfficientNet pieces: conv + hardswish, a depthwise
    conv, squeeze-excitation (global pool -> 1x1 conv -> relu -> 1x1 conv ->
    hardsigmoid -> Mul(scale, x)), a SiLU."""
    def hsig(v):
        return np.clip(v * np.float32(1 / 6) + 0.5, 0, 1)
    w, bias = b.weights('stem', 8, 3, 3)
    w *= 3  # values beyond hardswish's kinks at +-3
    t = b.node('Conv', ['x', b.const('features.0.0.weight', w), b.const('features.0.0.bias', bias)],
               '/features/features.0/features.0.0/Conv', pads=[1, 1, 1, 1], strides=[2, 2])
    y = conv(x, w, bias, 2, (1, 1, 1, 1))
    h = b.node('HardSigmoid', [t], '/features/features.0/features.0.2/HardSigmoid', alpha=1 / 6)
    t = b.node('Mul', [t, h], '/features/features.0/features.0.2/Mul')
    y = y * hsig(y)
    dw = (rng.standard_normal((8, 1, 3, 3)) * 0.5).astype(np.float32)
    db = (rng.standard_normal(8) * 0.1).astype(np.float32)
    t = b.node('Conv', [t, b.const('features.1.block.0.weight', dw), b.const('features.1.block.0.bias', db)],
               '/features/features.1/block/block.0/Conv', pads=[1, 1, 1, 1], group=8)
    y = conv(y, dw, db, 1, (1, 1, 1, 1), group=8)
    t = b.node('Relu', [t], '/features/features.1/block/block.0/Relu')
    y = np.maximum(y, 0)
    xs, yx = t, y
    t = b.node('GlobalAveragePool', [t], '/features/features.1/block/block.1/avgpool/GlobalAveragePool')
    y = y.mean(axis=(2, 3), keepdims=True)
    w1, b1 = b.weights('fc1', 4, 8, 1)
    t = b.node('Conv', [t, b.const('features.1.block.1.fc1.weight', w1), b.const('features.1.block.1.fc1.bias', b1)],
               '/features/features.1/block/block.1/fc1/Conv')
    y = np.maximum(conv(y, w1, b1), 0)
    t = b.node('Relu', [t], '/features/features.1/block/block.1/activation/Relu')
    w2, b2 = b.weights('fc2', 8, 4, 1)
    t = b.node('Conv', [t, b.const('features.1.block.1.fc2.weight', w2), b.const('features.1.block.1.fc2.bias', b2)],
               '/features/features.1/block/block.1/fc2/Conv')
    t = b.node('HardSigmoid', [t], '/features/features.1/block/block.1/scale_activation/HardSigmoid', alpha=1 / 6)
    y = hsig(conv(y, w2, b2))
    t = b.node('Mul', [t, xs], '/features/features.1/block/block.1/Mul')  # the scale first, as torch has it
    y = y * yx
    pw, pb = b.weights('pw', 8, 8, 1)
    t = b.node('Conv', [t, b.const('features.2.0.weight', pw), b.const('features.2.0.bias', pb)], '/features/features.2/features.2.0/Conv')
    y = conv(y, pw, pb)
    s = b.node('Sigmoid', [t], '/features/features.2/features.2.1/Sigmoid')
    t = b.node('Mul', [t, s], '/features/features.2/features.2.1/Mul')
    y = y / (1 + np.exp(-y))
    t = b.node('GlobalAveragePool', [t], '/avgpool/GlobalAveragePool')
    y = y.mean(axis=(2, 3), keepdims=True)
    t = b.node('Flatten', [t], '/Flatten')
    y = y.reshape(y.shape[0], -1)
    fw = (rng.standard_normal((10, 8)) * 0.3).astype(np.float32)
    fb = (rng.standard_normal(10) * 0.1).astype(np.float32)
    t = b.node('Gemm', [t, b.const('classifier.weight', fw), b.const('classifier.bias', fb)], '/classifier/Gemm', transB=1)
    y = y @ fw.T + fb
    return t, y


def save(b, kind, out_name, y, x, dir, dims=None, opset=13, outputs=None):
    inp = helper.make_tensor_value_info('x', TensorProto.FLOAT, dims)
    outs = outputs or [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [None, None])]
    g = helper.make_graph(b.nodes, 'test-' + kind, [inp], outs, b.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)], producer_name='make_onnx.py',
                          producer_version='1')
    if kind in ('resnet', 'vgg', 'inception', 'mobile', 'se'):
        onnx.checker.check_model(m)
    onnx.save(m, '%s/%s.onnx' % (dir, kind))
    with h5py.File('%s/%s-data.h5' % (dir, kind), 'w') as f:
        f['images'] = x.transpose(0, 2, 3, 1).astype(np.float32)
        f['labels'] = np.zeros(x.shape[0], np.int64)
    np.save('%s/%s-logits.npy' % (dir, kind), y.astype(np.float32))


def main(kind, dir):
    b = Builder()
    x = rng.standard_normal((3, 3, 12, 12)).astype(np.float32)
    xd = x.astype(np.float64)
    if kind in ('resnet', 'vgg', 'inception', 'mobile', 'se'):
        t, y = {'resnet': resnet, 'vgg': vgg, 'inception': inception, 'mobile': mobile, 'se': se}[kind](b, xd)
        save(b, kind, t, y, x, dir, dims=[None, 3, 12, 12])
    elif kind == 'bad-op':
        t = b.node('Erf', ['x'], '/features/features.1/Erf')
        save(b, kind, t, xd, x, dir, dims=[1, 3, 12, 12], opset=14)
    elif kind == 'dynamic':
        t = b.node('Relu', ['x'], '/relu/Relu')
        save(b, kind, t, xd, x, dir, dims=['N', 3, 'H', 'W'])
    elif kind == 'external':
        w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        b.const('w', w)
        t = b.node('Conv', ['x', 'w'], '/conv/Conv', pads=[1, 1, 1, 1])
        inp = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 12, 12])
        g = helper.make_graph(b.nodes, 'ext', [inp], [helper.make_tensor_value_info(t, TensorProto.FLOAT, None)], b.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)])
        onnx.save(m, '%s/external.onnx' % dir, save_as_external_data=True, location='external.bin',
                  size_threshold=0)
    elif kind == 'opset':
        t = b.node('Relu', ['x'], '/relu/Relu')
        save(b, kind, t, xd, x, dir, dims=[1, 3, 12, 12], opset=5)
    elif kind == 'two-outputs':
        t1 = b.node('Relu', ['x'], '/a/Relu')
        t2 = b.node('Relu', ['x'], '/b/Relu')
        outs = [helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in (t1, t2)]
        save(b, kind, t1, xd, x, dir, dims=[1, 3, 12, 12], outputs=outs)
    else:
        sys.exit('unknown kind ' + kind)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
