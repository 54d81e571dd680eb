#!/usr/bin/env python3
"""Collects the `bsp estimate --compare dense --json` cells of the AIE2
experiment (Makefile beside this file) into a CSV table, an SVG plot and a
summary beside the block-sparsity paper's figures. Python standard library
only."""
import argparse
import csv
import json
import math
import os
import sys

# The paper's AIE2 4x4 results (seconds; dense -> 50% 8x8 blocks). Its VGG-16
# excludes the fully connected layers.
PAPER = {"resnet50": (10.77e-3, 7.06e-3), "inception_v3": (17.41e-3, 10.13e-3), "vgg16": (13.71e-3, 8.85e-3)}
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def fc_layers(info_path):
    """Names of the fully connected layers (op dense) of a model."""
    with open(info_path) as f:
        return {l["name"] for l in json.load(f)["layers"] if l["op"] == "dense"}


def load_cells(a):
    rows = []
    for net in a.nets:
        fc = fc_layers(os.path.join(a.dir, f"{net}.info.json"))
        for size in a.sizes:
            for model in a.models:
                path = os.path.join(a.dir, f"{net}-{size}-{model}.json")
                with open(path) as f:
                    j = json.load(f)
                nofc = lambda layers: sum(l["time_s"] for l in layers if l["name"] not in fc)
                d_nofc, s_nofc = nofc(j["dense_layers"]), nofc(j["layers"])
                p = PAPER.get(net) if size == "4x4" else None
                rows.append({
                    "net": net, "size": size, "model": model,
                    "dense_s": j["dense_total_s"], "sparse_s": j["total_s"], "speedup": j["speedup"],
                    "dense_nofc_s": d_nofc, "sparse_nofc_s": s_nofc,
                    "speedup_nofc": d_nofc / s_nofc if s_nofc > 0 else 1.0,
                    "paper_dense_s": p[0] if p else "", "paper_sparse_s": p[1] if p else "",
                })
    return rows


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def summary(rows, a):
    out = []
    for model in a.models:
        out.append(f"cost model {model}:")
        for r in rows:
            if r["model"] != model or r["size"] != "4x4" or r["net"] not in PAPER:
                continue
            pd, ps = PAPER[r["net"]]
            # The paper's VGG-16 has no FC layers: compare like with like.
            key = "_nofc" if r["net"] == "vgg16" else ""
            d, s = r["dense" + key + "_s"], r["sparse" + key + "_s"]
            note = " (without FC layers)" if key else ""
            out.append(f"  {r['net']:13s} 4x4{note}: dense {d * 1e3:7.3f} ms (paper {pd * 1e3:6.2f}, ratio {d / pd:5.2f}), "
                       f"sparse {s * 1e3:7.3f} ms (paper {ps * 1e3:6.2f}), speedup {d / s:4.2f} (paper {pd / ps:4.2f})")
        sp = [r["speedup"] for r in rows if r["model"] == model]
        out.append(f"  geometric mean of the speedup over {len(sp)} (net, size) pairs: {geomean(sp):.3f}")
    out += paper_flow(a)
    return "\n".join(out) + "\n"


def paper_flow(a):
    """The 4x4 cells run with the paper compiler's data flow (--mapping
    paper) and 16-bit data (bf16) under its cost model, when present: what
    reproduces the paper's figures (bsp-estimate(1))."""
    out = []
    for net in a.nets:
        path = os.path.join(a.dir, f"{net}-4x4-paperflow.json")
        if net not in PAPER or not os.path.exists(path):
            continue
        if not out:
            out.append("the paper's data flow (--mapping paper), bf16, cost model paper:")
        with open(path) as f:
            j = json.load(f)
        fc = fc_layers(os.path.join(a.dir, f"{net}.info.json")) if net == "vgg16" else set()
        d = sum(l["time_s"] for l in j["dense_layers"] if l["name"] not in fc)
        s = sum(l["time_s"] for l in j["layers"] if l["name"] not in fc)
        pd, ps = PAPER[net]
        note = " (without FC layers)" if fc else ""
        out.append(f"  {net:13s} 4x4{note}: dense {d * 1e3:7.3f} ms (paper {pd * 1e3:6.2f}, ratio {d / pd:5.2f}), "
                   f"sparse {s * 1e3:7.3f} ms (paper {ps * 1e3:6.2f}, ratio {s / ps:5.2f}), speedup {d / s:4.2f}")
    return out


