#!/usr/bin/env bash
# bsp estimate: the table, JSON and CSV, the dense comparison, the paper's
# model, scheduling in memory, and failures.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-resnet -o dense.h5
ok "$BSP" prune dense.h5 --pattern block:8x8 --density 0.5 -o p.h5
ok "$BSP" schedule p.h5 --target aie2:4x4 --dtype int8 -o s.h5
ok "$BSP" codegen s.h5 -o c.h5 --no-image

ok "$BSP" estimate c.h5
out_has '^target aie2-4x4: 4 rows x 4 columns at 1\.00 GHz, int8, the default model$'
out_has '^layer +kind +cores +imbal +time\(us\) +bound +overlap$'
out_has '^stem\.conv +conv +[0-9]+ +[0-9.]+ +[0-9.]+ +[A-Z]+ +[0-9.]+x$'
out_has '^total [0-9.]+ ms; [0-9,]+ instructions executed$'
out_has '^COMP +[0-9,]+ +[0-9.]+ +[0-9,]+$'

ok "$BSP" estimate c.h5 --json --compare dense
cp "$WORK/.out" e.json
CHECKS=$((CHECKS + 1))
python3 - e.json <<'PY' || fail "estimate JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["target"] == "aie2-4x4" and d["model"] == "default" and d["dtype"] == "int8"
assert abs(d["total_s"] - sum(l["time_s"] for l in d["layers"])) < 1e-12
assert all({"name", "time_s", "bound", "classes", "imbalance", "cores"} <= set(l) for l in d["layers"])
assert d["dense_total_s"] > d["total_s"] and abs(d["speedup"] - d["dense_total_s"] / d["total_s"]) < 1e-12
assert len(d["dense_layers"]) == len(d["layers"])
assert set(d["classes"]) == {"LOAD", "LOADW", "LOADFM", "LOADWM", "COMP", "WRITEFM", "WRITE"}
assert d["classes"]["COMP"]["macs"] > 0
PY

# The paper's assumptions: DDR not overlapped, so some stage has DDR time.
ok "$BSP" estimate c.h5 --model paper --json
cp "$WORK/.out" paper.json
CHECKS=$((CHECKS + 1))
python3 - paper.json e.json <<'PY' || fail "paper model"
import json, sys
p, d = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert p["model"] == "paper" and p["target"] == "aie2-4x4+paper"
assert sum(l["ddr_s"] for l in p["layers"]) > 0
assert all(l["ddr_s"] == 0 for l in d["layers"])
PY

# The paper compiler's mapping: scheduled in memory even with a stored
# program; every activation goes through DDR, so more DDR traffic.
ok "$BSP" estimate c.h5 --model paper --mapping paper --json
cp "$WORK/.out" pm.json
CHECKS=$((CHECKS + 1))
python3 - pm.json paper.json <<'PY' || fail "paper mapping"
import json, sys
m, p = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert m["model"] == "paper" and m["target"] == "aie2-4x4+paper"
ddr = lambda d: sum(d["classes"][c]["bytes"] for c in ("LOAD", "WRITE"))
assert ddr(m) > ddr(p), (ddr(m), ddr(p))
# width across columns, channels across rows: at most 4 x 4 cores, every layer
assert all(l["cores"] <= 16 for l in m["layers"])
PY

# Scheduling in memory: a model without a program, another target.
ok "$BSP" estimate p.h5 --target aie2:2x2 --dtype int8 --csv --compare dense
out_has '^layer,kind,cores,imbalance,time_s,dense_time_s,ddr_s,serial_s,bound,LOAD_busy_s,'
out_has '^stem\.conv,conv,[0-9]+,'
out_has '^total,,,,[0-9.e-]+,[0-9.e-]+,'
ok "$BSP" init --arch fmnist-cnn -o m.h5
ok "$BSP" estimate m.h5 --json --compare dense
cp "$WORK/.out" m.json
CHECKS=$((CHECKS + 1))
[ "$(json_get m.json "d['target'], float(d['speedup'])")" = "aie2-4x4 1.0" ] || fail "dense model: default target, speedup 1"

# Failures.
err 2 estimate "give --json or --csv, not both" "$BSP" estimate c.h5 --json --csv
err 2 estimate "unknown --model 'fast'" "$BSP" estimate c.h5 --model fast
err 2 estimate "unknown --compare 'sparse'" "$BSP" estimate c.h5 --compare sparse
err 2 estimate "unknown --mapping 'best'" "$BSP" estimate c.h5 --mapping best
err 2 estimate "--tune must be 1 to 64" "$BSP" estimate c.h5 --tune -1
err 2 estimate "unknown target 'nosuch'" "$BSP" estimate c.h5 --target nosuch
err 2 estimate "unknown data type 'fp8'" "$BSP" estimate c.h5 --dtype fp8
err 1 estimate "cannot read 'missing\.h5'" "$BSP" estimate missing.h5

# --svg: per-layer bars, dense above sparse: two labelled bars per layer.
ok "$BSP" estimate c.h5 --compare dense --svg e.svg --json
CHECKS=$((CHECKS + 1))
xmllint --noout e.svg || fail "e.svg is not well-formed XML"
nl=$(json_get "$WORK/.out" "len(d['layers'])")
CHECKS=$((CHECKS + 1))
[ "$(grep -c ' us dense</text>' e.svg)" = "$nl" ] && [ "$(grep -c ' us sparse</text>' e.svg)" = "$nl" ] ||
  fail "e.svg: $(grep -c ' us dense</text>' e.svg) dense and $(grep -c ' us sparse</text>' e.svg) sparse bars for $nl layers"
err 2 estimate "--svg -" "$BSP" estimate c.h5 --svg -
finish
