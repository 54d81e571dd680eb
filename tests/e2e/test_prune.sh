#!/usr/bin/env bash
# bsp prune: every pattern, the report, incremental pruning, and bad input.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-cnn --seed 2 -o m.h5

# The default: 8x8 blocks per layer, first conv left dense.
ok "$BSP" prune m.h5 --density 0.5 -o p.h5
out_has '^layer +op +pattern +target +before +density +l2 kept$'
out_has '^conv2\.conv +conv2d +block:8x8 +0\.5000 +1\.0000 +0\.5000 +0\.[0-9]{4}$'
out_has '^block:8x8, layer scope: [0-9,]+ of 869,888 weights kept in 5 layers, density 0\.50[0-9]{2} \(target 0\.5000\), L2 norm kept 0\.[0-9]{4}$'
CHECKS=$((CHECKS + 1))
grep -q '^conv1\.conv' "$WORK/.out" && fail "the first conv was pruned by default"
ok "$BSP" info p.h5
out_has '^conv1\.conv +conv2d .* 1\.0000 +-$'
out_has '^conv2\.conv +conv2d .* 0\.5000 +block:8x8$'
out_has '^fc1 +dense .* 0\.5000 +block:8x8$'
out_has '^  bsp prune m\.h5 --density 0\.5 -o p\.h5$'

# --json: the schema of bsp-prune(1).
ok "$BSP" prune m.h5 -d 0.5 --json -o pj.h5
cp "$WORK/.out" p.json
CHECKS=$((CHECKS + 1))
python3 - p.json <<'PY' || fail "prune --json schema"
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d) == {"pattern", "scope", "criterion", "target_density", "density", "l2_kept", "weights", "kept",
                  "output", "layers", "warnings"}, d.keys()
assert d["pattern"] == "block:8x8" and d["scope"] == "layer" and d["criterion"] == "l2", d
assert d["target_density"] == 0.5 and abs(d["density"] - 0.5) < 0.001 and d["output"] == "pj.h5", d
assert d["weights"] == 869888 and abs(d["kept"] / d["weights"] - d["density"]) < 1e-9
assert 0.6 < d["l2_kept"] < 0.9, d["l2_kept"]
names = [l["name"] for l in d["layers"]]
assert names == ["conv2.conv", "conv3.conv", "conv4.conv", "fc1", "fc2"], names
for l in d["layers"]:
    assert set(l) == {"name", "op", "pattern", "target_density", "density_before", "density", "l2_kept", "weights",
                      "kept", "pruned", "note"}, l
    assert l["pruned"] and l["pattern"] == "block:8x8" and l["density_before"] == 1.0 and l["note"] is None, l
    assert abs(l["density"] - 0.5) * l["weights"] <= 64 * 9, l
assert d["warnings"] == []
PY
# The same command gives the same file (deterministic; the history differs only by name).
ok "$BSP" prune m.h5 -d 0.5 --json -o pj2.h5 --threads 1
CHECKS=$((CHECKS + 1))
cmp -s <(sed 's/pj2\.h5/pj.h5/' "$WORK/.out") p.json || fail "--threads 1 gives another report"

# Every pattern, both scopes.
for spec in "nm:2:4" "nm:2:8 -d 0.25" "tw:64 -d 0.3" "tvw:64 -d 0.3" "tw:32 -d 0.4 --scope layer" \
  "unstructured -d 0.2" "unstructured -d 0.2 --scope global" "channel -d 0.5" \
  "block:4x4 -d 0.3 --criterion variance --scope global" "block:16x8 -d 0.6 --criterion l1" \
  "block:8x8+nm:2:4 -d 0.25" "block:8x8+nm:1:4 -d 0.2 --scope global"; do
  # shellcheck disable=SC2086
  ok "$BSP" prune m.h5 -p $spec --json -o q.h5 || continue
  cp "$WORK/.out" q.json
  CHECKS=$((CHECKS + 1))
  python3 - q.json "$spec" <<'PY' || fail "prune -p $spec: report"
