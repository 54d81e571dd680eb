#!/usr/bin/env bash
# bsp bench on a model with activation rules (bsp-bench(1), Activation
# rules): --data drives it with real images, the per-layer zero-block
# fractions and the no-skip times are reported in the table and in --json,
# a fraction matches what Python computes from the same images, and bad
# --data / --limit are clear errors.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-cnn --seed 3 -o m.h5
"$MAKE_DATA_H5" d.h5 64 28 28 1 10 || fail "make_data_h5"   # /test: 16 images
# Every layer, the first conv too: its input is the normalised image itself,
# whose fraction Python can compute.
ok "$BSP" prune m.h5 --act-threshold 0.6 --include-first -o a.h5

ok "$BSP" bench a.h5 --baseline dense --reps 2 --data d.h5 --limit 12 --batch 4 --json
cp "$WORK/.out" a.json
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - a.json a.h5 d.h5 <<'PY' || fail "bench --data --json activation fields"
import json, sys
import h5py, numpy as np
d = json.load(open(sys.argv[1]))
assert d["act_data"] == "d.h5" and d["act_images"] == 12, (d["act_data"], d["act_images"])
L = {l["name"]: l for l in d["layers"]}
for name in ["conv1.conv", "conv2.conv", "conv3.conv", "conv4.conv", "fc1", "fc2"]:
    l = L[name]
    f = l["zero_block_fraction"]
    assert f is not None and 0.0 <= f <= 1.0, (name, f)
    assert l["noskip_ms"] is not None and l["noskip_ms"] >= 0, l
    assert l["skip_speedup"] is not None and l["skip_speedup"] > 0, l
for name in ["pool1", "flatten"]:
    assert L[name]["zero_block_fraction"] is None, L[name]
assert d["total"]["noskip_ms"] > 0 and d["total"]["skip_speedup"] > 0, d["total"]
# conv1's input: the first 12 test images, normalised by the model's
# statistics or else their own (population std), in 1x8x1 blocks along W.
with h5py.File(sys.argv[3], "r") as h:
    x = h["test/images"][:12].astype(np.float64) / 255.0
with h5py.File(sys.argv[2], "r") as h:
    a = h["graph/nodes/input"].attrs
    mean, std = (a["norm_mean"][0], a["norm_std"][0]) if "norm_mean" in a else (x.mean(), x.std())
v = ((x - mean) / std).astype(np.float32)[..., 0]        # [12, 28, 28]
t = np.float32(0.6)
z = tot = 0
for w0 in range(0, 28, 8):
    blk = np.abs(v[:, :, w0:w0 + 8])                     # [12, 28, <=8]
    z += int((blk < t).all(axis=2).sum())
    tot += blk.shape[0] * blk.shape[1]
want = z / tot
got = L["conv1.conv"]["zero_block_fraction"]
assert abs(got - want) <= 2.0 / tot, (got, want)
PY

# The table: the extra columns and the total line, the data named.
ok "$BSP" bench a.h5 --baseline dense --reps 1 --data d.h5 --limit 4
out_has 'zero-block fractions over 4 images of d\.h5'
out_has 'zero blk +no-skip ms +skip$'
out_has '^conv2\.conv +conv2d +dense .* [01]\.[0-9]{3} +[0-9.]+ +[0-9.]+x$'
out_has '^activation skipping: sparse [0-9.]+ ms, without skipping [0-9.]+ ms, saved -?[0-9.]+ ms'
# Random inputs: said so, and act_data null.
ok "$BSP" bench a.h5 --baseline dense --reps 1
out_has 'zero-block fractions over 1 random images \(pass --data for real ones\)'
ok "$BSP" bench a.h5 --baseline dense --reps 1 --json
cp "$WORK/.out" r.json
CHECKS=$((CHECKS + 1))
[ "$(json_get r.json '(d["act_data"], d["act_images"])')" = "(None, 1)" ] || fail "random act fields: $(cat r.json)"

# int8 with the rules: the int8 block-sparse kernel skips; the same fields.
ok "$BSP" compact a.h5 --dtype int8 --calib d.h5 -o q.h5
ok "$BSP" bench q.h5 --baseline dense --reps 1 --data d.h5 --limit 8 --json
cp "$WORK/.out" q.json
CHECKS=$((CHECKS + 1))
json_get q.json 'all(l["zero_block_fraction"] is None or 0 <= l["zero_block_fraction"] <= 1 for l in d["layers"]) and d["layers"][2]["zero_block_fraction"] is not None and d["act_images"] == 8' |
  grep -qx True || fail "int8 bench act fields: $(cat q.json)"

# A model without rules: none of the new fields, the table as before.
ok "$BSP" bench m.h5 --baseline dense --reps 1 --data d.h5 --limit 4 --json
cp "$WORK/.out" m.json
CHECKS=$((CHECKS + 1))
json_get m.json '"act_data" in d or "noskip_ms" in d["total"] or any("zero_block_fraction" in l for l in d["layers"])' |
  grep -qx False || fail "a model without rules got activation fields"
ok "$BSP" bench m.h5 --baseline dense --reps 1
CHECKS=$((CHECKS + 1))
grep -q 'zero blk\|activation' "$WORK/.out" && fail "a model without rules got activation columns"

# Bad input.
err 1 bench "nope" "$BSP" bench a.h5 --data nope.h5
"$MAKE_DATA_H5" rgb.h5 16 32 32 3 10 || fail "make_data_h5"
err 1 bench "data .rgb\.h5. does not fit model" "$BSP" bench a.h5 --data rgb.h5
err 1 bench "fewer than --batch 8" "$BSP" bench a.h5 --data d.h5 --limit 4 --batch 8
err 2 bench "--limit needs --data" "$BSP" bench a.h5 --limit 4
err 2 bench "--limit must be at least 1" "$BSP" bench a.h5 --data d.h5 --limit 0
err 2 bench "--data excludes --seed|--seed excludes --data" "$BSP" bench a.h5 --data d.h5 --seed 3

finish
