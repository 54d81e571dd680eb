#!/usr/bin/env bash
# bsp finetune under mpirun (data-parallel, issue 28): the same global batch
# gives the same model as one process, within floating-point reordering;
# only rank 0 writes; a resumed run may use another number of ranks; a
# failure ends every rank with one line. Registered only when bsp is built
# with MPI and mpirun exists (tests/meson.build).
source "$E2E_LIB"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Loopback only, no warnings about missing fabrics.
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
MPIRUN=${MPIRUN:-mpirun}
# Under tests/sanitize.sh: full stacks for LeakSanitizer, so that Open MPI's
# own leaks at exit match tests/sanitize.supp (they show no bsp frame).
if [ -n "${LSAN_OPTIONS:-}" ]; then export LSAN_OPTIONS="$LSAN_OPTIONS:fast_unwind_on_malloc=0"; fi

ok "$BSP" init --arch fmnist-cnn -o m0.h5
"$MAKE_DATA_H5" d.h5 256 28 28 1 10 || fail "make_data_h5"

# Compares two models' float parameters: every difference within tol times
# that parameter's largest update from m0 (plus a floor for unmoved ones).
same_model() {
  CHECKS=$((CHECKS + 1))
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY' || fail "models $1 and $2 differ"
import h5py, numpy as np, sys
a, b, z = (h5py.File(f) for f in ("m0.h5", sys.argv[1], sys.argv[2]))
tol = float(sys.argv[3])
bad = []
def visit(name, obj):
    if isinstance(obj, h5py.Dataset) and name.startswith("graph/nodes") and obj.dtype == np.float32:
        x0, x, y = a[name][()], b[name][()], z[name][()]
        update = np.abs(x - x0).max()
        if np.abs(x - y).max() > tol * update + 1e-7:
            bad.append((name, float(np.abs(x - y).max()), float(update)))
a.visititems(visit)
if bad:
    print(bad, file=sys.stderr)
    sys.exit(1)
PY
}

# One process (2 threads) against 2 ranks (1 thread each), the same global
# batch of 32: 2 epochs of 8 steps, batchnorm statistics over the ranks.
ok "$BSP" finetune m0.h5 --data d.h5 --epochs 2 --batch 32 --threads 2 -o solo.h5 -q
ok "$MPIRUN" -np 2 "$BSP" finetune m0.h5 --data d.h5 --epochs 2 --batch 32 --threads 1 -o dp.h5 --log dp.jsonl
out_has '^data-parallel: 2 ranks, each 16 of the 32 images of a batch$'
CHECKS=$((CHECKS + 1))
[ "$(grep -c '^epoch ' "$WORK/.out")" = 2 ] || fail "rank 0 alone prints the epoch lines: $(cat "$WORK/.out")"
CHECKS=$((CHECKS + 1))
[ "$(wc -l <dp.jsonl)" = 2 ] || fail "rank 0 alone writes the log: $(cat dp.jsonl)"
same_model solo.h5 dp.h5 0.05
# Three ranks share a batch of 32 unevenly (10, 11, 11): the same model again.
ok "$MPIRUN" -np 3 "$BSP" finetune m0.h5 --data d.h5 --epochs 2 --batch 32 --threads 1 -o dp3.h5 -q
same_model solo.h5 dp3.h5 0.05
# The reported loss and accuracy agree with one process's (eval on both).
ok "$BSP" eval solo.h5 --data d.h5 --json
cp "$WORK/.out" es.json
ok "$BSP" eval dp.h5 --data d.h5 --json
cp "$WORK/.out" ed.json
CHECKS=$((CHECKS + 1))
python3 -c "
import json; a = json.load(open('es.json')); b = json.load(open('ed.json'))
assert abs(a['loss'] - b['loss']) < 1e-3 * max(1, a['loss']) and abs(a['accuracy'] - b['accuracy']) <= 2 / a['n'], (a, b)
" || fail "eval of the two models: $(cat es.json ed.json)"

# Resume with another number of ranks: one process interrupted in its
# second epoch (SIGINT: a checkpoint), finished by 2 ranks, equals the
# uninterrupted run.
RUN=(--data d.h5 --epochs 3 --batch 32 --lr 0.01)
ok "$BSP" finetune m0.h5 "${RUN[@]}" --threads 2 -o full.h5 -q
"$BSP" finetune m0.h5 "${RUN[@]}" --threads 1 -o ck.h5 >run.txt 2>run.err &
pid=$!
for _ in $(seq 1 600); do
  grep -q '^epoch 1/' run.txt 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -INT "$pid" 2>/dev/null
wait "$pid"
code=$?
if [ "$code" -eq 0 ]; then
  echo "note: training finished before the interrupt; resume check skipped" >&2
else
  CHECKS=$((CHECKS + 1))
  [ "$code" -eq 130 ] || fail "interrupted finetune exited $code, expected 130 ($(cat run.err))"
  ok "$MPIRUN" -np 2 "$BSP" finetune m0.h5 "${RUN[@]}" --threads 1 -o ck.h5 --resume -q
  same_model full.h5 ck.h5 0.05
fi

# --bn-stats local: each rank normalises with its share's statistics (the
# run completes, the ranks agree); another model than one process's.
ok "$MPIRUN" -np 2 "$BSP" finetune m0.h5 --data d.h5 --epochs 2 --batch 32 --threads 1 --bn-stats local -o loc.h5 -q
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - <<'PY' || fail "--bn-stats local gave the sync-BN model"
import h5py, numpy as np
a, b = h5py.File("dp.h5"), h5py.File("loc.h5")
k = "graph/nodes/conv1.bn/var"
assert not np.allclose(a[k][()], b[k][()], rtol=1e-4), "same running variance"
PY
err 2 finetune "--bn-stats must be sync or local, not 'both'" \
  "$BSP" finetune m0.h5 --data d.h5 --bn-stats both -o x.h5

# A usage error every rank meets: one line from rank 0, the exit code 2,
# nothing written.
CHECKS=$((CHECKS + 1))
"$MPIRUN" -np 2 "$BSP" finetune m0.h5 --data d.h5 --batch 1 --threads 1 -o bad.h5 >bad.out 2>bad.err
code=$?
[ "$code" = 2 ] || fail "a batch smaller than the ranks: exit $code (want 2)"
grep -q "^bsp finetune: a batch of 1 images cannot be shared by 2 ranks: give --batch 2 or more" bad.err ||
  fail "the message: $(cat bad.err)"
[ "$(grep -c '^bsp finetune:' bad.err)" = 1 ] || fail "one line, from one rank: $(cat bad.err)"
no_file bad.h5
# Unreadable images of an image folder: the warning counts every rank's
# (the 4 spoiled ones are spread over both ranks' shares), printed once.
ok "$MAKE_IMAGES" img --train 100 --val 20
for c in 0 1 2 3; do printf 'not an image' >"img/train/$c/bad.png"; done
CHECKS=$((CHECKS + 1))
"$MPIRUN" -np 2 "$BSP" finetune m0.h5 --data img --epochs 1 --batch 26 --threads 1 -q -o img.h5 2>warn.txt ||
  fail "data-parallel finetune with unreadable images: $(cat warn.txt)"
[ "$(grep -c . warn.txt)" = 1 ] &&
  grep -Eq "^bsp finetune: warning: 4 images could not be read and were skipped \((the first: 'img/train/[0-3]/bad.png': .+|none in rank 0's share)\)$" warn.txt ||
  fail "warning: $(cat warn.txt)"

finish
