#!/usr/bin/env bash
# bsp sim: fp32 and int8 programs against the reference, inputs from a file,
# the JSON report, and failures.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-resnet -o dense.h5
ok "$BSP" prune dense.h5 --pattern block:8x8 --density 0.5 -o p.h5
ok "$BSP" schedule p.h5 --target aie2:3x3 -o s.h5
ok "$BSP" codegen s.h5 -o c.h5
ok "$BSP" sim c.h5
out_has '^sim: fp32 on aie2-3x3, 1 image, [0-9]+ stages, [0-9,]+ instructions executed, simulated time [0-9.]+ ms$'
out_has '^output: 10 values per image; max \|diff\| .*: match$'
ok "$BSP" sim c.h5 --random 3 --images 2 --json
cp "$WORK/.out" r.json
CHECKS=$((CHECKS + 1))
python3 - r.json <<'PY' || fail "sim JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["images"] == 2 and d["match"] is True and d["dtype"] == "fp32", d
assert d["max_abs_diff"] <= d["tolerance"] and d["simulated_s"] > 0 and d["instructions"] > 0
assert d["outputs_per_image"] == 10
PY
# Inputs from a .npy file ([H, W, C] and [N, H, W, C]).
python3 - <<'PY'
import struct, random
def save(path, shape):
    n = 1
    for s in shape: n *= s
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "")
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%df" % n, *[random.gauss(0, 1) for _ in range(n)]))
save("x3.npy", (28, 28, 1))
save("x4.npy", (2, 28, 28, 1))
save("bad.npy", (3, 3))
save("nan.npy", (2, 28, 28, 1))
with open("nan.npy", "r+b") as f:  # image 1, pixel 3: a NaN
    f.seek(-(28 * 28 - 3) * 4, 2)
    f.write(struct.pack("<f", float("nan")))
PY
ok "$BSP" sim c.h5 --input x3.npy
out_has 'match$'
ok "$BSP" sim c.h5 --input x4.npy --json
cp "$WORK/.out" x4.json
CHECKS=$((CHECKS + 1))
[ "$(json_get x4.json "d['images']")" = "2" ] || fail "two images from the file"

# int8: bit-exact.
ok "$BSP" compact p.h5 --dtype int8 -o q.h5
ok "$BSP" schedule q.h5 --target aie2:2x2 -o sq.h5
ok "$BSP" codegen sq.h5 -o cq.h5
ok "$BSP" sim cq.h5 --images 2
out_has '^output: 10 values per image; bit-exact with the int8 reference$'

# A program whose model changed is dropped, and then missing.
ok "$BSP" init --arch fmnist-resnet -o m.h5
err 1 sim "has no program: run 'bsp schedule' and 'bsp codegen' first" "$BSP" sim m.h5
err 2 sim "give --random or --input, not both" "$BSP" sim c.h5 --random 1 --input x3.npy
err 2 sim "--images must be at least 1" "$BSP" sim c.h5 --images 0
err 2 sim "--images goes with --random" "$BSP" sim c.h5 --input x3.npy --images 2
err 1 sim "'bad\.npy' holds \[3, 3\]" "$BSP" sim c.h5 --input bad.npy
err 1 sim "'nan\.npy': image 1 holds nan \(inputs must be finite\)" "$BSP" sim c.h5 --input nan.npy
echo "not numpy" >text.npy
err 1 sim "cannot read 'text\.npy': not a \.npy file" "$BSP" sim c.h5 --input text.npy
err 1 sim "cannot read 'nope\.npy'" "$BSP" sim c.h5 --input nope.npy
err 2 sim "not expected|--frob" "$BSP" sim c.h5 --frob

finish
