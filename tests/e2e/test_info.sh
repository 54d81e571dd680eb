#!/usr/bin/env bash
# bsp info: the table, the JSON schema, and every kind of bad input file.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-cnn -o m.h5
ok "$BSP" info m.h5
out_has '^name +op +output +params +MACs +density +pattern'
out_has '^conv2\.conv +conv2d +\[28, 28, 32\] +9,216 +7,225,344 +1\.0000 +-'
out_has '^total: 870,826 params \(870,826 nonzero\), 19,094,528 MACs'
out_has '^  bsp init --arch fmnist-cnn -o m\.h5'

ok "$BSP" info --json m.h5
cp "$WORK/.out" m.json
CHECKS=$((CHECKS + 1))
python3 - m.json <<'PY' || fail "JSON schema"
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d) >= {"layers", "totals", "history"}, d.keys()
for l in d["layers"]:
    assert set(l) >= {"name", "op", "output_shape", "params", "macs", "density", "pattern"}, l
    if l["op"] in ("conv2d", "dense"):
        assert l["density"] == 1.0 and l["pattern"] is None, l
    else:
        assert l["density"] is None, l
t = d["totals"]
assert t == {"params": 870826, "macs": 19094528, "nonzero_params": 870826, "bytes": 3484840}, t
assert d["history"] == ["bsp init --arch fmnist-cnn -o m.h5"], d["history"]
assert d["input_shape"] == [28, 28, 1]
PY

ok "$BSP" info --weighted m.h5
CHECKS=$((CHECKS + 1))
grep -q relu "$WORK/.out" && fail "--weighted lists a relu"

# stdin
CHECKS=$((CHECKS + 1))
"$BSP" info - <m.h5 | grep -q '^total: 870,826 params' || fail "info from stdin"

# Bad inputs: one line, exit 1.
err 1 info "cannot read 'missing\.h5': no such file or directory" "$BSP" info missing.h5
echo "hello" >text.h5
err 1 info "cannot read 'text\.h5': not an HDF5 file" "$BSP" info text.h5
"$MAKE_PLAIN_H5" plain.h5
err 1 info "cannot read 'plain\.h5': not a bsp model file" "$BSP" info plain.h5
head -c 100000 m.h5 >trunc.h5
err 1 info "cannot read 'trunc\.h5': " "$BSP" info trunc.h5
head -c 2000 m.h5 >trunc2.h5
err 1 info "cannot read 'trunc2\.h5': " "$BSP" info trunc2.h5
: >empty.h5
err 1 info "cannot read 'empty\.h5': not an HDF5 file" "$BSP" info empty.h5
err 1 info "cannot read '<stdin>': not an HDF5 file" "$BSP" info - <text.h5
err 1 info "is a directory" "$BSP" info .
err 2 info "not expected|--frob" "$BSP" info m.h5 --frob

# --svg: the block masks as a picture, well-formed, one heading per weighted
# layer, pruned blocks in their grey.
"$BSP" prune m.h5 --pattern block:8x8 --density 0.5 -q -o pm.h5 || fail "prune for --svg"
ok "$BSP" info pm.h5 --svg masks.svg
out_has '^total: '
CHECKS=$((CHECKS + 1))
xmllint --noout masks.svg || fail "masks.svg is not well-formed XML"
CHECKS=$((CHECKS + 1))
[ "$(grep -c 'density 0.500</text>' masks.svg)" -ge 4 ] || fail "masks.svg: too few pruned layers headed"
CHECKS=$((CHECKS + 1))
grep -q 'fill="#ececec"' masks.svg || fail "masks.svg: no pruned block drawn"
err 2 info "--svg -" "$BSP" info pm.h5 --svg -
err 1 info "cannot" "$BSP" info pm.h5 --svg nodir/masks.svg
no_file nodir

finish
