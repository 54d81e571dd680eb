#!/usr/bin/env bash
# bsp init: every architecture, determinism, pipes, failures.
source "$E2E_LIB"

ok "$BSP" init --list
for a in resnet50 inception_v3 vgg16 fmnist-cnn fmnist-resnet; do out_has "^$a "; done

# The same command gives a byte-identical file (the history holds the command
# line, so the output name must be the same too).
ok "$BSP" init --arch fmnist-cnn -o a.h5
mv a.h5 first.h5
ok "$BSP" init --arch fmnist-cnn -o a.h5
CHECKS=$((CHECKS + 1)); cmp -s a.h5 first.h5 || fail "the same seed gave different files"
ok "$BSP" init --arch fmnist-cnn --seed 1 -o a.h5
CHECKS=$((CHECKS + 1)); cmp -s a.h5 first.h5 && fail "different seeds gave the same file"
ok "$BSP" init --arch fmnist-cnn --seed 1 -o c.h5

# The history records the command line.
ok "$BSP" info --json c.h5
cp "$WORK/.out" c.json
CHECKS=$((CHECKS + 1))
[ "$(json_get c.json "d['history'][0]")" = "bsp init --arch fmnist-cnn --seed 1 -o c.h5" ] || fail "history: $(json_get c.json "d['history']")"

# --classes
ok "$BSP" init --arch fmnist-resnet --classes 3 -o k.h5
ok "$BSP" info --json k.h5
cp "$WORK/.out" k.json
CHECKS=$((CHECKS + 1))
[ "$(json_get k.json "d['layers'][-1]['output_shape']")" = "[3]" ] || fail "--classes 3 not applied"

# Every ImageNet architecture through a pipe (the parameter counts are torchvision's).
for spec in resnet50:25557032 inception_v3:23834568; do
  a=${spec%%:*}; want=${spec##*:}
  CHECKS=$((CHECKS + 1))
  got=$("$BSP" init --arch "$a" -o - | "$BSP" info --json - | python3 -c "import json,sys; print(json.load(sys.stdin)['totals']['params'])")
  [ "$got" = "$want" ] || fail "$a through a pipe: params $got, expected $want"
done

# Failures: clear one-line errors, the right exit code, nothing written.
err 2 init "unknown architecture 'resnet18' \(known: resnet50" "$BSP" init --arch resnet18 -o r.h5
no_file r.h5
err 2 init "--arch is required" "$BSP" init -o r.h5
err 2 init "no output file" "$BSP" init --arch fmnist-cnn
err 2 init "classes" "$BSP" init --arch fmnist-cnn --classes 0 -o r.h5
err 2 init "could not convert|seed" "$BSP" init --arch fmnist-cnn --seed abc -o r.h5
err 1 init "directory 'nodir' does not exist" "$BSP" init --arch fmnist-cnn -o nodir/r.h5
mkdir ro && chmod 555 ro
if [ "$(id -u)" != 0 ]; then
  err 1 init "cannot create a temporary file.*permission denied" "$BSP" init --arch fmnist-cnn -o ro/r.h5
fi
no_file r.h5 ro/r.h5
no_temp_files .

# A binary model is not written to a terminal (only checkable with a tty).
if command -v script >/dev/null 2>&1; then
  CHECKS=$((CHECKS + 1))
  script -qec "$BSP init --arch fmnist-cnn -o -" /dev/null >tty.out 2>&1
  grep -q "refusing to write a binary model file to a terminal" tty.out || fail "binary output to a terminal: $(cat tty.out)"
fi

# An interrupted init leaves neither the output nor a temporary file.
"$BSP" init --arch vgg16 -o big.h5 &
pid=$!
sleep 0.4
kill -INT "$pid"
wait "$pid"
code=$?
CHECKS=$((CHECKS + 1))
if [ "$code" -eq 0 ]; then
  echo "note: vgg16 init finished before the interrupt; interrupt check skipped" >&2
  rm -f big.h5
else
  [ "$code" -eq 130 ] || fail "interrupted init exited $code, expected 130"
fi
no_file big.h5
no_temp_files .

finish
