#!/usr/bin/env bash
# bsp finetune: training runs, held masks, checkpoints, resume, signals,
# logs, and every failure the issue lists (missing data, wrong image size,
# label out of range, a diverging loss).
source "$E2E_LIB"

ok "$BSP" init --arch fmnist-cnn -o m0.h5
"$MAKE_DATA_H5" d28.h5 256 28 28 1 10 || fail "make_data_h5"
"$MAKE_DATA_H5" d1k.h5 512 28 28 1 10

# A short run on a synthetic HDF5 data file: one line per epoch on stdout.
ok "$BSP" finetune m0.h5 --data d28.h5 --epochs 2 --batch 32 --threads 2 -o m1.h5 --log log.jsonl
out_has '^epoch 1/2  lr [0-9.e+-]+  loss [0-9.]+  train [0-9.]+%  test [0-9.]+% \(loss [0-9.]+\)  [0-9.]+ s  [0-9]+ img/s$'
out_has '^epoch 2/2 '
# Not a terminal: a progress line each tenth of an epoch passed (8 steps: 10% at step 1, ..., 80% at step 7), none at the end.
out_has '^   10% of epoch 1/2: step 1/8  loss [0-9.]+  [0-9]+ img/s  ETA [0-9]+:[0-9]{2}$'
out_has '^   80% of epoch 2/2: step 7/8 '
CHECKS=$((CHECKS + 1))
grep -q 'step 8/8' "$WORK/.out" && fail "a progress line at the end of an epoch: $(cat "$WORK/.out")"
CHECKS=$((CHECKS + 1))
[ "$(wc -l <log.jsonl)" = 2 ] || fail "log.jsonl: $(cat log.jsonl)"
python3 - log.jsonl <<'PY' || fail "JSON lines log"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["epoch"] for r in recs] == [1, 2], recs
for r in recs:
    assert set(r) >= {"epoch", "lr", "loss", "train_acc", "test_acc", "seconds"}, r
    assert 0 <= r["train_acc"] <= 1 and 0 <= r["test_acc"] <= 1, r
PY
# The output is a model with the normalisation, a history and a complete /train.
ok "$BSP" info --json m1.h5
cp "$WORK/.out" m1.json
CHECKS=$((CHECKS + 1))
[ "$(json_get m1.json "d['history'][-1]")" = "bsp finetune m0.h5 --data d28.h5 --epochs 2 --batch 32 --threads 2 -o m1.h5 --log log.jsonl" ] ||
  fail "history: $(json_get m1.json "d['history']")"

# The same command and thread count give the same weights (eval loss to the last digit).
ok "$BSP" finetune m0.h5 --data d28.h5 --epochs 2 --batch 32 --threads 2 -o m1b.h5 -q
CHECKS=$((CHECKS + 1))
[ -s "$WORK/.out" ] && fail "--quiet printed: $(cat "$WORK/.out")"
ok "$BSP" eval m1.h5 --data d28.h5 --json
cp "$WORK/.out" e1.json
ok "$BSP" eval m1b.h5 --data d28.h5 --json
cp "$WORK/.out" e1b.json
CHECKS=$((CHECKS + 1))
[ "$(json_get e1.json "repr(d['loss'])")" = "$(json_get e1b.json "repr(d['loss'])")" ] || fail "same seed, different models"

# CSV log with a header; a run from stdin to stdout.
ok "$BSP" finetune m1.h5 --data d28.h5 --epochs 1 --batch 64 --lr 0.01 --no-augment -o m2.h5 --log log.csv
CHECKS=$((CHECKS + 1))
head -1 log.csv | grep -q '^epoch,epochs,lr,loss,train_acc,test_loss,test_acc,seconds,images_per_s$' || fail "CSV header: $(cat log.csv)"
CHECKS=$((CHECKS + 1))
"$BSP" finetune - --data d28.h5 --epochs 1 --batch 64 -o - <m1.h5 2>err.txt >piped.h5 || fail "stdin to stdout: $(cat err.txt)"
grep -q '^epoch 1/1 ' err.txt || fail "epoch line not on stderr when the model goes to stdout: $(cat err.txt)"
ok "$BSP" info piped.h5

