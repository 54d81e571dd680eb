#!/usr/bin/env bash
# bsp compact: formats chosen per layer, int8, info's byte columns, failures.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-resnet -o r.h5
ok "$BSP" init --arch fmnist-cnn -o k.h5
ok "$BSP" prune r.h5 --pattern block:8x8 --density 0.5 -o b.h5
ok "$BSP" prune r.h5 --pattern nm:2:4 -o n.h5
ok "$BSP" prune k.h5 --pattern tw:16 --density 0.5 -o t.h5

# auto: bsr for the block-pruned layers, dense for the first conv.
ok "$BSP" compact b.h5 -o bc.h5
ok "$BSP" info --weighted bc.h5
out_has '^stem\.conv .* dense +1,152 +1,152 +1\.00$'
out_has '^stage2\.0\.a\.conv .*block:8x8 +bsr +'
out_has '^compact \(fp32\): weights '
ok "$BSP" info --json bc.h5
cp "$WORK/.out" bc.json
CHECKS=$((CHECKS + 1))
python3 - bc.json <<'PY' || fail "info JSON of a compacted model"
import json, sys
d = json.load(open(sys.argv[1]))
c = d["compact"]
assert c["dtype"] == "fp32" and c["compact_bytes"] < c["dense_bytes"], c
assert abs(c["ratio"] - c["dense_bytes"] / c["compact_bytes"]) < 1e-9
assert d["compact_dropped"] is None
for l in d["layers"]:
    if l["op"] in ("conv2d", "dense"):
        assert l["format"] in ("bsr", "dense"), l
        if l["pattern"] == "block:8x8":
            assert l["format"] == "bsr"
            # about half the blocks plus the index arrays
            assert 1.1 < l["compact_ratio"] < 3.5, l
    else:
        assert l["format"] is None and l["dense_bytes"] is None, l
assert d["history"][-2:] == ["bsp prune r.h5 --pattern block:8x8 --density 0.5 -o b.h5",
                             "bsp compact b.h5 -o bc.h5"], d["history"]
PY
# The other stages still read the graph; an uncompacted model has no compact part.
ok "$BSP" info --json b.h5
cp "$WORK/.out" b.json
CHECKS=$((CHECKS + 1))
[ "$(json_get b.json "d['compact']")" = "None" ] || fail "uncompacted model reports a compact part"

# nm and tw layers.
ok "$BSP" compact n.h5 -o nc.h5
ok "$BSP" info --weighted nc.h5
out_has '^stage2\.0\.a\.conv .*nm:2:4 +nm +'
ok "$BSP" compact t.h5 -o tc.h5
ok "$BSP" info --weighted tc.h5
out_has '^conv2\.conv .*tw:16 +tw +'
# Forced formats apply to the pruned layers.
ok "$BSP" compact b.h5 --format tw -o bt.h5
ok "$BSP" info --weighted bt.h5
out_has '^stage2\.0\.a\.conv .* tw +'
out_has '^stem\.conv .* dense +'
ok "$BSP" compact b.h5 --format dense --dtype bf16 -o bd.h5
ok "$BSP" info --weighted bd.h5
out_has '^stage3\.1\.b\.conv .* dense +589,824 +294,912 +2\.00$'

# int8 (synthetic calibration warns), power-of-two scales, a pipe.
CHECKS=$((CHECKS + 1))
"$BSP" compact b.h5 --dtype int8 --pow2 --calib-images 4 -o q.h5 2>q.err || fail "int8 compact failed: $(cat q.err)"
grep -q "^bsp compact: warning: no --calib data" q.err || fail "no synthetic-calibration warning: $(cat q.err)"
ok "$BSP" info q.h5
out_has '^compact \(int8\): weights '
CHECKS=$((CHECKS + 1))
"$BSP" compact - --dtype int8 --calib-images 2 -o - <b.h5 2>/dev/null | "$BSP" info - | grep -q '^compact (int8)' ||
  fail "compact through a pipe"
