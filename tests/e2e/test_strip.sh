#!/usr/bin/env bash
# bsp strip and files without dense weights (bsp-format(5), DROPPED DENSE
# WEIGHTS); --compress; bsp info's bytes per part of the file.
source "$E2E_LIB"
PY=/usr/bin/python3

ok "$MAKE_TEST_MODEL" tiny m.h5
ok "$MAKE_DATA_H5" data.h5 16 8 8 3 10
ok "$BSP" prune m.h5 --pattern block:8x8 --density 0.5 -q -o b.h5
ok "$BSP" compact b.h5 -o c32.h5
ok "$BSP" compact b.h5 --dtype int8 --calib data.h5 --calib-images 4 -o c8.h5
ok "$BSP" compact b.h5 --dtype bf16 -o c16.h5
for d in 32 8 16; do ok "$BSP" strip c$d.h5 -o s$d.h5; done

# The layers whose compact form holds values have no weight; the unpruned
# ones (the first conv, the depthwise one), dense in fp32, keep theirs; int8
# and bf16 hold every layer.
CHECKS=$((CHECKS + 1))
$PY - <<'PYEOF' || fail "stripped files' layout"
import h5py
for d, kept in (("32", {"stem", "dw"}), ("8", set()), ("16", set())):
    with h5py.File("s%s.h5" % d, "r") as f:
        nodes = f["graph/nodes"]
        layers = [n for n in nodes if nodes[n].attrs["op"] in (b"conv2d", "conv2d", b"dense", "dense")]
        have = {n for n in layers if "weight" in nodes[n]}
        assert have == kept, (d, have)
        assert len(f["compact"].attrs["rebuilt_hash"]) == 16
        assert list(f.attrs["format_version"]) == [1, 3]
    with h5py.File("c%s.h5" % d, "r") as f:
        assert "rebuilt_hash" not in f["compact"].attrs
PYEOF
for d in 32 8 16; do
  CHECKS=$((CHECKS + 1))
  [ "$(stat -c %s s$d.h5)" -lt "$(stat -c %s c$d.h5)" ] || fail "s$d.h5 is not smaller than c$d.h5"
done

# info: the dropped state and the bytes of each part; the parts add up to the file.
ok "$BSP" info s8.h5
out_has '^dense weights: dropped \(bsp strip\); 9 layers. rebuilt from the int8 compact form$'
out_has '^file: [0-9,]+ bytes$'
out_has '^  compact weights +[0-9,]+ +[0-9.]+%$'
out_has '^  int8 program '
ok "$BSP" info c32.h5
out_has '^  dense weights '
for f in c32 s32 s8; do
  ok "$BSP" info --json $f.h5
  cp "$WORK/.out" $f.json
  CHECKS=$((CHECKS + 1))
  $PY - $f.json $(stat -c %s $f.h5) <<'PYEOF' || fail "$f: info --json file_bytes"
import json, sys
d = json.load(open(sys.argv[1]))
b = d["file_bytes"]
keys = ["dense_weights", "params", "masks", "compact", "int8", "schedule", "program", "train", "history",
        "other", "hdf5_metadata"]
assert list(b) == keys + ["total"], list(b)
assert b["total"] == int(sys.argv[2]) == sum(b[k] for k in keys), b
assert b["compact"] > 0 and b["hdf5_metadata"] > 0, b
stripped = sys.argv[1] != "c32.json"
assert (d["dense_dropped"] is not None) == stripped, d["dense_dropped"]
if sys.argv[1] == "s8.json":
    assert d["dense_dropped"] == {"dtype": "int8", "layers": 9}, d["dense_dropped"]
    assert b["dense_weights"] == 0 and b["int8"] > 0, b
if sys.argv[1] == "s32.json":
    assert b["dense_weights"] == (16 * 3 * 3 * 3 + 16 * 3 * 3) * 4, b  # the stem's and dw's, kept
