#!/usr/bin/env bash
# Files that lie about their own content (issue 24, classes 3-5): masks
# that contradict their weights, derived groups edited after bsp wrote them,
# values stored in the wrong type, and what bsp-format(5) says a reader
# ignores. Each lying file (edited with h5py from a real pipeline file) is
# refused with one `bsp SUB:` line and exit 1, no output file, the input
# untouched.
source "$E2E_LIB"

# edit SRC DST PYTHON: DST is SRC with PYTHON run on `f` (h5py, read-write).
edit() {
  cp "$1" "$2"
  /usr/bin/python3 - "$2" "$3" <<'PY' || fail "editing $2"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r+')
exec(sys.argv[2])
f.close()
PY
}

# bad FILE SUB REGEX CMD...: refused (exit 1, one line), no o.h5, FILE as it was.
bad() {
  local input=$1 sub=$2 re=$3
  shift 3
  local before
  before=$(md5sum <"$input")
  err 1 "$sub" "$re" "$@"
  no_file o.h5
  CHECKS=$((CHECKS + 1))
  [ "$(md5sum <"$input")" = "$before" ] || fail "$input was changed by: $*"
}

"$MAKE_DATA_H5" d.h5 16 28 28 1 10 || fail "make_data_h5"
ok "$BSP" init --arch fmnist-resnet -o dense.h5
ok "$BSP" prune dense.h5 --pattern block:8x8 --density 0.5 -q -o p.h5
ok "$BSP" prune dense.h5 --pattern nm:2:4 -q -o n.h5
ok "$BSP" compact n.h5 -o nc.h5
ok "$BSP" compact p.h5 --dtype int8 --calib-images 4 -o q.h5
ok "$BSP" schedule p.h5 --target aie2:2x2 -o s.h5
ok "$BSP" codegen s.h5 -o c.h5

# --- Masks: 0 and 1 only, pruned weights zero (bsp-format(5), MASKS).
edit p.h5 m2.h5 'd = f["graph/nodes/stage1.0.a.conv/mask"]; a = d[()]; a[0, 1] = 2; d[...] = a'
for cmd in "info m2.h5" "compact m2.h5 -o o.h5" "schedule m2.h5 --target aie2:2x2 -o o.h5" "eval m2.h5 --data d.h5"; do
  # shellcheck disable=SC2086
  bad m2.h5 "${cmd%% *}" "node 'stage1\.0\.a\.conv': mask holds 2 at index 1: only 0 and 1" "$BSP" $cmd
done
# a nonzero weight inside a pruned 8x8 block
edit p.h5 wb.h5 '
m = f["graph/nodes/stage2.0.b.conv/mask"][()]
r, c = [int(v[0]) for v in np.nonzero(m == 0)]
w = f["graph/nodes/stage2.0.b.conv/weight"]; a = w[()]; a[r * 8, 1, 2, c * 8 + 3] = 0.5; w[...] = a'
bad wb.h5 compact "node 'stage2\.0\.b\.conv': weight 0\.5 at index [0-9]+ is pruned by the mask but not zero" \
  "$BSP" compact wb.h5 -o o.h5
bad wb.h5 eval "pruned by the mask but not zero" "$BSP" eval wb.h5 --data d.h5
# a nonzero weight under an N:M mask's zero
edit n.h5 wn.h5 '
m = f["graph/nodes/stage1.0.a.conv/mask"][()].reshape(-1)
i = int(np.nonzero(m == 0)[0][0])
w = f["graph/nodes/stage1.0.a.conv/weight"]; a = w[()]; a.reshape(-1)[i] = -2.0; w[...] = a'
bad wn.h5 prune "node 'stage1\.0\.a\.conv': weight -2 at index [0-9]+ is pruned by the mask" \
  "$BSP" prune wn.h5 --pattern nm:2:4 -o o.h5
# -0.0 is a zero
edit n.h5 nz.h5 '
m = f["graph/nodes/stage1.0.a.conv/mask"][()].reshape(-1)
i = int(np.nonzero(m == 0)[0][0])
w = f["graph/nodes/stage1.0.a.conv/weight"]; a = w[()]; a.reshape(-1)[i] = -0.0; w[...] = a'
ok "$BSP" info nz.h5

# --- Stored types: no silent conversion (bsp-format(5), TYPES).
edit p.h5 f64.h5 'a = f["graph/nodes/fc/weight"][()].astype(np.float64); del f["graph/nodes/fc/weight"]; f["graph/nodes/fc/weight"] = a'
bad f64.h5 info "node 'fc': dataset 'weight' is float64, expected float32" "$BSP" info f64.h5
edit p.h5 fm.h5 '
d = f["graph/nodes/fc/mask"]; a = d[()].astype(np.float32); at = dict(d.attrs); del f["graph/nodes/fc/mask"]
f["graph/nodes/fc/mask"] = a
for k, v in at.items(): f["graph/nodes/fc/mask"].attrs[k] = v'
bad fm.h5 compact "node 'fc': dataset 'mask' is float32, expected uint8" "$BSP" compact fm.h5 -o o.h5
edit q.h5 q16.h5 'p = "compact/layers/stage1.0.a.conv/values"; a = f[p][()].astype(np.int16); del f[p]; f[p] = a'
bad q16.h5 info "/compact: layer 'stage1\.0\.a\.conv': dataset 'values' is int16, expected int8" "$BSP" info q16.h5

