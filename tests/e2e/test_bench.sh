#!/usr/bin/env bash
# bsp bench: the table, the JSON schema, sparse and int8 models, failures.
# (Timings are never asserted, only that they exist and are consistent.)
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-resnet -o r.h5
ok "$BSP" prune r.h5 --pattern block:8x8 --density 0.5 -o b.h5
ok "$BSP" compact b.h5 -o c.h5
ok "$BSP" bench c.h5 --reps 2 --threads 2
CHECKS=$((CHECKS + 1))
[ -s "$WORK/.err" ] && fail "bench of a compacted model wrote to stderr: $(cat "$WORK/.err")"
out_has '^model: c\.h5 \(fmnist-resnet\) +batch 1, 2 threads, 2 repetitions'
out_has '^cpu: .* load average'
out_has '^layer +op +kernel +MACs +dense ms +sparse ms +speedup'
out_has '^stage2\.0\.a\.conv +conv2d +bsr +[0-9,]+ +[0-9.]+ +[0-9.]+ +[0-9.]+x'
out_has '^total: dense [0-9.]+ ms .* speedup [0-9.]+x$'

ok "$BSP" bench c.h5 --reps 2 --batch 3 --json
cp "$WORK/.out" c.json
CHECKS=$((CHECKS + 1))
python3 - c.json <<'PY' || fail "bench JSON schema"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["batch"] == 3 and d["reps"] == 2 and d["baseline"] == "blas" and d["compact"] == "fp32", d
names = [l["name"] for l in d["layers"]]
assert "stage2.0.a.conv" in names and "fc" in names, names
for l in d["layers"]:
    assert set(l) >= {"name", "dense_ms", "sparse_ms", "speedup"}, l
    assert l["dense_ms"] >= 0 and l["sparse_ms"] >= 0, l
    if l["op"] == "conv2d":
        assert l["dense_kernel"] == "blas" and l["sparse_kernel"] in ("bsr", "dense"), l
        assert abs(l["speedup"] - l["dense_ms"] / l["sparse_ms"]) < 1e-9 * max(1, l["speedup"]), l
t = d["total"]
assert set(t) >= {"dense_ms", "sparse_ms", "speedup"}, t
assert abs(t["speedup"] - t["dense_ms"] / t["sparse_ms"]) < 1e-9, t
assert t["macs"] == 66057984, t
# against OpenBLAS, neither library's idle threads spin through the other's runs
assert d["omp_wait_policy"] == "passive" and d["openblas_thread_timeout"] == "22", d
PY
# A value the user set is kept.
ok env OPENBLAS_THREAD_TIMEOUT=25 "$BSP" bench c.h5 --reps 1 --json
cp "$WORK/.out" e.json
CHECKS=$((CHECKS + 1))
[ "$(json_get e.json "d['openblas_thread_timeout'] + ' ' + d['omp_wait_policy']")" = "25 passive" ] ||
  fail "OPENBLAS_THREAD_TIMEOUT=25: $(json_get e.json "d['openblas_thread_timeout']")"

# bsp's dense kernel as the baseline; an uncompacted model; an int8 model.
ok "$BSP" bench c.h5 --reps 1 --baseline dense --json
cp "$WORK/.out" d.json
CHECKS=$((CHECKS + 1))
[ "$(json_get d.json "d['layers'][2]['dense_kernel']")" = "dense" ] || fail "--baseline dense: $(json_get d.json "d['layers'][2]")"
ok "$BSP" bench b.h5 --reps 1
out_has '^dense: OpenBLAS .* sparse: not compacted'
"$BSP" compact b.h5 --dtype int8 --calib-images 2 -o q.h5 2>/dev/null || fail "int8 compact"
ok "$BSP" bench q.h5 --reps 1 --json
cp "$WORK/.out" q.json
CHECKS=$((CHECKS + 1))
python3 - q.json <<'PY' || fail "int8 bench"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["compact"] == "int8"
k = {l["name"]: l["sparse_kernel"] for l in d["layers"]}
assert k["stage2.0.a.conv"] == "int8-bsr", k
# the int8 program fuses the residual add (and its relu) into a conv, as the
# float side does: no step of its own, and every step has both sides' times
assert not any(name.endswith(".add") for name in k), k
assert all(l["dense_ms"] is not None for l in d["layers"]), d["layers"]
PY
# Another model as the baseline: the int8 dense model against the int8
# block-sparse one, in one run.
"$BSP" compact r.h5 --dtype int8 --calib-images 2 -o qd.h5 2>/dev/null || fail "int8 compact (dense)"
ok "$BSP" bench q.h5 --against qd.h5 --reps 2 --json
cp "$WORK/.out" a.json
CHECKS=$((CHECKS + 1))
python3 - a.json <<'PY' || fail "bench --against"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["baseline"] == "model" and d["baseline_model"] == "qd.h5", d
k = {l["name"]: (l["dense_kernel"], l["sparse_kernel"]) for l in d["layers"]}
assert k["stage2.0.a.conv"][1] == "int8-bsr" and k["stage2.0.a.conv"][0].startswith("int8"), k
assert all(l["dense_ms"] is not None and l["sparse_ms"] is not None for l in d["layers"]), d["layers"]
PY
ok "$BSP" bench q.h5 --against qd.h5 --reps 1
out_has "^dense: 'qd\.h5' on its own kernels"
"$BSP" init --arch resnet50 -o wide.h5 || fail "init resnet50"
err 1 bench "cannot compare 'c\.h5' with 'wide\.h5': their inputs differ" "$BSP" bench c.h5 --against wide.h5 --reps 1
err 2 bench "--baseline excludes --against" "$BSP" bench c.h5 --against qd.h5 --baseline dense
err 1 bench "cannot read 'nope\.h5'" "$BSP" bench c.h5 --against nope.h5