# Calibration on real data (an HDF5 data file): no warning.
"$MAKE_DATA_H5" d.h5 64 28 28 1 10 || fail "make_data_h5"
CHECKS=$((CHECKS + 1))
"$BSP" compact b.h5 --dtype int8 --calib d.h5 --calib-images 16 -o qd.h5 2>qd.err || fail "--calib d.h5: $(cat qd.err)"
[ -s qd.err ] && fail "calibration on data warned: $(cat qd.err)"
"$MAKE_DATA_H5" rgb.h5 8 32 32 3 10 || fail "make_data_h5 rgb"
err 1 compact "rgb\.h5" "$BSP" compact b.h5 --dtype int8 --calib rgb.h5 -o x.h5
err 1 compact "cannot read data 'nope\.h5'" "$BSP" compact b.h5 --dtype int8 --calib nope.h5 -o x.h5
err 2 compact "--calib needs --dtype int8" "$BSP" compact b.h5 --calib d.h5 -o x.h5
# A stage that changes the weights leaves the stale compact part out of its file.
ok "$BSP" prune bc.h5 --pattern block:8x8 --density 0.25 -q -o bcp.h5
ok "$BSP" info --json bcp.h5
CHECKS=$((CHECKS + 1))
[ "$(json_get "$WORK/.out" 'd["compact"] is None and d["compact_dropped"] is None')" = True ] ||
  fail "prune kept a stale compact group: $(head -c 300 "$WORK/.out")"
# Compacting again replaces the compact part.
ok "$BSP" compact q.h5 -o q2.h5
ok "$BSP" info q2.h5
out_has '^compact \(fp32\)'
ok "$BSP" compact bc.h5 --in-place
no_temp_files .

# bsp-format(5) alone gives the int8 weights: an independent reading of its
# BATCHNORM FOLD and INT8 SEMANTICS (numpy, h5py) reproduces them bit for bit,
# folded batchnorms and an unfolded one (affine) with random statistics.
"$MAKE_TEST_MODEL" batchnorms bn.h5 || fail "make_test_model batchnorms"
ok "$BSP" compact bn.h5 --dtype int8 --format dense -o bnq.h5
CHECKS=$((CHECKS + 1))
/usr/bin/python3 "$(dirname "$E2E_LIB")/check_int8_fold.py" bnq.h5 >fold.out 2>&1 || fail "int8 weights from bsp-format(5): $(cat fold.out)"
grep -q '^6 layers reproduced bit for bit' fold.out || fail "int8 weights from bsp-format(5): $(cat fold.out)"

# Failures: one line, exit code, no output.
err 1 compact "layer 'stage1\.0\.a\.conv'.*not N:M-pruned" "$BSP" compact b.h5 --format nm -o x.h5
no_file x.h5
err 2 compact "unknown --format 'csr'" "$BSP" compact b.h5 --format csr -o x.h5
err 2 compact "unknown --dtype 'fp8'" "$BSP" compact b.h5 --dtype fp8 -o x.h5
err 2 compact "--pow2 needs --dtype int8" "$BSP" compact b.h5 --pow2 -o x.h5
err 2 compact "--calib-images must be at least 1" "$BSP" compact b.h5 --dtype int8 --calib-images 0 -o x.h5
err 2 compact "no output file" "$BSP" compact b.h5
err 2 compact "is the input file" "$BSP" compact b.h5 -o b.h5
err 1 compact "cannot read 'missing\.h5'" "$BSP" compact missing.h5 -o x.h5
echo junk >junk.h5
err 1 compact "cannot read 'junk\.h5': not an HDF5 file" "$BSP" compact junk.h5 -o x.h5
err 2 compact "model is required" "$BSP" compact
no_file x.h5

# Int8 never quantises a NaN or an infinity: calibration outputs must be
# finite. bf16 refuses a finite weight that rounds to infinity.
"$MAKE_DATA_H5" cd.h5 32 28 28 1 10
overflowing_model k.h5 huge.h5
/usr/bin/python3 - <<'PY' || fail "python3 h5py"
import h5py
with h5py.File("huge.h5", "r+") as f:
    d = f["graph/nodes/conv1.conv/weight"]
    w = d[...]
    w.flat[5] = 3.4e38
    d[...] = w
PY
err 1 compact "calibration: node 'conv[1-4]\.[a-z]+' outputs nan or infinite values on calibration images 0 to [0-9]+ \(the model overflows float32; int8 cannot quantise it\)" \
  "$BSP" compact huge.h5 --dtype int8 --calib cd.h5 -o x.h5
err 1 compact "layer 'conv1\.conv': weight 3\.4e\+38 at index 5 overflows bf16" "$BSP" compact huge.h5 --dtype bf16 -o x.h5
no_file x.h5
no_temp_files .

finish
