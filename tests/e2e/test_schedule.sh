#!/usr/bin/env bash
# bsp schedule: the stored plan, --json and --table, targets by name, size and
# file, and every kind of bad input.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-resnet -o dense.h5
ok "$BSP" prune dense.h5 --pattern block:8x8 --density 0.5 -o p.h5
ok "$BSP" init --arch fmnist-cnn -o m.h5

ok "$BSP" schedule p.h5 --target aie2:2x2 -o s.h5 --json
cp "$WORK/.out" s.json
CHECKS=$((CHECKS + 1))
python3 - s.json <<'PY' || fail "schedule JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["target"] == "aie2-2x2" and d["dtype"] == "fp32", (d["target"], d["dtype"])
assert d["hardware"]["rows"] == 2 and d["hardware"]["cols"] == 2
names = [s["name"] for s in d["stages"]]
assert names[0] == "stem.conv" and names[-1] == "fc", names
mem = d["hardware"]["core"]["data_memory_bytes"]
for s in d["stages"]:
    assert s["split"]["cores"] <= 4, s["name"]
    assert s["split"]["spatial_parts"] * s["split"]["channel_parts"] == s["split"]["cores"]
    assert s["core_memory"]["used"] <= mem, s["name"]
    assert s["imbalance"] >= 1.0, s["name"]
    assert s["est_s"] > 0
    for m in s["memtiles"]:
        assert m["used"] <= d["hardware"]["memtile"]["memory_bytes"]
    if s["kind"] == "conv" and s["name"] != "stem.conv":
        # half the 8x8 blocks pruned: only the stored ones travel
        assert s["stored_blocks"] < s["blocks"], s["name"]
# the residual adds and relus are folded into the convolutions
fused = [s for s in d["stages"] if any(n.endswith(".add") for n in s["nodes"])]
assert fused and all(s["kind"] == "conv" and s["residual"] in ("ddr", "memtile") for s in fused)
assert any(a["place"] == "memtile" for a in d["activations"])
assert d["activations"][0]["name"] == "input" and d["activations"][0]["place"] == "ddr"
PY
# The schedule is in the file; later stages keep it.
ok "$BSP" codegen s.h5 -o c.h5
ok "$BSP" estimate c.h5 --json
cp "$WORK/.out" e.json
CHECKS=$((CHECKS + 1))
[ "$(json_get e.json "d['target']")" = "aie2-2x2" ] || fail "the stored target was not used"

ok "$BSP" schedule m.h5 --target npu1 -o n.h5 --table
out_has '^target npu1: 4 rows x 4 columns, fp32'
out_has '^conv1\.conv +conv +[0-9]+ '
out_has '^fc2 +conv '
out_has 'stages; analytic estimate'

# int8 planning without int8 weights is allowed (with a note).
ok "$BSP" schedule m.h5 --target aie2:3x5 --dtype int8 --no-resident -o i.h5 --json
grep -q "note: planning int8 without int8 weights" "$WORK/.err" || fail "no note about int8 planning"
cp "$WORK/.out" i.json
CHECKS=$((CHECKS + 1))
python3 - i.json <<'PY' || fail "int8 --no-resident schedule"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["dtype"] == "int8" and d["target"] == "aie2-3x5"
assert all(a["place"] == "ddr" for a in d["activations"])
PY

# A target described by a file of one's own.
cat >my.json <<'JSON'
{ "base": "aie2", "name": "my-2x6", "rows": 2, "cols": 6 }
JSON
ok "$BSP" schedule m.h5 --target my.json -o f.h5 --json
cp "$WORK/.out" f.json
CHECKS=$((CHECKS + 1))
[ "$(json_get f.json "d['target'], d['hardware']['cols']")" = "my-2x6 6" ] || fail "target file"

# stdin to stdout
CHECKS=$((CHECKS + 1))
"$BSP" schedule - --target aie2:2x2 -o - <m.h5 | "$BSP" estimate - --json >pipe.json || fail "pipe"
[ "$(json_get pipe.json "d['target']")" = "aie2-2x2" ] || fail "piped schedule"

