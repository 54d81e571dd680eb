#!/usr/bin/env bash
# data/experiments/Makefile: `make check` runs the AIE2 table's machinery
# (init, prune, estimate per cell, CSV, SVG, summary) on fmnist-cnn at two
# sizes; the table has one row per size and cost model with consistent
# speedups, and the plot is an SVG with one line per series.
source "$E2E_LIB"
EXP="$MAN_DIR/../data/experiments"

ok make -C "$EXP" check BSP="$BSP" OUT="$WORK/exp"
D="$WORK/exp/check"
for f in aie2_table.csv aie2_table.svg aie2_summary.txt; do
  CHECKS=$((CHECKS + 1))
  [ -s "$D/$f" ] || fail "make check wrote no $f"
done
CHECKS=$((CHECKS + 1))
python3 - "$D" <<'PY' || fail "experiment table"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/aie2_table.csv")))
assert [(r["size"], r["model"]) for r in rows] == [("2x2", "paper"), ("2x2", "default"), ("4x4", "paper"), ("4x4", "default")], rows
for r in rows:
    d, s, sp = float(r["dense_s"]), float(r["sparse_s"]), float(r["speedup"])
    assert r["net"] == "fmnist-cnn" and d > s > 0 and abs(sp - d / s) < 1e-3 * sp, r
    # fmnist-cnn has two dense layers: without them both times shrink
    assert 0 < float(r["sparse_nofc_s"]) < s and 0 < float(r["dense_nofc_s"]) < d, r
svg = open(sys.argv[1] + "/aie2_table.svg").read()
assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
assert svg.count("<polyline") == 4  # one net: dense and sparse times, speedup under two models
summary = open(sys.argv[1] + "/aie2_summary.txt").read()
assert "cost model paper:" in summary and "geometric mean of the speedup over 2" in summary
PY
# A second make has nothing to do; a bad bsp path fails without a table.
ok make -C "$EXP" check BSP="$BSP" OUT="$WORK/exp"
out_has "Nothing to be done|is up to date"
CHECKS=$((CHECKS + 1))
if make -C "$EXP" check BSP=/nonexistent/bsp OUT="$WORK/bad" >/dev/null 2>&1; then fail "make with a missing bsp succeeded"; fi
no_file "$WORK/bad/check/aie2_table.csv"


# data/experiments/sweep.mk: `make check` runs the sweep's machinery (init,
# finetune, prune, eval, compact, estimate, bench per cell, CSV, SVG) on
# 1,000 images and two cells; the table holds the dense row and one row per
# cell with its measured figures, and the plot has one line per pattern and
# series.
ok make -f "$EXP/sweep.mk" -j2 check BSP="$BSP" OUT="$WORK/sweep"
S="$WORK/sweep/check"
CHECKS=$((CHECKS + 1))
python3 - "$S" <<'PY' || fail "sweep table"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/sweep.csv")))
assert [(r["pattern"], r["density"], r["pruned"]) for r in rows] == \
    [("dense", "1", "none"), ("block:8x8", "0.5", "block:8x8"), ("nm", "0.5", "nm:4:8")], rows
for r in rows:
    for k in ("accuracy", "accuracy_int8"):
        assert 0 <= float(r[k]) <= 1, r
    for k in ("cpu_speedup_fp32", "cpu_speedup_int8", "aie2_speedup", "aie2_ms"):
        assert float(r[k]) > 0, r
dense, block, nm = rows
assert dense["cpu_speedup_fp32"] == dense["aie2_speedup"] == "1"
# half the 8x8 blocks: the AIE2 program is faster; 4:8 keeps every block (no 2:4 operand): as dense
assert float(block["aie2_speedup"]) > 1.1 and abs(float(block["aie2_ms"]) * float(block["aie2_speedup"]) - float(dense["aie2_ms"])) < 1e-3 * float(dense["aie2_ms"]), rows
assert abs(float(nm["aie2_speedup"]) - 1) < 1e-6, rows
svg = open(sys.argv[1] + "/sweep.svg").read()
assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
assert svg.count("<polyline") == 6  # 2 patterns x (fp32, int8 on the CPU; AIE2)
PY
CHECKS=$((CHECKS + 1))
xmllint --noout "$S/sweep.svg" || fail "sweep.svg is not well-formed XML"
CHECKS=$((CHECKS + 1))
if make -f "$EXP/sweep.mk" check BSP=/nonexistent/bsp OUT="$WORK/badsweep" >/dev/null 2>&1; then fail "sweep with a missing bsp succeeded"; fi
no_file "$WORK/badsweep/check/sweep.csv"

finish
