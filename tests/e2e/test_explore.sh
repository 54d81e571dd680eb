#!/usr/bin/env bash
# bsp explore (man/bsp-explore.1): both modes on a small fmnist-cnn trained
# briefly on synthetic data, their outputs checked with bsp eval, info and
# prune --density-file; the log and --resume; bad input is one clear error.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-cnn --seed 1 -o m0.h5
"$MAKE_DATA_H5" d.h5 1200 28 28 1 10 || fail "make_data_h5"
ok "$BSP" finetune m0.h5 --data d.h5 --epochs 1 --lr 0.02 --no-augment -q -o m.h5

# --activations: the first 200 test images held out, so that bsp eval
# --limit 200 sees the same ones.
ok "$BSP" explore m.h5 --data d.h5 --activations --max-drop 1 --holdout 200 --holdout-first \
  --ladder 0.1,0.3,0.6 -o a.h5 --front f.json --log l.jsonl
out_has '^[0-9] of 5 layers with a rule: accuracy .* on 200 held-out images'
CHECKS=$((CHECKS + 1))
grep -q '^\[ *[0-9.]* s\] search ' "$WORK/.err" || fail "no progress lines: $(head -3 "$WORK/.err")"
ok "$BSP" info a.h5 --json
cp "$WORK/.out" a.json
ok "$BSP" eval m.h5 --data d.h5 --limit 200 --json
cp "$WORK/.out" m_eval.json
ok "$BSP" eval a.h5 --data d.h5 --limit 200 --json
cp "$WORK/.out" a_eval.json
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - <<'PY' || fail "explore --activations output"
import json
front = json.load(open("f.json"))
rows = front["front"]
info = json.load(open("a.json"))
base, after = json.load(open("m_eval.json")), json.load(open("a_eval.json"))
assert front["holdout"] == 200 and front["max_drop"] == 1, front
assert rows[0]["step"] == 0 and rows[0]["layer"] is None, rows[0]
assert len(rows) >= 2, "the search kept no step"
# The front rises in MACs saved and stays within the budget.
for a, b in zip(rows, rows[1:]):
    assert b["macs_saved_fraction"] > a["macs_saved_fraction"], (a, b)
for r in rows:
    assert r["drop"] <= 1 + 1e-9, r
    # The estimated AIE2 time on the default target (with act_block_skip).
    assert r["aie2_time_s"] > 0 and r["aie2_speedup"] > 0, r
assert rows[0]["aie2_speedup"] == 1, rows[0]
assert rows[-1]["aie2_time_s"] < rows[0]["aie2_time_s"], (rows[0], rows[-1])
for r in rows:
    assert 0 <= r["zero_block_fraction"] <= 1 and 0 <= r["act_bytes_saved_fraction"] <= 1, r
# The output holds the last point's rules: its threshold for each layer changed.
L = {l["name"]: l for l in info["layers"]}
last = {}
for r in rows[1:]:
    last[r["layer"]] = r["threshold"]
for name, t in last.items():
    assert L[name]["act_threshold"] == t and L[name]["act_block"] == [1, 8, 8], (name, L[name], t)
assert L["conv1.conv"]["act_threshold"] is None  # the first conv is left out by default
for name, l in L.items():
    if name not in last:
        assert l["act_threshold"] is None, l
# The history records the command.
assert info["history"][-1].startswith("bsp explore m.h5 "), info["history"]
# Measured again by bsp eval (the trainer's forward, the same images): the
# explore's own accuracies, the drop within the budget (one image of slack
# for rounding between the engines).
assert abs(base["accuracy"] - front["baseline_accuracy"]) <= 1 / 200 + 1e-9, (base, front["baseline_accuracy"])
assert abs(after["accuracy"] - rows[-1]["accuracy"]) <= 1 / 200 + 1e-9, (after, rows[-1])
drop = (base["accuracy"] - after["accuracy"]) * 100
assert drop <= 1 + 100 / 200 + 1e-9, drop
# Layers carry their sensitivity.
for l in front["layers"]:
    assert l["sensitivity"] and all(s["drop"] is not None for s in l["sensitivity"]), l
