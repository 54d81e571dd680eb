#!/usr/bin/env bash
# Activation rules on the AIE2 back end (bsp-isa(7), ACTIVATION RULES):
# schedule, codegen and sim apply them bit-exactly; estimate --data measures
# each ruled layer's zero-block fraction and, on a target with the
# act_block_skip extension, charges only the nonzero blocks; --compare dense
# shows the three effects; and the failures are one clear line.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-cnn --seed 2 -o m.h5
"$MAKE_DATA_H5" d.h5 16 28 28 1 10 || fail "make_data_h5"
ok "$BSP" prune m.h5 --pattern block:8x8 --density 0.5 -o p.h5
for w in m p; do
  ok "$BSP" prune $w.h5 --act-threshold 2 -o a$w.h5
  ok "$BSP" compact a$w.h5 --dtype int8 --calib d.h5 -o q$w.h5
done

# sim: bit-exact with the int8 reference (which applies the rules) at 2x2
# and 4x4, dense and 50% 8x8 blocks; the program is version 2 and its asm
# shows the rule and the Z forms.
for w in m p; do
  for t in aie2:2x2 aie2:4x4; do
    ok "$BSP" schedule q$w.h5 --target $t -o s.h5
    ok "$BSP" codegen s.h5 -o c$w.h5
    ok "$BSP" sim c$w.h5 --random 3 --images 2
    out_has 'bit-exact with the int8 reference$'
  done
done
ok "$BSP" schedule qp.h5 --target aie2:2x2 --json -o s.h5
cp "$WORK/.out" s.json
CHECKS=$((CHECKS + 1))
python3 - s.json <<'PY' || fail "schedule --json act_rule"
import json, sys
S = {s["name"]: s for s in json.load(open(sys.argv[1]))["stages"]}
assert "act_rule" not in S["conv1.conv"] and S["conv2.conv"]["act_rule"] == {"threshold": 2, "block": [1, 8, 8]}, S["conv2.conv"]
PY
ok "$BSP" codegen s.h5 -o c.h5 --asm c.asm
CHECKS=$((CHECKS + 1))
grep -q '^  act     |v| < [0-9]* block 1x8x8 of ' c.asm && grep -q 'LOADFMZ' c.asm || fail "asm without the rule or LOADFMZ"
CHECKS=$((CHECKS + 1))
[ "$(/usr/bin/python3 -c "import h5py; print(int(h5py.File('c.h5')['program'].attrs['version']))")" = 2 ] || fail "program version"
ok "$BSP" schedule p.h5 --target aie2:2x2 -o s0.h5  # without rules: version 1, as before
ok "$BSP" codegen s0.h5 -o c0.h5
CHECKS=$((CHECKS + 1))
[ "$(/usr/bin/python3 -c "import h5py; print(int(h5py.File('c0.h5')['program'].attrs['version']))")" = 1 ] || fail "program version 1"

# estimate --data on the extension: a real zero fraction per ruled layer,
# the time below the plain target's; --compare dense rows in order.
ok "$BSP" estimate qp.h5 --target aie2-4x4-spex --data d.h5 --limit 8 --json --compare dense
cp "$WORK/.out" spex.json
ok "$BSP" estimate qp.h5 --target aie2:4x4 --data d.h5 --limit 8 --json --compare dense
cp "$WORK/.out" plain.json
ok "$BSP" estimate qp.h5 --target aie2:4x4 --json --compare dense
cp "$WORK/.out" nodata.json
CHECKS=$((CHECKS + 1))
python3 - spex.json plain.json nodata.json <<'PY' || fail "estimate --data JSON"
import json, sys
s, p, n = (json.load(open(f)) for f in sys.argv[1:4])
L = {l["name"]: l for l in s["layers"]}
assert L["conv1.conv"]["act_zero_fraction"] is None and not L["conv1.conv"]["act_skipped"]
ruled = [l for l in s["layers"] if l["act_zero_fraction"] is not None]
assert [l["name"] for l in ruled] == ["conv2.conv", "conv3.conv", "conv4.conv", "fc1", "fc2"], ruled
assert all(0.05 < l["act_zero_fraction"] <= 1 and l["act_skipped"] for l in ruled), ruled
assert s["total_s"] < p["total_s"]
# Without the extension the fractions are measured but not charged: the
# same time as without --data.
assert abs(p["total_s"] - n["total_s"]) < 1e-15 and not any(l["act_skipped"] for l in p["layers"])
e = s["effects"]
assert e["dense_s"] > e["weights_s"] > e["both_s"] and e["dense_s"] > e["activations_s"] > e["both_s"], e
assert abs(e["both_s"] - s["total_s"]) < 1e-15 and abs(e["activations_s"] - s["dense_total_s"]) < 1e-15
assert abs(e["both_speedup"] - e["dense_s"] / e["both_s"]) < 1e-12
PY
ok "$BSP" estimate qp.h5 --target aie2-4x4-spex --data d.h5 --limit 8 --compare dense
out_has '^layer +kind +cores +imbal +time\(us\) +dense\(us\) +bound +overlap +act-zero$'
out_has '^conv1\.conv .* -$'
out_has '^conv2\.conv .* 0\.[0-9]{3}\*$'
out_has '^act-zero: .*\(\*: skipped by the target.s act_block_skip extension\)$'
CHECKS=$((CHECKS + 1))
[ "$(grep -E '^(effect|dense|weights sparse only|activations sparse only|both) ' "$WORK/.out" | cut -c1-24 | tr -s ' ' | tr '\n' '|')" = \
  "effect |dense |weights sparse only |activations sparse only |both |" ] || fail "effects rows: $(cat "$WORK/.out")"
ok "$BSP" estimate qp.h5 --target aie2-4x4-spex --data d.h5 --limit 8 --csv
out_has '^layer,kind,.*,WRITE_busy_s,act_zero,act_skipped$'
out_has '^conv1\.conv,conv,.*,,$'
out_has '^conv2\.conv,conv,.*,0\.[0-9]+,1$'
# A model without rules keeps today's table.
ok "$BSP" estimate p.h5 --target aie2-4x4-spex --compare dense
out_has '^layer +kind +cores +imbal +time\(us\) +dense\(us\) +bound +overlap$'
CHECKS=$((CHECKS + 1))
grep -qE '^(effect|act-zero)' "$WORK/.out" && fail "effects or act-zero without rules"

# Failures: the extension without the fractions, a bad data set.
err 1 estimate "layer 'conv2\.conv' has an activation rule and target 'aie2-4x4-spex' skips zero activation blocks \(act_block_skip\), but its zero-block fraction is not known: measure it on data \(bsp estimate --data D\)" \
  "$BSP" estimate qp.h5 --target aie2-4x4-spex
err 1 estimate "nothere" "$BSP" estimate qp.h5 --target aie2-4x4-spex --data nothere.h5
err 2 estimate "--limit must be at least 1" "$BSP" estimate qp.h5 --data d.h5 --limit 0

finish
