#!/usr/bin/env bash
# bsp codegen: the program in the file, the assembly, and failures.
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-cnn -o dense.h5
ok "$BSP" prune dense.h5 --pattern block:8x8 --density 0.5 -o p.h5
ok "$BSP" schedule p.h5 --target aie2:2x2 -o s.h5
ok "$BSP" codegen s.h5 -o c.h5 --asm c.s
CHECKS=$((CHECKS + 1))
[ -s c.s ] || fail "no assembly"
for w in '^; bsp AIE2 program' '^stage 0 "conv1\.conv"' '^  queue core0 ; kernel' ' LOADFM ' ' LOADWM ' \
  ' COMP ' ' WRITEFM ' ' WRITE ' ' LOADW ' ' acq ' ' rel ' ' loop ' 'endloop' 'kernel 0 conv 3x3 .*sparse'; do
  CHECKS=$((CHECKS + 1))
  grep -Eq -- "$w" c.s || fail "assembly has no /$w/"
done
# The program runs and matches the reference.
ok "$BSP" sim c.h5
out_has 'match$'
# The history records every stage.
ok "$BSP" info --json c.h5
cp "$WORK/.out" i.json
CHECKS=$((CHECKS + 1))
python3 - i.json <<'PY' || fail "history"
import json, sys
h = json.load(open(sys.argv[1]))["history"]
assert h[-2:] == ["bsp schedule p.h5 --target aie2:2x2 -o s.h5", "bsp codegen s.h5 -o c.h5 --asm c.s"], h
PY
# Assembly to stdout.
ok "$BSP" codegen s.h5 -o c2.h5 --asm -
out_has '^stage 7 "fc2"'
# A timing-only program cannot be simulated but can be estimated.
ok "$BSP" codegen s.h5 -o t.h5 --no-image
err 1 sim "without its weight image" "$BSP" sim t.h5
ok "$BSP" estimate t.h5

# int8 needs int8 weights.
ok "$BSP" schedule p.h5 --target aie2:2x2 --dtype int8 -o s8.h5
err 1 codegen "no int8 weights: run 'bsp compact --dtype int8' first" "$BSP" codegen s8.h5 -o x.h5
ok "$BSP" compact p.h5 --dtype int8 -o q.h5
ok "$BSP" schedule q.h5 --target aie2:3x3 -o sq.h5
ok "$BSP" codegen sq.h5 -o cq.h5 --asm cq.s
CHECKS=$((CHECKS + 1))
grep -q '; int8 constants:' cq.s || fail "no int8 constants in the assembly"

# Failures.
err 1 codegen "has no schedule: run 'bsp schedule' first" "$BSP" codegen p.h5 -o x.h5
err 2 codegen "both write on stdout" "$BSP" codegen s.h5 -o - --asm -
err 2 codegen "is the input file" "$BSP" codegen s.h5 -o s.h5
err 1 codegen "cannot read 'missing\.h5'" "$BSP" codegen missing.h5 -o x.h5
mkdir -p ro && chmod 555 ro
if [ "$(id -u)" -ne 0 ]; then
  err 1 codegen "cannot write" "$BSP" codegen s.h5 -o x.h5 --asm ro/x.s
fi
no_file x.h5
no_temp_files .

finish