# --tune times the best plans per layer and keeps the fastest: the stored
# program is never slower than the analytic choice's, and it is what
# estimate times again.
ok "$BSP" schedule p.h5 --target aie2:4x4 --dtype int8 -o u.h5
ok "$BSP" estimate u.h5 --json
cp "$WORK/.out" u.json
ok "$BSP" schedule p.h5 --target aie2:4x4 --dtype int8 --tune 4 -o t.h5
ok "$BSP" estimate t.h5 --json
cp "$WORK/.out" t.json
ok "$BSP" estimate p.h5 --target aie2:4x4 --dtype int8 --tune 4 --json
cp "$WORK/.out" tm.json
CHECKS=$((CHECKS + 1))
python3 - u.json t.json tm.json <<'PY' || fail "--tune"
import json, sys
u, t, tm = (json.load(open(f)) for f in sys.argv[1:])
assert t["total_s"] <= u["total_s"] * (1 + 1e-9), (t["total_s"], u["total_s"])
for a, b in zip(u["layers"], t["layers"]):
    assert b["time_s"] <= a["time_s"] * (1 + 1e-9), a["name"]
assert abs(tm["total_s"] - t["total_s"]) <= 1e-12 + 1e-9 * t["total_s"], (tm["total_s"], t["total_s"])
PY

# Weights that arrive once go straight from DDR into the cores, also when
# DDR time adds to every layer (a target file with ddr_overlap false).
echo '{ "base": "aie2", "rows": 2, "cols": 2, "ddr_overlap": false }' >noovl.json
ok "$BSP" schedule p.h5 --target noovl.json -o h.h5 --json
cp "$WORK/.out" h.json
CHECKS=$((CHECKS + 1))
python3 - h.json s.json <<'PY' || fail "weights_direct"
import json, sys
h, s = (json.load(open(f)) for f in sys.argv[1:])
assert any(x["weights_direct"] for x in h["stages"])
assert any(x["weights_direct"] for x in s["stages"])
assert any(x["input_split"] > 0 for x in h["stages"] + s["stages"])
PY
ok "$BSP" codegen h.h5 -o hc.h5
ok "$BSP" sim hc.h5 --random 3 --json
out_has '"match": true'

# Failures: one line, the right exit code, no output file.
err 2 schedule "--tune must be 1 to 64" "$BSP" schedule m.h5 --target aie2:2x2 --tune 0 -o x.h5
err 2 schedule "--tune must be 1 to 64" "$BSP" schedule m.h5 --target aie2:2x2 --tune 65 -o x.h5
err 2 schedule "--target is required" "$BSP" schedule m.h5 -o x.h5
err 2 schedule "unknown target 'nosuch'" "$BSP" schedule m.h5 --target nosuch -o x.h5
err 2 schedule "bad target 'aie2:4'" "$BSP" schedule m.h5 --target aie2:4 -o x.h5
err 2 schedule "unknown data type 'int4'" "$BSP" schedule m.h5 --target aie2:2x2 --dtype int4 -o x.h5
err 2 schedule "is the input file" "$BSP" schedule m.h5 --target aie2:2x2 -o m.h5
err 2 schedule "--json and --table print on stdout" "$BSP" schedule m.h5 --target aie2:2x2 -o - --json
err 1 schedule "cannot read 'missing\.h5'" "$BSP" schedule missing.h5 --target aie2:2x2 -o x.h5
# A batchnorm after a concat (no layer to fold into) is a 1x1 depthwise conv
# stage: it schedules, and the program computes the reference's output.
"$MAKE_TEST_MODEL" batchnorms lonebn.h5 || fail "make_test_model batchnorms"
ok "$BSP" schedule lonebn.h5 --target aie2:2x2 --table -o lonebn-s.h5
out_has '^cat\.bn +conv '
ok "$BSP" codegen lonebn-s.h5 -o lonebn-c.h5
ok "$BSP" sim lonebn-c.h5
out_has 'match'
echo '{ "base": "aie2", "colz": 3 }' >bad.json
err 1 schedule "unknown key 'colz'" "$BSP" schedule m.h5 --target bad.json -o x.h5
echo '{ "base": "aie2", ' >broken.json
err 1 schedule "broken\.json" "$BSP" schedule m.h5 --target broken.json -o x.h5
err 1 schedule "cannot read hardware description 'none\.json'" "$BSP" schedule m.h5 --target none.json -o x.h5
no_file x.h5
no_temp_files .

finish