import json, sys
d = json.load(open(sys.argv[1]))
spec = sys.argv[2].split()
target = 0.5 if spec[0] == "nm:2:4" else float(spec[spec.index("-d") + 1])
assert abs(d["density"] - target) < 0.02, (d["density"], target)
assert d["pattern"] == spec[0], d["pattern"]
assert all(l["pattern"] == spec[0] for l in d["layers"])
PY
  ok "$BSP" info --json q.h5
  CHECKS=$((CHECKS + 1))
  python3 -c "
import json, sys
d = json.load(sys.stdin)
pats = {l['name']: l['pattern'] for l in d['layers'] if l['op'] in ('conv2d', 'dense')}
assert pats['conv1.conv'] is None and pats['fc1'] == '${spec%% *}', pats
" <"$WORK/.out" || fail "bsp info after -p $spec"
done

# Combined: tw first, then 2:4 along Cin among the kept weights; the
# result is 2:4 in every group of 4 input channels (bsp info reads and
# checks it) and the N:M step may remove less than half where the tiles
# already left groups of fewer than 2.
ok "$BSP" prune m.h5 -p tw:64+nm:2:4 -d 0.25 --json -o tn.h5
CHECKS=$((CHECKS + 1))
[ "$(json_get "$WORK/.out" "d['pattern'] == 'tw:64+nm:2:4' and 0.2 < d['density'] <= 0.5")" = True ] ||
  fail "tw:64+nm:2:4 report"
ok "$BSP" info tn.h5
out_has 'tw:64\+nm:2:4'
ok "$BSP" compact tn.h5 -o tnc.h5
# A block:8x8 mask nests the combined pattern: blocks stay inside, 2:4 inside them.
ok "$BSP" prune m.h5 -p block:8x8 -d 0.5 -o b5.h5
ok "$BSP" prune b5.h5 -p block:8x8+nm:2:4 -d 0.25 -o b25.h5
ok "$BSP" compact b25.h5 -o b25c.h5
ok "$BSP" info b25c.h5
out_has 'block:8x8\+nm:2:4 +nm '

# tw defaults to global scope, nm has no density of its own.
ok "$BSP" prune m.h5 -p tw -d 0.5 -n
out_has '^tw:128, global scope'
ok "$BSP" prune m.h5 -p nm:2:4 -d 0.5 -n
out_has 'density 0\.5000 \(target 0\.5000\)'

# Incremental: masks only shrink; a higher density changes nothing.
ok "$BSP" prune p.h5 -d 0.25 --json -o p2.h5
CHECKS=$((CHECKS + 1))
json_get "$WORK/.out" 'all(l["density_before"] > 0.49 and abs(l["density"] - 0.25) < 0.02 for l in d["layers"])' |
  grep -qx True || fail "incremental prune densities"
ok "$BSP" prune p2.h5 -d 0.5 --json -n
CHECKS=$((CHECKS + 1))
json_get "$WORK/.out" 'all(l["density"] == l["density_before"] for l in d["layers"])' | grep -qx True ||
  fail "a higher density changed a mask"
ok "$BSP" prune p.h5 -p block:4x4 -d 0.4 -o p3.h5
err 2 prune "layer 'conv2\.conv' has a block:4x4 mask: block:8x8 cannot nest in it \(use --force" \
  "$BSP" prune p3.h5 -d 0.3 -o p4.h5
no_file p4.h5
err 2 prune "has a block:8x8 mask: nm:2:4 cannot nest in it" "$BSP" prune p.h5 -p nm:2:4 -o p4.h5
no_file p4.h5
ok "$BSP" prune p.h5 -p nm:2:4 --force -o p4.h5
ok "$BSP" info p4.h5
out_has '^conv2\.conv .* nm:2:4$'
# --in-place rewrites the input atomically.
cp p.h5 inplace.h5
ok "$BSP" prune inplace.h5 -d 0.3 --in-place -q
CHECKS=$((CHECKS + 1))
[ -s "$WORK/.out" ] && fail "--quiet printed a report"
ok "$BSP" info inplace.h5
out_has '^conv2\.conv .* 0\.3[0-9]{3} +block:8x8$'