PYEOF
done

# Every stage reads a stripped file: eval gives the same logits as the whole file.
for d in 32 8; do
  ok "$BSP" eval c$d.h5 --data data.h5 --logits c$d.npy
  ok "$BSP" eval s$d.h5 --data data.h5 --logits s$d.npy
  CHECKS=$((CHECKS + 1))
  cmp -s c$d.npy s$d.npy || fail "eval of s$d.h5 differs from eval of c$d.h5"
done
# bf16: the kernels run the grouped conv 'g' by the reference, from the
# graph's weights: fp32 in the whole file, bf16 widened in the stripped one.
ok "$BSP" eval c16.h5 --data data.h5 --logits c16.npy
ok "$BSP" eval s16.h5 --data data.h5 --logits s16.npy
CHECKS=$((CHECKS + 1))
$PY -c "
import numpy as np
a, b = np.load('c16.npy'), np.load('s16.npy')
assert np.abs(a - b).max() <= 2 ** -7 * np.abs(a).max(), np.abs(a - b).max()
" || fail "eval of s16.h5 is not within bf16 precision of c16.h5"
ok "$BSP" bench s8.h5 --reps 1
ok "$BSP" bench s32.h5 --reps 1

# schedule keeps the file stripped; codegen, sim and estimate run on it, as on the whole file.
for d in 32 8; do
  ok "$BSP" schedule s$d.h5 --target aie2:2x2 -o ss$d.h5
  ok "$BSP" codegen ss$d.h5 -o sp$d.h5
  ok "$BSP" info --json sp$d.h5
  cp "$WORK/.out" sp$d.json
  CHECKS=$((CHECKS + 1))
  [ "$(json_get sp$d.json 'd["dense_dropped"] is not None and d["file_bytes"]["program"] > 0')" = True ] ||
    fail "sp$d.h5 is not a stripped file with a program"
  ok "$BSP" sim sp$d.h5
  out_has 'bit-exact|match'
  ok "$BSP" estimate sp$d.h5 --json
  cp "$WORK/.out" es$d.json
  ok "$BSP" schedule c$d.h5 --target aie2:2x2 -o cs$d.h5
  ok "$BSP" codegen cs$d.h5 -o cp$d.h5
  ok "$BSP" estimate cp$d.h5 --json
  CHECKS=$((CHECKS + 1))
  $PY - es$d.json "$WORK/.out" <<'PYEOF' || fail "estimate of sp$d.h5 differs from cp$d.h5"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert a["total"] == b["total"] if "total" in a else a == b
PYEOF
done

# export: fp32 from the rebuilt weights (int8: a note), int8 from the int8 program.
ok "$BSP" export s32.h5 -o s32.onnx
CHECKS=$((CHECKS + 1))
[ -s "$WORK/.err" ] && fail "export of a stripped fp32 file printed: $(cat "$WORK/.err")"
ok "$BSP" export s8.h5 -o s8.onnx
CHECKS=$((CHECKS + 1))
grep -q '^bsp export: note: the file has no dense weights (bsp strip): 9 layers. weights rebuilt from its int8 compact form' "$WORK/.err" ||
  fail "export of a stripped int8 file: no note: $(cat "$WORK/.err")"
ok "$BSP" export s8.h5 --dtype int8 -o s8q.onnx
ok "$BSP" export c32.h5 -o c32.onnx
ok "$BSP" export c8.h5 -o c8.onnx
ok "$BSP" export c8.h5 --dtype int8 -o c8q.onnx
# fp32: the same weights; int8 dequantised: close, not equal; the int8 program: the same.
CHECKS=$((CHECKS + 1))
$PY - <<'PYEOF' || fail "exported weights of stripped files"
import onnx, numpy as np
from onnx import numpy_helper
def inits(p):
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(p).graph.initializer}
for a, b, exact in (("c32", "s32", True), ("c8q", "s8q", True), ("c8", "s8", False)):
    x, y = inits(a + ".onnx"), inits(b + ".onnx")
    assert x.keys() == y.keys(), (a, b)
    same = all(np.array_equal(x[k], y[k]) for k in x)
    assert same == exact, (a, b, same)
    if not exact:
        for k in x:
            assert np.abs(x[k] - y[k]).max() <= 0.02 * max(1e-6, np.abs(x[k]).max()), (k, np.abs(x[k] - y[k]).max())