# On a terminal, a progress bar (batch, loss, images/s, ETA) on stderr.
if command -v script >/dev/null 2>&1; then
  CHECKS=$((CHECKS + 1))
  script -qec "$BSP finetune m0.h5 --data d28.h5 --epochs 1 --batch 32 --threads 1 -o tty.h5" /dev/null >tty.out 2>&1
  grep -Eq 'epoch 1/1 \[#+\] 8/8 loss [0-9.]+ [0-9]+ img/s ETA 0:00' tty.out || fail "no progress bar: $(cat -v tty.out | head -c 400)"
fi

# Held masks: a block mask survives training, its pruned weights stay zero.
if "$BSP" --help | grep -q '^  prune '; then
  ok "$BSP" prune m1.h5 --pattern block:8x8 --density 0.5 -o p.h5
  ok "$BSP" finetune p.h5 --data d28.h5 --epochs 1 --batch 32 -o p1.h5
  ok "$BSP" info --json p1.h5
  cp "$WORK/.out" p1.json
  CHECKS=$((CHECKS + 1))
  python3 - p1.json <<'PY' || fail "masks after finetune: $(cat p1.json | head -c 600)"
import json, sys
d = json.load(open(sys.argv[1]))
masked = [l for l in d["layers"] if l.get("pattern") == "block:8x8"]
assert masked, "no masked layer left"
for l in masked:
    assert abs(l["density"] - 0.5) < 0.05, l
PY
fi

# Gradual pruning and BDWP.
if "$BSP" --help | grep -q '^  prune '; then
  ok "$BSP" finetune m1.h5 --data d1k.h5 --batch 32 --epochs 2 --threads 1 --gradual --pattern block:8x8 --to 0.5 \
    --prune-every 5 -o g.h5
  out_has '^epoch 2/2 .* density 0\.5[0-9]*  '
  ok "$BSP" info --json g.h5
  cp "$WORK/.out" g.json
  CHECKS=$((CHECKS + 1))
  python3 - g.json <<'PY' || fail "gradual masks: $(head -c 600 g.json)"
import json, sys
d = json.load(open(sys.argv[1]))
w = [l for l in d["layers"] if l["op"] in ("conv2d", "dense")]
assert w[0]["pattern"] is None, w[0]
for l in w[1:]:
    assert l["pattern"] == "block:8x8" and abs(l["density"] - 0.5) < 0.1, l
PY
  ok "$BSP" prune m1.h5 --pattern nm:2:8 -o n.h5
  ok "$BSP" finetune n.h5 --data d1k.h5 --batch 32 --epochs 1 --threads 1 --bdwp -o n1.h5
  ok "$BSP" info --json n1.h5
  cp "$WORK/.out" n1.json
  CHECKS=$((CHECKS + 1))
  python3 - n1.json <<'PY' || fail "bdwp masks: $(head -c 600 n1.json)"
import json, sys
d = json.load(open(sys.argv[1]))
w = [l for l in d["layers"] if l["op"] in ("conv2d", "dense")]
for l in w[1:]:
    assert l["pattern"] == "nm:2:8" and abs(l["density"] - 0.25) < 1e-9, l
PY
  # Shared choices (8 output channels keep the same inputs), masks every 2
  # steps: still an nm:2:8 model, and in the forward mask the 8 rows of a
  # block agree.
  ok "$BSP" finetune n.h5 --data d1k.h5 --batch 32 --epochs 1 --threads 1 --bdwp --bdwp-shared 8 --bdwp-every 2 -o n8.h5
  ok "$BSP" info --json n8.h5
  cp "$WORK/.out" n8.json
  CHECKS=$((CHECKS + 1))
  /usr/bin/python3 - n8.json n8.h5 <<'PY' || fail "bdwp shared masks: $(head -c 600 n8.json)"
import json, sys
import h5py, numpy as np
d = json.load(open(sys.argv[1]))
w = [l for l in d["layers"] if l["op"] in ("conv2d", "dense")]
for l in w[1:]:
    assert l["pattern"] == "nm:2:8" and abs(l["density"] - 0.25) < 1e-9, l
