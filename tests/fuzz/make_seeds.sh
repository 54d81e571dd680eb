#!/bin/bash
# Makes the seed corpora of the fuzz targets from real files, with the bsp of
# a normal build: small models through the pipeline (init/prune/compact/
# schedule/codegen), nothing committed. Usage:
#   tests/fuzz/make_seeds.sh OUT_DIR [BUILD_DIR]
# OUT_DIR/model    whole model files (fuzz_model)
# OUT_DIR/bases    the same files, the bases fuzz_edit edits (BSP_FUZZ_BASES)
# OUT_DIR/edit     fuzz_edit inputs: each base unedited, and a few edits
# OUT_DIR/program  fuzz_program inputs: each program's /program/code words
# OUT_DIR/hardware fuzz_hardware inputs: the shipped descriptions, and the
#                  ones stored in the programs
set -euo pipefail
out=${1:?usage: make_seeds.sh OUT_DIR [BUILD_DIR]}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-$src/build}
BSP=$build/bsp
MAKE=$build/tests/make_test_model
for t in "$BSP" "$MAKE"; do [ -x "$t" ] || { echo "make_seeds.sh: no $t: build first (ninja -C $build)" >&2; exit 1; }; done
mkdir -p "$out"
PY=${PYTHON:-/usr/bin/python3}  # with h5py and numpy (Debian python3-h5py)
out=$(cd "$out" && pwd)
rm -rf "$out/model" "$out/bases" "$out/edit" "$out/program" "$out/hardware"
mkdir -p "$out/model" "$out/bases" "$out/edit" "$out/program" "$out/hardware"
cp "$src"/data/aie2/*.json "$out/hardware/"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
q() { "$@" >/dev/null 2>&1 || { echo "make_seeds.sh: failed: $*" >&2; exit 1; }; }
# Small models (tens of kB): the test models of the e2e suite, pruned with
# each kind of pattern, compacted (fp32, int8), scheduled and generated.
q "$MAKE" no-weights nw.h5
q "$MAKE" batchnorms bn.h5
q "$BSP" prune bn.h5 --pattern nm:2:4 -o nm.h5
q "$BSP" prune bn.h5 --pattern block:4x4 --density 0.5 -o block.h5
q "$BSP" prune bn.h5 --pattern tw:8 --density 0.5 -o tw.h5
q "$BSP" prune bn.h5 --pattern unstructured --density 0.3 -o unst.h5
q "$BSP" compact nm.h5 -o nm_c.h5
q "$BSP" compact block.h5 --format bsr -o block_c.h5
q "$BSP" compact block.h5 --dtype int8 -o q8.h5
q "$BSP" compact tw.h5 --dtype bf16 -o tw_bf16.h5
q "$BSP" schedule block.h5 --target aie2:2x2 -o sched.h5
q "$BSP" codegen sched.h5 -o prog.h5
q "$BSP" schedule q8.h5 --target aie2:2x2 -o sched_q8.h5
q "$BSP" codegen sched_q8.h5 -o prog_q8.h5
for f in *.h5; do cp "$f" "$out/model/$f"; cp "$f" "$out/bases/$f"; done
# fuzz_edit: byte 0 picks the base (in name order), then 12-byte edits.
"$PY" - "$out" <<'PY'
import os, sys, random
out = sys.argv[1]
bases = sorted(f for f in os.listdir(f"{out}/bases") if f.endswith(".h5"))
rng = random.Random(0)
for i, b in enumerate(bases):
    open(f"{out}/edit/{i:02d}-{b[:-3]}", "wb").write(bytes([i]))
    for k in range(3):
        edits = bytes(rng.randrange(256) for _ in range(12 * (k + 1)))
        open(f"{out}/edit/{i:02d}-{b[:-3]}-{k}", "wb").write(bytes([i]) + edits)
PY
# fuzz_program: flags (1 int8, 2 functional), the name-table size, the words.
"$PY" - "$out" prog.h5 prog_q8.h5 <<'PY'
import sys, h5py, numpy as np
out = sys.argv[1]
for f in sys.argv[2:]:
    with h5py.File(f, "r") as h:
        g = h["program"]
        int8 = g.attrs["dtype"] in ("int8", b"int8")
        words = np.asarray(g["code"], dtype="<i4").tobytes()
        names = min(len(g["names"]), 255)
        hw = g.attrs["hardware"]
    open(f"{out}/hardware/{f[:-3]}.json", "w").write(hw if isinstance(hw, str) else hw.decode())
    for functional in (0, 2):
        flags = (1 if int8 else 0) | functional
        open(f"{out}/program/{f[:-3]}-{flags}", "wb").write(bytes([flags, names]) + words)
PY
echo "seeds in $out: $(ls "$out/model" | wc -l) models, $(ls "$out/edit" | wc -l) edits, $(ls "$out/program" | wc -l) programs, $(ls "$out/hardware" | wc -l) hardware descriptions"
