#!/usr/bin/python3
"""Reproduces a bsp int8 model's integer weights from man/bsp-format.5 alone.

An independent reading of the page's BATCHNORM FOLD and INT8 SEMANTICS
sections (numpy and h5py, nothing of bsp): for every conv2d and dense layer
stored densely in /compact, fold the batchnorm the page says is folded,
quantise per output channel, and compare w_scale, the int8 weights and the
int32 biases with what bsp wrote; likewise the weight and bias of every
affine node (a batchnorm that is not folded). Exit 0 when every value
matches bit for bit, else 1 with the first mismatches.

Usage: check_int8_fold.py MODEL.h5   (made with bsp compact --dtype int8 --format dense)
"""
import sys

import h5py
import numpy as np

f32, f64 = np.float32, np.float64


def names(attr):
    return [x.decode() if isinstance(x, bytes) else str(x) for x in np.atleast_1d(attr)]


def main(path):
    f = h5py.File(path, "r")
    order = names(f["graph/order"][()])
    nodes = f["graph/nodes"]
    op = {n: nodes[n].attrs["op"] for n in order}
    op = {n: (v.decode() if isinstance(v, bytes) else str(v)) for n, v in op.items()}
    inputs = {n: names(nodes[n].attrs["inputs"]) if len(nodes[n].attrs["inputs"]) else [] for n in order}
    consumers = {n: [] for n in order}
    for n in order:
        for i in inputs[n]:
            consumers[i].append(n)
    q8 = f["compact/int8"]

    def kind(n):
        v = q8[n].attrs["kind"]
        return v.decode() if isinstance(v, bytes) else str(v)

    def scale_of(n):
        return float(q8[n].attrs["scale"])

    def gain(bn):
        g = nodes[bn]
        eps = f64(g.attrs["eps"]) if "eps" in g.attrs else f64(1e-5)
        return g["gamma"][()].astype(f64) / np.sqrt(g["var"][()].astype(f64) + eps)

    def quantise(name, w, b, s_in):
        """w [O, K] float32, b [O] float32 -> w_scale, q, bias as the page says."""
        mx = np.abs(w).astype(f64).max(axis=1)
        w_scale = np.where(mx > 0, mx / 127.0, 1.0)
        q = np.clip(np.rint(w.astype(f64) / w_scale[:, None]), -127, 127).astype(np.int8)
        bound = 2.0**30 - 1
        bias = np.clip(np.rint(b.astype(f64) / (s_in * w_scale)), -bound, bound).astype(np.int32)
        return w_scale, q, bias

    bad = []

    def compare(name, what, mine, theirs):
        if mine.shape != theirs.shape or not np.array_equal(mine, theirs):
            diff = np.flatnonzero(mine.reshape(-1) != theirs.reshape(-1)) if mine.shape == theirs.shape else []
            bad.append(f"{name}: {what} differs ({len(diff)} of {mine.size} values)")

    layers = 0
    for n in order:
        k = kind(n)
        if k in ("conv2d", "dense"):
            w = nodes[n]["weight"][()].astype(f32)
            O = w.shape[0]
            w = w.reshape(O, -1)
            b = nodes[n]["bias"][()].astype(f32) if "bias" in nodes[n] else np.zeros(O, f32)
            c = consumers[n]
            if len(c) == 1 and op[c[0]] == "batchnorm":  # BATCHNORM FOLD: folded into a layer
                bn = nodes[c[0]]
                g = gain(c[0])
                w = w * g.astype(f32)[:, None]  # float32 products
                b = ((b - bn["mean"][()].astype(f32)).astype(f64) * g + bn["beta"][()].astype(f64)).astype(f32)
            s_in = scale_of(inputs[n][0])
            w_scale, q, bias = quantise(n, w, b, s_in)
            layer = f["compact/layers"][n]
            fmt = layer.attrs["format"]
            if (fmt.decode() if isinstance(fmt, bytes) else str(fmt)) != "dense":
                sys.exit(f"{n}: not stored densely (run bsp compact --format dense)")
            compare(n, "w_scale", w_scale, q8[n]["w_scale"][()])
            compare(n, "int8 weights", q.reshape(-1), layer["values"][()].reshape(-1))
            compare(n, "bias", bias, q8[n]["bias"][()])
            layers += 1
        elif k == "affine":  # a batchnorm not folded: its channel affine, quantised
            g = gain(n)
            bn = nodes[n]
            scale = g.astype(f32)
            shift = (bn["beta"][()].astype(f64) - g * bn["mean"][()].astype(f64)).astype(f32)
            w_scale, q, bias = quantise(n, scale[:, None], shift, scale_of(inputs[n][0]))
            compare(n, "w_scale", w_scale, q8[n]["w_scale"][()])
            compare(n, "int8 weights", q.reshape(-1), q8[n]["weight"][()])
            compare(n, "bias", bias, q8[n]["bias"][()])
            layers += 1
    if bad:
        print("\n".join(bad[:20]))
        return 1
    print(f"{layers} layers reproduced bit for bit from bsp-format(5)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