PYEOF

# finetune rebuilds and says so in one line, then writes every weight.
ok "$BSP" finetune s8.h5 --data data.h5 --epochs 1 --limit 8 --batch 8 -o ft.h5
CHECKS=$((CHECKS + 1))
[ "$(grep -c 'rebuilt from its int8 compact form' "$WORK/.err")" = 1 ] || fail "finetune: $(cat "$WORK/.err")"
ok "$BSP" finetune s32.h5 --data data.h5 --epochs 1 --limit 8 --batch 8 -o ft32.h5
CHECKS=$((CHECKS + 1))
grep -q '^bsp finetune: note: .*fp32 compact form (exactly' "$WORK/.err" || fail "finetune fp32: $(cat "$WORK/.err")"
ok "$BSP" info --json ft.h5
cp "$WORK/.out" ft.json
CHECKS=$((CHECKS + 1))
[ "$(json_get ft.json 'd["dense_dropped"] is None and d["compact"] is None and d["file_bytes"]["dense_weights"] > 0')" = True ] ||
  fail "finetune output of a stripped file"
# prune on rebuilt int8 weights says so; compact refuses them, takes fp32 ones.
ok "$BSP" prune s8.h5 --pattern block:8x8 --density 0.25 -o p8.h5
CHECKS=$((CHECKS + 1))
grep -q '^bsp prune: note: ' "$WORK/.err" || fail "prune of a stripped int8 file: no note"
err 1 compact "has no dense weights \(bsp strip\).*int8 compact form is not exact" "$BSP" compact s8.h5 -o x.h5
no_file x.h5
ok "$BSP" compact s32.h5 -o cc32.h5
ok "$BSP" eval cc32.h5 --data data.h5 --logits cc32.npy
CHECKS=$((CHECKS + 1))
cmp -s c32.npy cc32.npy || fail "compact of a stripped fp32 file changed its results"

# strip's failures and its note.
err 1 strip "has no compact weights to keep.*bsp compact" "$BSP" strip b.h5 -o x.h5
no_file x.h5
err 2 strip "no output file" "$BSP" strip c8.h5
ok "$BSP" compact m.h5 -o dense32.h5
ok "$BSP" strip dense32.h5 -o ds.h5
CHECKS=$((CHECKS + 1))
grep -q '^bsp strip: note: no layer.s compact form holds its weights' "$WORK/.err" || fail "strip of a dense fp32 file"
ok "$BSP" strip - -o - <c8.h5
cp "$WORK/.out" piped.h5
ok "$BSP" eval piped.h5 --data data.h5 --logits piped.npy
CHECKS=$((CHECKS + 1))
cmp -s c8.npy piped.npy || fail "strip through a pipe"