f = h5py.File(sys.argv[2], "r")
shared = 0
def visit(name, obj):
    global shared
    if isinstance(obj, h5py.Dataset) and name.endswith("/weight") and obj.ndim == 4 and obj.shape[0] % 8 == 0 \
            and obj.shape[3] % 8 == 0:
        nz = np.asarray(obj) != 0
        blocks = nz.reshape(obj.shape[0] // 8, 8, -1)
        # Rows of a block agree wherever any of them keeps a weight (a kept
        # weight may itself be zero, so compare the union with each row
        # only where the row is nonzero: no row keeps outside the union).
        union = blocks.any(axis=1)
        assert (blocks <= union[:, None, :]).all()
        assert union.reshape(-1, 8).sum(axis=1).max() <= 2, name
        shared += 1
f.visititems(visit)
assert shared > 0
PY
  err 2 finetune "--bdwp-shared, --bdwp-every and --bdwp-grad-every go with --bdwp" "$BSP" finetune n.h5 --data d1k.h5 --bdwp-shared 8 -o x.h5
  err 2 finetune "--bdwp-every must be at least 1" "$BSP" finetune n.h5 --data d1k.h5 --bdwp --bdwp-every 0 -o x.h5
  err 2 finetune "--bdwp needs a model with nm:N:M masks" "$BSP" finetune m1.h5 --data d1k.h5 --bdwp -o x.h5
  err 2 finetune "--gradual needs a pattern whose density can change step by step; nm:2:4 fixes it at 0.5" \
    "$BSP" finetune m1.h5 --data d1k.h5 --gradual --pattern nm:2:4 --to 0.5 -o x.h5
fi
err 2 finetune "--gradual needs --pattern P and --to D" "$BSP" finetune m1.h5 --data d1k.h5 --gradual --to 0.5 -o x.h5
err 2 finetune "--pattern and --to go with --gradual" "$BSP" finetune m1.h5 --data d1k.h5 --pattern block:8x8 -o x.h5
err 2 finetune "--to 1.5 is not in \(0, 1\]" "$BSP" finetune m1.h5 --data d1k.h5 --gradual --pattern block:8x8 --to 1.5 -o x.h5
err 2 finetune "unknown pattern|pattern" "$BSP" finetune m1.h5 --data d1k.h5 --gradual --pattern blob --to 0.5 -o x.h5
err 2 finetune "--gradual and --bdwp do not go together" \
  "$BSP" finetune m1.h5 --data d1k.h5 --gradual --pattern block:8x8 --to 0.5 --bdwp -o x.h5
no_file x.h5

# Checkpoints and resume: interrupt with SIGINT in the second epoch, resume,
# and get the weights of an uninterrupted run.
RUN=(--data d1k.h5 --batch 32 --epochs 4 --threads 1)
# interrupt_in_epoch2 SIGNAL CMD...: runs CMD in the background (stdout in
# run.txt, stderr in run.err), sends SIGNAL once epoch 1 is reported and
# returns CMD's exit status.
interrupt_in_epoch2() {
  local sig=$1
  shift
  "$@" >run.txt 2>run.err &
  local pid=$!
  for _ in $(seq 1 600); do
    grep -q '^epoch 1/' run.txt 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -"$sig" "$pid" 2>/dev/null
  wait "$pid"
}
ok "$BSP" finetune m0.h5 "${RUN[@]}" -o full.h5 -q
interrupt_in_epoch2 INT "$BSP" finetune m0.h5 "${RUN[@]}" -o ck.h5
code=$?
CHECKS=$((CHECKS + 1))
if [ "$code" -eq 0 ]; then
  echo "note: training finished before the interrupt; interrupt check skipped" >&2
else
  [ "$code" -eq 130 ] || fail "interrupted finetune exited $code, expected 130 ($(cat run.err))"
  grep -Eq "^bsp finetune: interrupted at epoch [0-9]+ step [0-9]+: checkpoint saved to 'ck.h5' \(continue with --resume\)$" run.err ||
    fail "interrupt message: $(cat run.err)"
  no_temp_files .
  ok "$BSP" finetune m0.h5 "${RUN[@]}" -o ck.h5 --resume
  ok "$BSP" eval full.h5 --data d1k.h5 --json
  cp "$WORK/.out" full.json
  ok "$BSP" eval ck.h5 --data d1k.h5 --json
  cp "$WORK/.out" ck.json
  CHECKS=$((CHECKS + 1))
  [ "$(json_get full.json "repr(d['loss'])")" = "$(json_get ck.json "repr(d['loss'])")" ] ||
    fail "resumed run differs: $(json_get full.json "d['loss']") vs $(json_get ck.json "d['loss']")"
  # Resuming a finished run does nothing.
  ok "$BSP" finetune m0.h5 "${RUN[@]}" -o ck.h5 --resume
  out_has "already complete"
fi

# SIGTERM: exit 143, a separate --checkpoint file.
interrupt_in_epoch2 TERM "$BSP" finetune m0.h5 "${RUN[@]}" -o t.h5 --checkpoint t.ck.h5
code=$?
CHECKS=$((CHECKS + 1))
if [ "$code" -ne 0 ]; then
  [ "$code" -eq 143 ] || fail "terminated finetune exited $code, expected 143 ($(cat run.err))"
  no_file t.h5
  CHECKS=$((CHECKS + 1))
  [ -s t.ck.h5 ] || fail "no checkpoint t.ck.h5"
fi

# Resume failures.
err 1 finetune "cannot resume: no checkpoint 'none.h5'" "$BSP" finetune m0.h5 --data d28.h5 -o none.h5 --resume
err 1 finetune "cannot resume: 'm0.h5' holds no training state" "$BSP" finetune m1.h5 --data d28.h5 -o x.h5 --checkpoint m0.h5 --resume
err 1 finetune "cannot resume from 'm1.h5': it was made with epochs 2, not 3" \
  "$BSP" finetune m0.h5 --data d28.h5 --epochs 3 --batch 32 --threads 2 -o m1.h5 --log log.jsonl --resume --in-place
err 2 finetune "--resume needs a checkpoint" "$BSP" finetune m0.h5 --data d28.h5 -o - --resume

# Bad inputs: one line, the right code, nothing written.
err 1 finetune "cannot read data 'nope.h5': no such file or directory" "$BSP" finetune m0.h5 --data nope.h5 -o x.h5
err 1 finetune "no IDX files" "$BSP" finetune m0.h5 --data . -o x.h5
"$MAKE_DATA_H5" d8.h5 64 8 8 1 10
err 1 finetune "data 'd8.h5' does not fit model 'm0.h5': training images are 8x8x1 \(HxWxC\) but the model takes 28x28x1" \
  "$BSP" finetune m0.h5 --data d8.h5 -o x.h5
"$MAKE_DATA_H5" dbad.h5 64 28 28 1 10 badlabel
err 1 finetune "data 'dbad.h5': label 12 of test image 15 is out of range: model 'm0.h5' has 10 classes \(0\.\.9\)" \
  "$BSP" finetune m0.h5 --data dbad.h5 -o x.h5
"$MAKE_DATA_H5" dnan.h5 64 28 28 1 10 nan
err 1 finetune "cannot read 'dnan.h5': dataset 'train/images': image 0 has pixel nan \(float32 pixels must be finite, at most 1e\+06 in magnitude\)" \
  "$BSP" finetune m0.h5 --data dnan.h5 -o x.h5
# Finite but absurd pixels would train into an infinite batchnorm variance.
"$MAKE_DATA_H5" dhuge.h5 64 28 28 1 10 huge
err 1 finetune "cannot read 'dhuge.h5': dataset 'train/images': image 0 has pixel 1e\+30 \(float32 pixels must be finite" \
  "$BSP" finetune m0.h5 --data dhuge.h5 -o x.h5
# A header that claims more images than memory holds: refused before any allocation.
/usr/bin/python3 - <<'PY' || fail "python3 h5py"
import h5py
with h5py.File("dmany.h5", "w") as f:
    f.create_dataset("images", shape=(1 << 40, 28, 28), dtype="u1", chunks=(1, 28, 28))
    f.create_dataset("labels", shape=(1 << 40,), dtype="i8", chunks=(1024,))
PY
err 1 finetune "cannot read 'dmany.h5': dataset 'images' holds 1099511627776 images of 28x28x1: [0-9.e+]+ GiB of pixels, more than this machine's memory" \
  "$BSP" finetune m0.h5 --data dmany.h5 -o x.h5
"$MAKE_PLAIN_H5" plain.h5
err 1 finetune "cannot read 'plain.h5': not a data file" "$BSP" finetune m0.h5 --data plain.h5 -o x.h5
err 2 finetune "--data is required" "$BSP" finetune m0.h5 -o x.h5
err 2 finetune "no output file" "$BSP" finetune m0.h5 --data d28.h5
err 2 finetune "unknown schedule 'linear'" "$BSP" finetune m0.h5 --data d28.h5 --schedule linear -o x.h5
err 2 finetune "--batch must be at least 1" "$BSP" finetune m0.h5 --data d28.h5 --batch 0 -o x.h5
err 1 finetune "cannot read 'missing.h5'" "$BSP" finetune missing.h5 --data d28.h5 -o x.h5
err 1 finetune "cannot open log 'nodir/l.csv'" "$BSP" finetune m0.h5 --data d28.h5 --log nodir/l.csv -o x.h5
no_file x.h5

# A diverging loss stops with a clear error and leaves the existing file alone.
cp m1.h5 keep.h5
err 1 finetune "training diverged: .* is (nan|infinite) at epoch 1 step [0-9]+ \(try a lower --lr\); nothing was written" \
  "$BSP" finetune m0.h5 --data d28.h5 --epochs 2 --batch 32 --lr 1e30 --schedule constant -o keep.h5
CHECKS=$((CHECKS + 1))
cmp -s keep.h5 m1.h5 || fail "a diverged run changed keep.h5"
# Diverging later (onecycle raises the rate): the last good checkpoint stays,
# a valid model; the output is not written. Whatever goes non-finite first
# (a parameter, a batchnorm statistic, the loss, the test pass) stops the run.
err 1 finetune "training diverged: .*(nan|infinite).* \(try a lower --lr\); 'ck.h5' keeps the checkpoint of epoch [1-9]" \
  "$BSP" finetune m0.h5 --data d28.h5 --epochs 6 --batch 32 --lr 10 --limit 64 --threads 2 -q -o big.h5 --checkpoint ck.h5
no_file big.h5
ok "$BSP" info ck.h5
# A model whose weights are finite but overflow float32 in the forward pass.
overflowing_model m1.h5 huge.h5
err 1 finetune "training diverged: .* is infinite .*at epoch 1 step 1 \(try a lower --lr\); nothing was written" \
  "$BSP" finetune huge.h5 --data d28.h5 --epochs 1 --batch 32 -q -o x.h5
no_file x.h5
no_temp_files .

# Memory (bsp-finetune(1), MEMORY): a batch over --max-memory is refused
# before training, naming a batch and an --accumulate that fit; nothing is
# written. --accumulate trains the same batch in parts; -v reports the estimate.
err 1 finetune "a batch of 128 images needs about [0-9.]+ MB \([0-9.]+ [KM]B an image\), more than the 64 MB that --max-memory allows: give --batch [0-9]+, or --accumulate [0-9]+ \(the batch of 128 in [0-9]+ parts\)" \
  "$BSP" finetune m0.h5 --data d1k.h5 --epochs 1 --max-memory 64M -o mem.h5
no_file mem.h5
ok "$BSP" finetune m0.h5 --data d1k.h5 --epochs 1 --accumulate 8 --max-memory 64M -v -o acc.h5
CHECKS=$((CHECKS + 1))
grep -Eq "^bsp finetune: memory: about [0-9.]+ MB for a batch of 128 in 8 parts$" "$WORK/.err" || fail "no memory estimate: $(cat "$WORK/.err")"
ok "$BSP" finetune m0.h5 --data d1k.h5 --epochs 1 --max-memory off -o off.h5 -q
err 2 finetune "--accumulate must be at least 1" "$BSP" finetune m0.h5 --data d1k.h5 --accumulate 0 -o bad.h5
err 2 finetune "--accumulate 200 needs at least 200 images per rank in a batch, the batch of 128 gives 128" \
  "$BSP" finetune m0.h5 --data d1k.h5 --accumulate 200 -o bad.h5
err 2 finetune "--max-memory must be a size such as 512M or 2G, not '5X'" "$BSP" finetune m0.h5 --data d1k.h5 --max-memory 5X -o bad.h5
err 2 finetune "--max-memory must be a positive size, not '-1G'" "$BSP" finetune m0.h5 --data d1k.h5 --max-memory=-1G -o bad.h5
no_file bad.h5

finish