# Layer selection.
ok "$BSP" prune m.h5 -d 0.5 --include-first -p unstructured -n
out_has '^conv1\.conv +conv2d +unstructured'
ok "$BSP" prune m.h5 -d 0.5 --layers '^conv' -n
out_has 'kept in 3 layers'
ok "$BSP" prune m.h5 -d 0.5 --exclude '^fc' -n
out_has 'kept in 3 layers'
printf '# budget\nconv2.conv 0.75\nfc1 0.25 # big\nconv1.conv 1.0\n' >dens.txt
ok "$BSP" prune m.h5 --density-file dens.txt --json -o pd.h5
cp "$WORK/.out" pd.json
CHECKS=$((CHECKS + 1))
python3 - pd.json <<'PY' || fail "--density-file"
import json, sys
d = json.load(open(sys.argv[1]))
l = {x["name"]: x for x in d["layers"]}
assert set(l) == {"conv2.conv", "fc1"}, l.keys()
assert l["conv2.conv"]["target_density"] == 0.75 and l["fc1"]["target_density"] == 0.25
assert d["target_density"] is None
assert len(d["warnings"]) == 1 and "'conv1.conv', which is not selected" in d["warnings"][0], d["warnings"]
PY
CHECKS=$((CHECKS + 1))
grep -q "^bsp prune: warning: density file 'dens.txt' names 'conv1.conv'" "$WORK/.err" || fail "warning on stderr"
# nm leaves a layer whose Cin is not a multiple of M dense, with a warning.
ok "$BSP" prune m.h5 -p nm:2:4 --include-first -o pn.h5
CHECKS=$((CHECKS + 1))
grep -q "^bsp prune: warning: layer 'conv1\.conv' left as it was: 1 input channels are not a multiple of M = 4" \
  "$WORK/.err" || fail "nm warning: $(cat "$WORK/.err")"
ok "$BSP" prune m.h5 -p nm:2:4 --include-first -n
out_has 'kept in 5 layers \(1 left as it was\), density'
out_has "^conv1\\.conv +conv2d +- +0\\.5000 +1\\.0000 +1\\.0000 +- +input channels \\(1\\) not a multiple of 4: left as it was$"

# stdin and stdout; the report moves to stderr.
CHECKS=$((CHECKS + 1))
"$BSP" prune - -d 0.5 -o - <m.h5 >piped.h5 2>piped.err || fail "prune in a pipe"
grep -q '^block:8x8, layer scope' piped.err || fail "report not on stderr with -o -"
ok "$BSP" info piped.h5
out_has '^conv2\.conv .* 0\.5000 +block:8x8$'
# --dry-run writes nothing.
ok "$BSP" prune m.h5 -d 0.5 -n
no_file m.h5.tmp
no_temp_files .

