#!/usr/bin/env python3
"""Collects the cells of the sparsity sweep (sweep.mk beside this file) into
a CSV table and an SVG plot: accuracy against the measured CPU speedup (fp32
and int8) and the estimated AIE2 speedup. Python standard library only.

CSV columns: pattern and density (the cell's name), pruned (the pattern
bsp prune was given: 'nm' at density D is nm:8D:8), accuracy and accuracy_int8 (bsp eval of the finetuned model and of
its int8 compact form), cpu_speedup_fp32 (bsp bench --baseline dense),
cpu_speedup_int8 (bsp bench of the int8 model against the int8 dense
model), aie2_speedup and aie2_ms (bsp estimate --compare dense, int8, the
target). The first row is the dense model: speedups 1."""
import argparse
import csv
import json
import os

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
COLUMNS = ["pattern", "density", "pruned", "accuracy", "accuracy_int8", "cpu_speedup_fp32", "cpu_speedup_int8",
           "aie2_speedup", "aie2_ms"]


def load(d, name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)


def split_cell(cell):
    """'block_8x8-0.5' -> ('block:8x8', 0.5)."""
    pattern, density = cell.rsplit("-", 1)
    return pattern.replace("_", ":"), float(density)


def rows_of(a):
    rows = [{"pattern": "dense", "density": 1.0, "pruned": "none", "accuracy": load(a.dir, "base.eval.json")["accuracy"],
             "accuracy_int8": load(a.dir, "base.int8.eval.json")["accuracy"], "cpu_speedup_fp32": 1.0,
             "cpu_speedup_int8": 1.0, "aie2_speedup": 1.0, "aie2_ms": None}]
    for cell in a.cells:
        pattern, density = split_cell(cell)
        est = load(a.dir, cell + ".est.json")
        pruned = f"nm:{round(8 * density)}:8" if pattern == "nm" else pattern
        rows.append({"pattern": pattern, "density": density, "pruned": pruned,
                     "accuracy": load(a.dir, cell + ".eval.json")["accuracy"],
                     "accuracy_int8": load(a.dir, cell + ".int8.eval.json")["accuracy"],
                     "cpu_speedup_fp32": load(a.dir, cell + ".bench.json")["total"]["speedup"],
                     "cpu_speedup_int8": load(a.dir, cell + ".int8.bench.json")["total"]["speedup"],
                     "aie2_speedup": est["speedup"], "aie2_ms": est["total_s"] * 1e3})
        if rows[0]["aie2_ms"] is None:
            rows[0]["aie2_ms"] = est["dense_total_s"] * 1e3
    return rows


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([r[c] if isinstance(r[c], str) else f"{r[c]:.6g}" for c in COLUMNS])