PY

# The log: a header, then one line per evaluation; resuming reuses every
# one (nothing is evaluated but the baseline) and makes the same front,
# also with the CSV format.
CHECKS=$((CHECKS + 1))
[ "$(head -1 l.jsonl | python3 -c 'import json,sys; print(json.load(sys.stdin)["mode"])')" = activations ] ||
  fail "log header: $(head -1 l.jsonl)"
ok "$BSP" explore m.h5 --data d.h5 --activations --max-drop 1 --holdout 200 --holdout-first \
  --ladder 0.1,0.3,0.6 -o a2.h5 --front f2.csv --resume l.jsonl
out_has '; 1 evaluations \([0-9]+ reused\)'
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - <<'PY' || fail "resumed front"
import csv, json
rows = json.load(open("f.json"))["front"]
got = list(csv.DictReader(open("f2.csv")))
assert len(got) == len(rows), (len(got), len(rows))
for r, g in zip(rows, got):
    assert g["layer"] == (r["layer"] or ""), (r, g)
    assert float(g["accuracy"]) == r["accuracy"] and float(g["macs_saved_fraction"]) == r["macs_saved_fraction"], (r, g)
PY
# A smaller budget reuses the log too (max-drop is not part of it).
ok "$BSP" explore m.h5 --data d.h5 --activations --max-drop 0 --holdout 200 --holdout-first \
  --ladder 0.1,0.3,0.6 -o a3.h5 --resume l.jsonl -q
# Another model or other settings: refused, nothing written.
err 1 explore "cannot resume from 'l.jsonl': it was made for another model" \
  "$BSP" explore m0.h5 --data d.h5 --activations --max-drop 1 --holdout 200 --holdout-first --ladder 0.1,0.3,0.6 \
  -o x.h5 --resume l.jsonl
err 1 explore "cannot resume from 'l.jsonl': it was made with ladders" \
  "$BSP" explore m.h5 --data d.h5 --activations --max-drop 1 --holdout 200 --holdout-first --ladder 0.2,0.5 \
  -o x.h5 --resume l.jsonl
no_file x.h5

# --finetune-epochs: the rules stay, the weights change, the front ends
# with the finetuned model's row.
ok "$BSP" explore m.h5 --data d.h5 --activations --max-drop 100 --holdout 100 --ladder 0.3 --layers '^conv4' \
  --finetune-epochs 1 -o ft.h5 --front ft.csv
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - <<'PY' || fail "explore --finetune-epochs"
import csv, h5py, numpy as np
rows = list(csv.DictReader(open("ft.csv")))
assert rows[-1]["layer"] == "(finetune)" and rows[-1]["threshold"] == "", rows[-1]
a, b = h5py.File("m.h5", "r"), h5py.File("ft.h5", "r")
def weights(f):
    out = []
    f.visititems(lambda n, o: out.append(np.asarray(o).ravel()) if isinstance(o, h5py.Dataset) and n.endswith("weight") else None)
    return np.concatenate(out)
assert not np.array_equal(weights(a), weights(b)), "finetuning changed no weight"
PY
ok "$BSP" info ft.h5
out_has '^conv4\.conv +conv2d .* 1x8x8$'

# --weights: a density file for bsp prune, overall density 0.5.
ok "$BSP" explore m.h5 --data d.h5 --weights --pattern block:8x8 --density 0.5 --densities 0.5,0.25 \
  --holdout 200 -o w.dens
out_has 'overall density 0\.5000 \(target 0\.5\)'
CHECKS=$((CHECKS + 1))
grep -q '^# use: bsp prune m.h5 --pattern block:8x8 --density-file w.dens' w.dens || fail "density file: $(cat w.dens)"
ok "$BSP" prune m.h5 --pattern block:8x8 --density-file w.dens -o p.h5 --json
cp "$WORK/.out" p.json
# Every selected layer's weight count: a dry run at density 1.
ok "$BSP" prune m.h5 --pattern block:8x8 --density 1 --dry-run --json
cp "$WORK/.out" all.json
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - <<'PY' || fail "density file through bsp prune"
import json
pruned = {l["name"]: l for l in json.load(open("p.json"))["layers"]}
weights = {l["name"]: l["weights"] for l in json.load(open("all.json"))["layers"]}
listed = {}
for line in open("w.dens"):
    f = line.split("#")[0].split()
    if f:
        listed[f[0]] = float(f[1])