def svg(rows, a, path):
    W, H, pad = 1000, 430, 60
    pw = (W - 3 * pad) / 2
    ph = H - 2 * pad
    sizes = a.sizes
    xs = lambda i, x0: x0 + (pw * (i + 0.5) / len(sizes))
    els = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    first = a.models[0]
    # Left: time (log scale) under the first cost model, dense solid and sparse dashed.
    times = [r[k] for r in rows if r["model"] == first for k in ("dense_s", "sparse_s")]
    times += [v for p in PAPER.values() for v in p]
    lo, hi = math.log10(min(times)) - 0.1, math.log10(max(times)) + 0.1
    ty = lambda v: pad + ph * (1 - (math.log10(v) - lo) / (hi - lo))
    # Right: speedup, every cost model (first solid, others dashed).
    sps = [r["speedup"] for r in rows] + [p[0] / p[1] for p in PAPER.values()] + [1.0]
    slo, shi = min(sps) - 0.05, max(sps) + 0.05
    sy = lambda v: pad + ph * (1 - (v - slo) / (shi - slo))
    x0l, x0r = pad, 2 * pad + pw
    for x0, title in ((x0l, f"time per image, ms (log scale), {first} cost model"),
                      (x0r, "speedup (dense time / sparse time)")):
        els.append(f'<rect x="{x0}" y="{pad}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
        els.append(f'<text x="{x0 + pw / 2}" y="{pad - 12}" text-anchor="middle" font-weight="bold">{title}</text>')
        for i, s in enumerate(sizes):
            els.append(f'<text x="{xs(i, x0):.1f}" y="{pad + ph + 18}" text-anchor="middle">{s}</text>')
        els.append(f'<text x="{x0 + pw / 2}" y="{pad + ph + 38}" text-anchor="middle">AIE2 array (rows x columns)</text>')
    for e in range(math.floor(lo), math.ceil(hi) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= math.log10(v) <= hi:
                y = ty(v)
                els.append(f'<line x1="{x0l}" x2="{x0l + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
                els.append(f'<text x="{x0l - 5}" y="{y + 4:.1f}" text-anchor="end">{v * 1e3:g}</text>')
    step = 0.1 if shi - slo < 1.5 else 0.2
    v = math.ceil(slo / step) * step
    while v <= shi:
        y = sy(v)
        els.append(f'<line x1="{x0r}" x2="{x0r + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        els.append(f'<text x="{x0r - 5}" y="{y + 4:.1f}" text-anchor="end">{v:.1f}</text>')
        v += step
    legend = []
    for ni, net in enumerate(a.nets):
        c = COLORS[ni % len(COLORS)]
        for key, dash in (("dense_s", ""), ("sparse_s", ' stroke-dasharray="5,4"')):
            pts = [(xs(i, x0l), ty(r[key])) for i, s in enumerate(sizes) for r in rows
                   if r["net"] == net and r["size"] == s and r["model"] == first]
            els.append(f'<polyline fill="none" stroke="{c}" stroke-width="2"{dash} points="' +
                       " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        for mi, model in enumerate(a.models):
            dash = "" if mi == 0 else ' stroke-dasharray="5,4"'
            pts = [(xs(i, x0r), sy(r["speedup"])) for i, s in enumerate(sizes) for r in rows
                   if r["net"] == net and r["size"] == s and r["model"] == model]
            els.append(f'<polyline fill="none" stroke="{c}" stroke-width="2"{dash} points="' +
                       " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        if net in PAPER and "4x4" in sizes:
            i = sizes.index("4x4")
            pd, ps = PAPER[net]
            els.append(f'<circle cx="{xs(i, x0l):.1f}" cy="{ty(pd):.1f}" r="5" fill="{c}"/>')
            els.append(f'<circle cx="{xs(i, x0l):.1f}" cy="{ty(ps):.1f}" r="5" fill="white" stroke="{c}" stroke-width="2"/>')
            els.append(f'<rect x="{xs(i, x0r) - 5:.1f}" y="{sy(pd / ps) - 5:.1f}" width="10" height="10" fill="{c}"/>')
        legend.append((c, net))
    ly = H - 12
    lx = pad
    for c, net in legend:
        els.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{ly - 4}" y2="{ly - 4}" stroke="{c}" stroke-width="3"/>')
        els.append(f'<text x="{lx + 30}" y="{ly}">{net}</text>')
        lx += 150
    others = ", ".join(a.models[1:])
    els.append(f'<text x="{lx}" y="{ly}">left: dense solid, sparse dashed; right: {first} solid'
               f'{", " + others + " dashed" if others else ""}; markers: the paper (4x4)</text>')
    els.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(els) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dir", required=True)
    p.add_argument("--nets", required=True)
    p.add_argument("--sizes", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--svg", required=True)
    p.add_argument("--summary", required=True)
    a = p.parse_args()
    a.nets, a.sizes, a.models = a.nets.split(), a.sizes.split(), a.models.split()
    rows = load_cells(a)
    write_csv(rows, a.csv)
    svg(rows, a, a.svg)
    with open(a.summary, "w") as f:
        f.write(summary(rows, a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