# Readers refuse a stripped file that lies.
edit() {  # edit SRC DST PYTHON (f: the h5py file)
  cp "$1" "$2"
  $PY -c "import h5py, numpy as np
f = h5py.File('$2', 'r+')
$3" || fail "h5py edit of $2"
}
edit s8.h5 e1.h5 "f['graph/nodes/c.bn/mean'][0] += 1"
err 1 eval "the graph is not the one its weights were dropped from.*edited" "$BSP" eval e1.h5 --data data.h5
edit s8.h5 e2.h5 "del f['compact']"
err 1 info "node '[^']+': no weight, and no /compact group" "$BSP" info e2.h5
edit s8.h5 e3.h5 "del f['compact'].attrs['rebuilt_hash']"
err 1 info "/compact: edited after bsp wrote it" "$BSP" info e3.h5
edit c8.h5 e4.h5 "del f['graph/nodes/a/weight']"
err 1 info "node 'a': no weight, and /compact has no rebuilt_hash" "$BSP" info e4.h5
edit s32.h5 e5.h5 "del f['graph/nodes/stem/weight']"
err 1 info "node 'stem': no weight, and its compact form \(fp32 dense\) is the graph's weight" "$BSP" info e5.h5
edit s8.h5 e6.h5 "f['compact'].attrs['rebuilt_hash'] = '0123456789abcdef'"
err 1 info "/compact: edited after bsp wrote it" "$BSP" info e6.h5
edit m.h5 e7.h5 "del f['graph/nodes/a/weight']"
err 1 info "node 'a': no weight, and no /compact group" "$BSP" info e7.h5
edit s8.h5 e8.h5 "f['graph/nodes/a'].create_dataset('weight', data=np.zeros(f['compact/layers/a'].attrs['weight_shape'], np.float32))"
err 1 info "node 'a': a dense weight in a file whose dense weights were dropped" "$BSP" info e8.h5

# --compress: shuffle + deflate on the datasets of 4 KiB or more, the same model read back.
ok "$BSP" prune m.h5 --pattern block:8x8 --density 0.5 -q --compress -o bz.h5
ok "$BSP" compact bz.h5 --dtype int8 --calib data.h5 --calib-images 4 --compress -o c8z.h5
ok "$BSP" strip c8.h5 --compress -o s8z.h5
CHECKS=$((CHECKS + 1))
$PY - <<'PYEOF' || fail "--compress layout"
import h5py, numpy as np
with h5py.File("bz.h5", "r") as z, h5py.File("b.h5", "r") as p:
    big = [n for n in z["graph/nodes"] if "weight" in z["graph/nodes"][n] and z["graph/nodes"][n]["weight"].nbytes >= 4096]
    assert big, "no weight of 4 KiB or more"
    for n in big:
        d = z["graph/nodes"][n]["weight"]
        assert d.compression == "gzip" and d.compression_opts == 4 and d.shuffle, (n, d.compression, d.shuffle)
        assert p["graph/nodes"][n]["weight"].compression is None
        assert np.array_equal(d[()], p["graph/nodes"][n]["weight"][()])
    small = z["graph/nodes/fc/bias"]
    assert small.compression is None and small.chunks is None, "a small dataset was chunked"
PYEOF
CHECKS=$((CHECKS + 1))
[ "$(stat -c %s bz.h5)" -lt "$(stat -c %s b.h5)" ] || fail "--compress did not shrink the pruned file"
ok "$BSP" eval b.h5 --data data.h5 --logits b.npy
ok "$BSP" eval bz.h5 --data data.h5 --logits bz.npy
ok "$BSP" eval c8z.h5 --data data.h5 --logits c8z.npy
ok "$BSP" eval s8z.h5 --data data.h5 --logits s8z.npy
CHECKS=$((CHECKS + 1))
cmp -s b.npy bz.npy && cmp -s c8.npy c8z.npy && cmp -s c8.npy s8z.npy || fail "--compress changed what is read"
# The graph read back is the same: compact of the compressed file has the same source hash.
CHECKS=$((CHECKS + 1))
[ "$($PY -c "import h5py; print(h5py.File('c8z.h5')['compact'].attrs['source_hash'])")" = \
  "$($PY -c "import h5py; print(h5py.File('c8.h5')['compact'].attrs['source_hash'])")" ] || fail "source hashes differ"
ok "$BSP" init --arch fmnist-cnn --compress -o iz.h5
ok "$BSP" finetune s8z.h5 --data data.h5 --epochs 1 --limit 8 --batch 8 -q --compress -o ftz.h5
no_temp_files .
finish
