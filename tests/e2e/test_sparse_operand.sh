#!/usr/bin/env bash
# The AIE-ML sparse operand end to end (bsp-isa(7), SPARSE OPERAND): prune
# with a pattern that keeps 2 of every 4 input channels, compact to int8,
# schedule, codegen and sim bit-exact on both Fashion-MNIST nets at 2x2 and
# 4x4; the schedule marks the layers, the program is ISA version 3, and the
# estimate beats the same program without the operand.
source "$E2E_LIB"

for arch in fmnist-cnn fmnist-resnet; do
  ok "$BSP" init --arch $arch -o $arch.h5
  for spec in "nm:2:4" "block:8x8+nm:2:4 -d 0.25" "tw:64+nm:2:4 -d 0.25"; do
    # shellcheck disable=SC2086
    ok "$BSP" prune $arch.h5 -p $spec -q -o p.h5
    ok "$BSP" compact p.h5 --dtype int8 -o q.h5
    for t in 2x2 4x4; do
      ok "$BSP" schedule q.h5 --target aie2:$t -o s.h5
      ok "$BSP" codegen s.h5 -o c.h5
      ok "$BSP" sim c.h5 --images 2
      out_has '^output: 10 values per image; bit-exact with the int8 reference$'
    done
  done
done

# The last one (fmnist-resnet, tw:64+nm:2:4, 4x4): every conv but the first
# is marked; the program is version 3.
ok "$BSP" schedule q.h5 --target aie2:4x4 --json -o s.h5
cp "$WORK/.out" s.json
CHECKS=$((CHECKS + 1))
python3 - s.json <<'PY' || fail "schedule JSON: sparse_operand"
import json, sys
d = json.load(open(sys.argv[1]))
convs = [s for s in d["stages"] if s["kind"] == "conv"]
assert convs[0]["sparse_operand"] is False, convs[0]["name"]
assert all(s["sparse_operand"] for s in convs[1:]), [s["name"] for s in convs if not s["sparse_operand"]]
PY
ok "$BSP" codegen s.h5 -o c.h5
CHECKS=$((CHECKS + 1))
/usr/bin/python3 -c "
import h5py, sys
v = h5py.File('c.h5', 'r')['program'].attrs['version']
sys.exit(0 if v == 3 else 1)" || fail "program version 3"

# Without the operand (a target that has none) the same model is slower.
printf '{"base": "aie2-4x4", "name": "nosparse", "macs_per_cycle": {"int8_sparse": 0}}' >nosparse.json
ok "$BSP" estimate q.h5 --target aie2:4x4 --json
cp "$WORK/.out" with.json
ok "$BSP" estimate q.h5 --target ./nosparse.json --json
cp "$WORK/.out" without.json
CHECKS=$((CHECKS + 1))
[ "$(python3 -c "
import json
a = json.load(open('with.json'))['total_s']; b = json.load(open('without.json'))['total_s']
print(a < 0.9 * b)")" = True ] || fail "the sparse operand is not faster"
ok "$BSP" schedule q.h5 --target ./nosparse.json --json -o s2.h5
CHECKS=$((CHECKS + 1))
[ "$(json_get "$WORK/.out" "any(s.get('sparse_operand') for s in d['stages'])")" = False ] || fail "nosparse target"

# A description with a bad rate is refused.
printf '{"base": "aie2-4x4", "name": "bad", "macs_per_cycle": {"int8_sparse": -1}}' >bad.json
err 1 schedule "'int8_sparse' = -1 is out of range" "$BSP" schedule q.h5 --target ./bad.json -o bad.h5
no_file bad.h5

finish