# Bad input: one line, exit 2 (usage) or 1 (runtime), no output file.
"$MAKE_TEST_MODEL" no-weights noweights.h5
# (a NaN weight: bsp refuses to write one, so h5py puts it in)
ok "$BSP" init --arch fmnist-cnn -o nan.h5
/usr/bin/python3 -c "
import h5py, numpy as np
d = h5py.File('nan.h5', 'r+')['graph/nodes/conv2.conv/weight']
a = d[()]; a.flat[17] = np.nan; d[...] = a" || fail "nan.h5"
for bad in \
  "2|--density 0 is not in \(0, 1\]|-d 0" \
  "2|--density 1\.5 is not in \(0, 1\]|-d 1.5" \
  "2|--density -0\.5 is not in|-d -0.5" \
  "2|could not convert: --density = abc|-d abc" \
  "2|unknown pattern 'bloc:8x8' \(expected block:RxC|-p bloc:8x8 -d 0.5" \
  "2|bad pattern 'nm:4:2': N \(4\) is larger than M \(2\)|-p nm:4:2" \
  "2|bad pattern 'block:0x8': block rows must be at least 1|-p block:0x8 -d 0.5" \
  "2|bad pattern 'tw:0': tile size G must be at least 1|-p tw:0 -d 0.5" \
  "2|--density 0\.6 is above 0\.5, the most tvw:128 keeps|-p tvw -d 0.6" \
  "2|--density 0\.6 is above 0\.5, the most block:8x8\+nm:2:4 keeps|-p block:8x8+nm:2:4 -d 0.6" \
  "2|only block:RxC and tw:G combine with nm:N:M|-p nm:2:4+nm:2:4 -d 0.25" \
  "2|what follows '\+' must be nm:N:M|-p block:8x8+tw:4 -d 0.25" \
  "2|--density 0\.3 contradicts nm:2:4|-p nm:2:4 -d 0.3" \
  "2|--density is required with block:8x8|-p block:8x8" \
  "2|unknown criterion 'l3'|-d 0.5 --criterion l3" \
  "2|unknown scope 'net'|-d 0.5 --scope net" \
  "2|criterion 'variance' applies to block and channel patterns only|-p unstructured -d 0.5 --criterion variance" \
  "2|nm:2:4 keeps 2 of every 4 weights in every layer: it has no global scope|-p nm:2:4 --scope global" \
  "2|--layers 'nosuch' selects no conv2d or dense layer|-d 0.5 --layers nosuch" \
  "2|--layers '\^conv1' selects only the first conv 'conv1\.conv'|-d 0.5 --layers ^conv1" \
  "2|bad --exclude regex '\[\['|-d 0.5 --exclude [[" \
  "2|--exclude '\.' leaves no layer to prune|-d 0.5 --exclude ." \
  "2|--density-file gives per-layer densities: it needs --scope layer|--density-file dens.txt --scope global" \
  "2|--density-file does not apply to nm:2:4|-p nm:2:4 --density-file dens.txt"; do
  IFS='|' read -r code re args <<<"$bad"
  # shellcheck disable=SC2086
  err "$code" prune "$re" "$BSP" prune m.h5 $args -o bad.h5
  no_file bad.h5
done
printf 'conv2.conv 0.5\nnosuch 0.5\n' >unknown.txt
err 2 prune "density file 'unknown\.txt' names 'nosuch', which is not a conv2d or dense layer" \
  "$BSP" prune m.h5 --density-file unknown.txt -o bad.h5
printf 'conv2.conv 0.5\nfc1 half\n' >badnum.txt
err 2 prune "density file 'badnum\.txt' line 2: 'half' is not a number" "$BSP" prune m.h5 --density-file badnum.txt -o bad.h5
printf 'conv2.conv 1.5\n' >range.txt
err 2 prune "density file 'range\.txt' line 1: density 1\.5 is not in \(0, 1\]" \
  "$BSP" prune m.h5 --density-file range.txt -o bad.h5
err 1 prune "cannot read density file 'missing\.txt': no such file or directory" \
  "$BSP" prune m.h5 --density-file missing.txt -o bad.h5
err 1 prune "the model has no conv2d or dense layer to prune" "$BSP" prune noweights.h5 -d 0.5 -o bad.h5
err 1 prune "cannot read 'nan\.h5': node 'conv2\.conv': parameter 'weight' holds nan at index 17" "$BSP" prune nan.h5 -d 0.5 -o bad.h5
err 1 prune "cannot read 'missing\.h5': no such file or directory" "$BSP" prune missing.h5 -d 0.5 -o bad.h5
err 2 prune "no output file" "$BSP" prune m.h5 -d 0.5
err 2 prune "output 'm\.h5' is the input file" "$BSP" prune m.h5 -d 0.5 -o m.h5
err 2 prune "--json and '-o -' would both write to stdout" "$BSP" prune m.h5 -d 0.5 --json -o -
err 2 prune "--dry-run writes no file" "$BSP" prune m.h5 -d 0.5 -n -o bad.h5
err 2 prune "model is required" "$BSP" prune -d 0.5 -o bad.h5
no_file bad.h5
# A failed run leaves an existing output untouched.
cp p.h5 keep.h5
err 2 prune "nm:2:4 cannot nest" "$BSP" prune p.h5 -p nm:2:4 -o keep.h5
CHECKS=$((CHECKS + 1))
cmp -s p.h5 keep.h5 || fail "a failed prune changed its output file"
no_temp_files .

finish