# A tile-wise model runs its tw layers on the tile-wise kernels, fp32 and int8.
ok "$BSP" prune r.h5 --pattern tw:16 --density 0.5 -o t.h5
ok "$BSP" compact t.h5 -o tc.h5
"$BSP" compact t.h5 --dtype int8 --calib-images 2 -o tq.h5 2>/dev/null || fail "int8 compact (tw)"
ok "$BSP" bench tc.h5 --reps 1 --baseline dense --json
cp "$WORK/.out" tc.json
ok "$BSP" bench tq.h5 --reps 1 --json
cp "$WORK/.out" tq.json
CHECKS=$((CHECKS + 1))
python3 - tc.json tq.json <<'PY' || fail "tw bench"
import json, sys
for f, want in zip(sys.argv[1:], ("tw", "int8-tw")):
    k = {l["name"]: l["sparse_kernel"] for l in json.load(open(f))["layers"]}
    assert k["stage2.0.a.conv"] == want, (f, k)
PY
# The kernels can be lowered for comparisons.
CHECKS=$((CHECKS + 1))
BSP_ISA=scalar "$BSP" bench c.h5 --reps 1 | grep -q '^model: .* scalar kernels' || fail "BSP_ISA=scalar"

err 2 bench "--batch must be at least 1" "$BSP" bench c.h5 --batch 0
err 2 bench "--reps must be at least 1" "$BSP" bench c.h5 --reps 0
err 2 bench "unknown --baseline 'mkl'" "$BSP" bench c.h5 --baseline mkl
err 2 bench "model is required" "$BSP" bench
err 1 bench "cannot read 'nope\.h5'" "$BSP" bench nope.h5
echo junk >junk.h5
err 1 bench "cannot read 'junk\.h5': not an HDF5 file" "$BSP" bench junk.h5
no_temp_files .

# --svg: per-layer speedup bars, well-formed, one bar per layer timed on both
# sides; '-' refused.
ok "$BSP" bench c.h5 --reps 1 --baseline dense --svg b.svg --json
CHECKS=$((CHECKS + 1))
xmllint --noout b.svg || fail "b.svg is not well-formed XML"
both=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for l in d["layers"] if l["dense_ms"] is not None and l["sparse_ms"] is not None))' "$WORK/.out")
CHECKS=$((CHECKS + 1))
[ "$(grep -c '<rect .*<title>' b.svg)" = "$both" ] || fail "b.svg: $(grep -c '<rect .*<title>' b.svg) bars for $both layers"
err 2 bench "--svg -" "$BSP" bench c.h5 --reps 1 --svg -
# A pruned file that is not compacted: both sides dense, and a note says so.
ok "$BSP" bench b.h5 --reps 1
CHECKS=$((CHECKS + 1))
grep -q "^bsp bench: note: 'b.h5' has pruned layers but is not compacted: both sides run bsp's dense kernels" "$WORK/.err" ||
  fail "no note for an uncompacted pruned model: $(cat "$WORK/.err")"
ok "$BSP" bench b.h5 --reps 1 -q
CHECKS=$((CHECKS + 1))
[ -s "$WORK/.err" ] && fail "-q printed the note: $(cat "$WORK/.err")"

finish
