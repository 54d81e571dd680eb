#!/usr/bin/env bash
# Activation rules (bsp-format(5), ACTIVATION SPARSITY): bsp prune
# --act-threshold sets them, info shows them, eval's engines and int8 apply
# them, export refuses them, and bad input is one clear error.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-cnn --seed 2 -o m.h5
"$MAKE_DATA_H5" d.h5 64 28 28 1 10 || fail "make_data_h5"

# Setting: every layer but the first conv by default.
ok "$BSP" prune m.h5 --act-threshold 0.5 -o a.h5
out_has '^conv2\.conv$'
out_has '^fc2$'
out_has '^activation threshold 0\.5: 5 layers, input blocks 1x8x8$'
CHECKS=$((CHECKS + 1))
grep -q '^conv1\.conv' "$WORK/.out" && fail "the first conv got a rule by default"
ok "$BSP" info a.h5
out_has 'act rule$'
out_has '^conv1\.conv +conv2d .* -$'
out_has '^conv3\.conv +conv2d .* 0\.5 1x8x8$'
ok "$BSP" info a.h5 --json
cp "$WORK/.out" a.json
CHECKS=$((CHECKS + 1))
python3 - a.json <<'PY' || fail "info --json act fields"
import json, sys
d = json.load(open(sys.argv[1]))
L = {l["name"]: l for l in d["layers"]}
assert L["conv2.conv"]["act_threshold"] == 0.5 and L["conv2.conv"]["act_block"] == [1, 8, 8], L["conv2.conv"]
assert L["conv1.conv"]["act_threshold"] is None and L["conv1.conv"]["act_block"] is None
assert L["pool1"]["act_threshold"] is None
assert d["format_version"] == "1.3"
PY
ok "$BSP" prune m.h5 --act-threshold 0.25 --act-block 2x4x16 --layers '^conv[134]' --include-first --json -o b.h5
cp "$WORK/.out" b.json
CHECKS=$((CHECKS + 1))
[ "$(json_get b.json '(d["act_block"], d["layers"], d["act_threshold"], d["output"])')" = "([2, 4, 16], ['conv1.conv', 'conv3.conv', 'conv4.conv'], 0.25, 'b.h5')" ] ||
  fail "prune --act-threshold --json: $(cat b.json)"

# Eval: both engines apply the rules (the same logits to rounding), and the
# rules change the logits; threshold 0 removes them (bit-identical to m.h5).
for e in net runner; do
  BSP_EVAL_ENGINE=$e ok "$BSP" eval a.h5 --data d.h5 --logits a_$e.npy
  BSP_EVAL_ENGINE=$e ok "$BSP" eval m.h5 --data d.h5 --logits m_$e.npy
done
ok "$BSP" prune a.h5 --act-threshold 0 -o z.h5
out_has '^activation rules removed: 5 layers, input blocks 1x8x8$'
ok "$BSP" info z.h5
CHECKS=$((CHECKS + 1))
grep -q 'act rule' "$WORK/.out" && fail "info shows an act rule column after removal"
ok "$BSP" eval z.h5 --data d.h5 --logits z.npy
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - <<'PY' || fail "eval logits with activation rules"
import numpy as np
a_net, a_run = np.load("a_net.npy"), np.load("a_runner.npy")
m_net = np.load("m_net.npy")
assert np.abs(a_net - a_run).max() < 1e-3, np.abs(a_net - a_run).max()
assert np.abs(a_net - m_net).max() > 1e-3, "the rules changed nothing"
assert np.array_equal(np.load("z.npy"), m_net)
PY

# int8: compacted with the rules, evaluated on the int8 runner.
ok "$BSP" compact a.h5 --dtype int8 --calib d.h5 -o q.h5
ok "$BSP" eval q.h5 --data d.h5
out_has 'kernels runner \(int8\)'

# ONNX export refuses; nothing is written. (The AIE2 back end applies the
# rules: test_sim.sh, test_estimate.sh.)
err 1 export "layer 'conv2\.conv' has an activation rule .*--drop-act-rules" "$BSP" export a.h5 -o a.onnx
no_file a.onnx
ok "$BSP" export a.h5 --drop-act-rules -o a.onnx
CHECKS=$((CHECKS + 1))
[ "$(grep -c "^bsp export: warning: layer '.*': activation rule (act_threshold 0.5, block 1x8x8) not exported" "$WORK/.err")" = 5 ] ||
  fail "export --drop-act-rules warnings: $(cat "$WORK/.err")"

# Bad options: exit 2, one line, no output file.
err 2 prune "--act-threshold -1 is not a finite number >= 0" "$BSP" prune m.h5 --act-threshold -1 -o x.h5
err 2 prune "--act-threshold nan is not a finite number >= 0" "$BSP" prune m.h5 --act-threshold nan -o x.h5
err 2 prune "--act-block '1x0x8' is not BHxBWxBC" "$BSP" prune m.h5 --act-threshold 1 --act-block 1x0x8 -o x.h5
err 2 prune "--act-block '1x8' is not BHxBWxBC" "$BSP" prune m.h5 --act-threshold 1 --act-block 1x8 -o x.h5
err 2 prune "--act-block '1x8x99999999' is not" "$BSP" prune m.h5 --act-threshold 1 --act-block 1x8x99999999 -o x.h5
err 2 prune "--layers 'nomatch' selects no conv2d or dense layer" "$BSP" prune m.h5 --act-threshold 1 --layers nomatch -o x.h5
err 2 prune "--density prunes weights: it does not go with --act-threshold" \
  "$BSP" prune m.h5 --act-threshold 1 --density 0.5 -o x.h5
err 2 prune "--act-block needs --act-threshold" "$BSP" prune m.h5 --act-block 1x8x8 --density 0.5 -o x.h5
no_file x.h5
no_temp_files .

# A file edited by another tool: refused on reading, naming the node.
edit() {
  cp a.h5 "$1"
  /usr/bin/python3 - "$@" <<'PY' || fail "python3 h5py"
import h5py, numpy as np, sys
path, node, key, value = sys.argv[1:5]
with h5py.File(path, "r+") as f:
    g = f["graph/nodes/" + node]
    if key in g.attrs: del g.attrs[key]
    g.attrs[key] = np.array(eval(value))
PY
}
edit e1.h5 conv2.conv act_threshold "-0.5"
err 1 info "node 'conv2\.conv': act_threshold -0\.5 is not a finite number >= 0" "$BSP" info e1.h5
edit e2.h5 pool1 act_threshold "0.5"
err 1 info "node 'pool1': only conv2d and dense layers take an activation rule" "$BSP" info e2.h5
edit e3.h5 conv2.conv act_block "[1, 0, 8]"
err 1 info "node 'conv2\.conv': act_block \[1, 0, 8\] has a size out of range" "$BSP" info e3.h5
edit e4.h5 conv2.conv act_threshold "float('nan')"
err 1 eval "node 'conv2\.conv': act_threshold nan" "$BSP" eval e4.h5 --data d.h5

# A format 1.1 file (no rules) still reads.
cp m.h5 old.h5
/usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('old.h5', 'r+'); f.attrs['format_version'] = np.array([1, 1], np.int64)" ||
  fail "python3 h5py"
ok "$BSP" info old.h5

finish