def ticks(lo, hi, n=5):
    """About n round values covering [lo, hi]."""
    raw = max(hi - lo, 1e-9) / n
    step = min((m * 10 ** e for e in range(-4, 4) for m in (1, 2, 5) if m * 10 ** e >= 0.6 * raw), default=raw)
    v = step * (lo // step)
    out = []
    while v <= hi + 1e-12:
        if v >= lo - 1e-12:
            out.append(round(v, 10))
        v += step
    return out


def svg(rows, a, path):
    W, H, pad, top = 1000, 460, 62, 50
    pw, ph = (W - 3 * pad) / 2, H - top - 110
    patterns = [p for p in dict.fromkeys(r["pattern"] for r in rows) if p != "dense"]
    acc = [100 * r[k] for r in rows for k in ("accuracy", "accuracy_int8")]
    ylo, yhi = min(acc) - 1, max(acc) + 1
    panels = [("CPU speedup, measured (bsp bench): fp32 filled, int8 hollow",
               [("cpu_speedup_fp32", "accuracy", ""), ("cpu_speedup_int8", "accuracy_int8", "5,4")]),
              (f"AIE2 speedup, estimated (bsp estimate, {a.target}), int8 accuracy", [("aie2_speedup", "accuracy_int8", "")])]
    els = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{a.arch}: accuracy against speedup '
           f'(labels: density)</text>']
    for pi, (title, series) in enumerate(panels):
        x0 = pad + pi * (pw + pad)
        xs_all = [r[k] for r in rows for k, _, _ in series] + [1.0]
        xlo, xhi = min(xs_all) * 0.95, max(xs_all) * 1.05
        X = lambda v: x0 + pw * (v - xlo) / (xhi - xlo)
        Y = lambda v: top + ph * (1 - (v - ylo) / (yhi - ylo))
        els.append(f'<rect x="{x0}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
        els.append(f'<text x="{x0 + pw / 2}" y="{top - 8}" text-anchor="middle" font-weight="bold">{title}</text>')
        for v in ticks(xlo, xhi):
            els.append(f'<line x1="{X(v):.1f}" x2="{X(v):.1f}" y1="{top}" y2="{top + ph}" stroke="#e4e4e4"/>')
            els.append(f'<text x="{X(v):.1f}" y="{top + ph + 16}" text-anchor="middle">{v:g}x</text>')
        for v in ticks(ylo, yhi):
            els.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#e4e4e4"/>')
            els.append(f'<text x="{x0 - 5}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        els.append(f'<line x1="{X(1):.1f}" x2="{X(1):.1f}" y1="{top}" y2="{top + ph}" stroke="#888" stroke-dasharray="3,3"/>')
        els.append(f'<text x="{x0 + pw / 2}" y="{top + ph + 34}" text-anchor="middle">speedup over dense</text>')
        els.append(f'<text x="{x0 - 44}" y="{top + ph / 2}" text-anchor="middle" '
                   f'transform="rotate(-90 {x0 - 44} {top + ph / 2})">accuracy (%)</text>')
        for xk, yk, dash in series:
            dense = rows[0]
            els.append(f'<circle cx="{X(dense[xk]):.1f}" cy="{Y(100 * dense[yk]):.1f}" r="5" '
                       f'fill="{"white" if dash else "#222"}" stroke="#222" stroke-width="2">'
                       f'<title>dense: {100 * dense[yk]:.2f}%</title></circle>')
            for ci, p in enumerate(patterns):
                c = COLORS[ci % len(COLORS)]
                pts = sorted(((r[xk], 100 * r[yk], r["density"]) for r in rows if r["pattern"] == p))
                d = f' stroke-dasharray="{dash}"' if dash else ""
                els.append(f'<polyline fill="none" stroke="{c}" stroke-width="2"{d} points="' +
                           " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y, _ in pts) + '"/>')
                for x, y, den in pts:
                    fill = c if not dash else "white"
                    els.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="4" fill="{fill}" stroke="{c}" stroke-width="2">'
                               f'<title>{p} density {den:g}: {y:.2f}%, {x:.2f}x</title></circle>')
                    els.append(f'<text x="{X(x) + 6:.1f}" y="{Y(y) - 6:.1f}" font-size="10" fill="{c}">{den:g}</text>')
    lx, ly = pad, H - 22
    for ci, p in enumerate(patterns):
        c = COLORS[ci % len(COLORS)]
        els.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{ly - 4}" y2="{ly - 4}" stroke="{c}" stroke-width="3"/>')
        els.append(f'<text x="{lx + 30}" y="{ly}">{p}</text>')
        lx += 150
    els.append(f'<circle cx="{lx + 12}" cy="{ly - 4}" r="5" fill="#222"/><text x="{lx + 30}" y="{ly}">dense</text>')
    els.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(els) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dir", required=True)
    p.add_argument("--cells", required=True, help="the cell names, space-separated (PATTERN-DENSITY, ':' as '_')")
    p.add_argument("--arch", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--svg", required=True)
    a = p.parse_args()
    a.cells = a.cells.split()
    rows = rows_of(a)
    write_csv(rows, a.csv)
    svg(rows, a, a.svg)


if __name__ == "__main__":
    main()