# --- Unknown datasets and groups inside a node are ignored (bsp-format(5)).
edit p.h5 unk.h5 'f["graph/nodes/fc/notes"] = np.arange(3); f.create_group("graph/nodes/fc/extra"); f["graph/nodes/stem.relu/bias"] = np.zeros(4, np.float32)'
ok "$BSP" info unk.h5
ok "$BSP" compact unk.h5 -o unkc.h5

# --- Compact content (COMPACT WEIGHTS).
# nm positions: the first group of 2:4 says 1, 1 (a repeated position)
edit nc.h5 dup.h5 'd = f["compact/layers/stage1.0.a.conv/index"]; a = d[()]; a[0] = (a[0] & 0xF0) | 0x5; d[...] = a'
bad dup.h5 bench "/compact: layer 'stage1\.0\.a\.conv': nm index: group 0 holds position 1 after 1" \
  "$BSP" bench dup.h5 --reps 1
# an int8 op kind that is not the graph's
edit q.h5 kind.h5 'f["compact/int8/stage1.0.a.conv"].attrs["kind"] = "dense"'
bad kind.h5 info "int8 node 'stage1\.0\.a\.conv' is dense in the int8 program, conv2d in the graph's folding|node 'stage1\.0\.a\.conv' is dense" \
  "$BSP" info kind.h5
# well-formed but edited: a stored value, a scale
edit nc.h5 val.h5 'd = f["compact/layers/stage2.0.a.conv/values"]; a = d[()]; a[7] += 1; d[...] = a'
bad val.h5 compact "/compact: edited after bsp wrote it .*run 'bsp compact' again" "$BSP" compact val.h5 -o o.h5
edit q.h5 sc.h5 'g = f["compact/int8/stage1.0.a.conv"]; g.attrs["scale"] = g.attrs["scale"] * 2'
bad sc.h5 eval "/compact: edited after bsp wrote it" "$BSP" eval sc.h5 --data d.h5

# --- Schedule (SCHEDULE): every attribute checked against the hardware and the graph.
edit s.h5 st.h5 't = f["schedule/storages"]; a = t[()]; i = int(np.nonzero(a[:, 3] == 1)[0][0]); a[i, 6] = 3; t[...] = a'
bad st.h5 codegen "/schedule: activation '[^']+': memtile address 3 is not a 64-aligned place" "$BSP" codegen st.h5 -o o.h5
edit s.h5 pl.h5 't = f["schedule/storages"]; a = t[()]; a[0, 3] = 5; t[...] = a'
bad pl.h5 codegen "/schedule: storages row 0: place 5 is neither 0 \(DDR\) nor 1 \(memtile\)" "$BSP" codegen pl.h5 -o o.h5
edit s.h5 wr.h5 'f["schedule/stages/0001"].attrs["weights_resident"] = np.int64(5)'
bad wr.h5 estimate "weights_resident 5 is neither 0 nor 1" "$BSP" estimate wr.h5
# a valid plan, but not the one bsp wrote: its weight chunks no longer match
# the stored ones (or, were they edited too, the content hash would differ)
edit s.h5 sp.h5 'f["schedule/stages/0001"].attrs["split"] = np.array([1, 1, 1, 1], np.int64)'
bad sp.h5 codegen "/schedule: (edited after bsp wrote it|stage '0001': weight_chunks).*run 'bsp schedule' again" "$BSP" codegen sp.h5 -o o.h5

# --- Program (PROGRAM).
edit c.h5 img.h5 'd = f["program/ddr_image"]; a = d[()]; a[100] ^= 1; d[...] = a'
bad img.h5 sim "/program: edited after bsp wrote it .*run 'bsp codegen' again" "$BSP" sim img.h5
edit c.h5 nohash.h5 'del f["program"].attrs["content_hash"]'
bad nohash.h5 info "/program: no content_hash attribute \(format 1\.1 and later have one\)" "$BSP" info nohash.h5
# A file of format 1.0 (before content hashes) is read unchecked ...
edit c.h5 v10.h5 '
f.attrs["format_version"] = np.array([1, 0], np.int64)
for g in ("compact", "schedule", "program"):
    if g in f: del f[g].attrs["content_hash"]'
ok "$BSP" info v10.h5
ok "$BSP" sim v10.h5
# ... but its content is still checked: the network's output inside the DDR
# past the weights image, and of the model's shape.
edit v10.h5 oa.h5 'f["program"].attrs["output_addr"] = np.int64(0)'
bad oa.h5 sim "/program: the output at address 0 \(40 bytes\) is not inside the activations" "$BSP" sim oa.h5
edit v10.h5 os.h5 'f["program"].attrs["output_shape"] = np.array([1, 1, 11], np.int64)'
bad os.h5 estimate "the stored program takes \[28, 28, 1\] and returns \[1, 1, 11\], the model \[28, 28, 1\] and \[10\]" \
  "$BSP" estimate os.h5
# ... and sim and estimate refuse a program whose fingerprint is not the model's.
edit v10.h5 fp.h5 'f["program"].attrs["fingerprint"] = "0123456789abcdef"'
bad fp.h5 sim "the stored program's fingerprint does not match the model" "$BSP" sim fp.h5
bad fp.h5 estimate "the stored program's fingerprint does not match the model" "$BSP" estimate fp.h5

no_temp_files .
finish