assert listed and set(listed) == set(pruned), (listed, list(pruned))
kept = 0
for name, w in weights.items():
    if name in listed:
        assert abs(pruned[name]["density"] - listed[name]) < 0.02, (pruned[name], listed[name])
        kept += pruned[name]["kept"]
    else:
        kept += w  # left dense
overall = kept / sum(weights.values())
assert abs(overall - 0.5) < 0.005, overall
PY

# Bad input: exit 2 (usage) or 1, one line, no output.
err 2 explore "choose what to explore: --activations or --weights" "$BSP" explore m.h5 --data d.h5 -o x.h5
err 2 explore "--activations and --weights do not go together" \
  "$BSP" explore m.h5 --data d.h5 --activations --weights --max-drop 1 -o x.h5
err 2 explore "--max-drop -1 is not a finite number >= 0" \
  "$BSP" explore m.h5 --data d.h5 --activations --max-drop -1 -o x.h5
err 2 explore "--activations needs --max-drop" "$BSP" explore m.h5 --data d.h5 --activations -o x.h5
err 2 explore "--density 1.5 is not in \(0, 1\]" \
  "$BSP" explore m.h5 --data d.h5 --weights --pattern block:8x8 --density 1.5 -o x.dens
err 2 explore "--density 0 is not in \(0, 1\]" \
  "$BSP" explore m.h5 --data d.h5 --weights --pattern block:8x8 --density 0 -o x.dens
err 2 explore "nm:2:4 fixes every layer's density" \
  "$BSP" explore m.h5 --data d.h5 --weights --pattern nm:2:4 --density 0.5 -o x.dens
err 2 explore "--max-drop goes with --activations" \
  "$BSP" explore m.h5 --data d.h5 --weights --pattern block:8x8 --density 0.5 --max-drop 1 -o x.dens
err 2 explore "--pattern goes with --weights" \
  "$BSP" explore m.h5 --data d.h5 --activations --max-drop 1 --pattern block:8x8 -o x.h5
err 2 explore "--layers 'nosuch' selects no conv2d or dense layer" \
  "$BSP" explore m.h5 --data d.h5 --activations --max-drop 1 --layers nosuch -o x.h5
err 2 explore "--block '1x0x8' is not BHxBWxBC" \
  "$BSP" explore m.h5 --data d.h5 --activations --max-drop 1 --block 1x0x8 -o x.h5
err 2 explore "unknown target 'nosuch'" \
  "$BSP" explore m.h5 --data d.h5 --activations --max-drop 1 --target nosuch -o x.h5
err 2 explore "--front 'f.txt': name it FILE.json or FILE.csv" \
  "$BSP" explore m.h5 --data d.h5 --activations --max-drop 1 --front f.txt -o x.h5
err 2 explore "--ladder '0.5,1': '1' is not a number in \(0, 1\)" \
  "$BSP" explore m.h5 --data d.h5 --activations --max-drop 1 --ladder 0.5,1 -o x.h5
err 1 explore "nosuch.h5" "$BSP" explore m.h5 --data nosuch.h5 --activations --max-drop 1 -o x.h5 --log x.log
err 2 explore "output 'm.h5' is the input file" "$BSP" explore m.h5 --data d.h5 --activations --max-drop 1 -o m.h5
err 1 explore "cannot resume from 'nosuch.log'" \
  "$BSP" explore m.h5 --data d.h5 --activations --max-drop 1 -o x.h5 --resume nosuch.log
err 2 explore "--density 0.01 is below what the measured densities reach" \
  "$BSP" explore m.h5 --data d.h5 --weights --pattern block:8x8 --density 0.01 --densities 0.5 -o x.dens
no_file x.h5 x.dens x.log
no_temp_files .

finish
