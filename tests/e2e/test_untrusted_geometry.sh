#!/usr/bin/env bash
# Untrusted geometry (bsp-format(5) and bsp-schedule(1), LIMITS): model files
# whose strides, pads, kernels, dilations, groups or input shapes lie. Every
# command that reads one either refuses it with one line (exit 1, no output
# file, the input untouched) or, where the geometry is legitimate and
# bounded (a stride far past the input: a 1x1 output), runs it in small
# memory. Nothing may take long.
source "$E2E_LIB"
PY=/usr/bin/python3

"$MAKE_TEST_MODEL" batchnorms bn.h5 || fail "make_test_model"
"$MAKE_DATA_H5" d.h5 16 12 12 3 10 || fail "make_data_h5"
ok "$BSP" init --arch fmnist-cnn -o cnn.h5

# edit SRC DST NODE ATTR V[,V...]: a copy of SRC with one node attribute
# replaced (an int64 scalar, or an int64 list when V has commas).
edit() {
  "$PY" - "$@" <<'PY' || fail "edit $*"
import shutil, sys
import h5py, numpy as np
src, dst, node, attr, val = sys.argv[1:6]
shutil.copy(src, dst)
v = [int(x) for x in val.split(',')]
with h5py.File(dst, 'r+') as f:
    g = f['/graph/nodes/' + node]
    if attr in g.attrs:
        del g.attrs[attr]
    g.attrs[attr] = np.array(v, dtype=np.int64) if len(v) > 1 else np.int64(v[0])
PY
}

# truncate SRC DST LAST: a copy of SRC whose graph ends at node LAST.
truncate_at() {
  "$PY" - "$@" <<'PY' || fail "truncate $*"
import shutil, sys
import h5py, numpy as np
src, dst, last = sys.argv[1:4]
shutil.copy(src, dst)
with h5py.File(dst, 'r+') as f:
    order = [x.decode() if isinstance(x, bytes) else x for x in f['/graph/order'][()]]
    keep = order[:order.index(last) + 1]
    for n in order[len(keep):]:
        del f['/graph/nodes/' + n]
    del f['/graph/order']
    f.create_dataset('/graph/order', data=np.array(keep, dtype=object), dtype=h5py.string_dtype())
PY
}

# The commands that read a model (each writes out.h5 when it writes).
commands() {
  local f=$1  # (no helper runs in here)
  echo "info $f"
  echo "prune $f --pattern block:8x8 --density 0.5 -o out.h5"
  echo "eval $f --data d.h5"
  echo "bench $f --reps 1 --threads 2"
  echo "compact $f --dtype int8 --calib d.h5 --calib-images 4 -o out.h5"
  echo "schedule $f --target npu1 -o out.h5"
  echo "estimate $f"
}

# run LIMIT_S CMD...: runs bsp CMD with a timeout; sets RC, MS (elapsed) and
# KB (peak memory when /usr/bin/time exists, else 0).
run() {
  local limit=$1
  shift
  local t0 t1
  t0=$(date +%s%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -o .mem -f '%M' timeout "$limit" "$BSP" "$@" >.out 2>.err
    RC=$?
    KB=$(tail -1 .mem 2>/dev/null)
    case "$KB" in '' | *[!0-9]*) KB=0 ;; esac
  else
    timeout "$limit" "$BSP" "$@" >.out 2>.err
    RC=$?
    KB=0
  fi
  t1=$(date +%s%N)
  MS=$(((t1 - t0) / 1000000))
}

# refused FILE REGEX [SUBCOMMAND...]: every command (or the ones named) exits
# 1 with one line "bsp SUB: ..." matching REGEX, quickly, writing nothing
# and leaving FILE as it was.
refused() {
  local model=$1 re=$2
  shift 2
  local only="$*"
  local sum
  sum=$(sha256sum "$model")
  while read -r sub rest; do
    [ -n "$only" ] && [[ " $only " != *" $sub "* ]] && continue
    CHECKS=$((CHECKS + 1))
    rm -f out.h5
    # shellcheck disable=SC2086
    run 30 $sub $rest
    local msg lines
    msg=$(cat .err)
    lines=$(wc -l <.err)
    if [ "$RC" -ne 1 ]; then
      fail "$sub $rest: exit $RC, expected 1 (stderr: $(head -c 300 .err))"
    elif [ "$lines" -ne 1 ] || [[ "$msg" != "bsp $sub: "* ]]; then
      fail "$sub $rest: expected one line 'bsp $sub: ...', got: $msg"
    elif ! grep -Eq -- "$re" .err; then
      fail "$sub $rest: '$msg' does not match /$re/"
    fi
    [ "$MS" -gt 10000 ] && fail "$sub $rest: took $MS ms"
    [ "$KB" -gt 400000 ] && fail "$sub $rest: peak memory $KB kB"
    no_file out.h5
    no_temp_files .
  done < <(commands "$model")
  CHECKS=$((CHECKS + 1))
  [ "$(sha256sum "$model")" = "$sum" ] || fail "$model changed"
}

# works FILE: every command succeeds quickly in small memory.
works() {
  local model=$1
  while read -r sub rest; do
    CHECKS=$((CHECKS + 1))
    rm -f out.h5
    # shellcheck disable=SC2086
    run 60 $sub $rest
    if [ "$RC" -ne 0 ]; then
      fail "$sub $rest: exit $RC (stderr: $(head -c 300 .err))"
      continue
    fi
    [ "$MS" -gt 20000 ] && fail "$sub $rest: took $MS ms"
    [ "$KB" -gt 400000 ] && fail "$sub $rest: peak memory $KB kB"
  done < <(commands "$model")
}

# A stride far larger than the input is legitimate (a 1x1 output): it must
# run, in the memory of a small model (it used to take gigabytes at 4096,
# exhaust memory at 2^16 and crash at 2^31).
for s in 4096 65536 16777216; do
  edit bn.h5 "s$s.h5" stem stride "$s,$s"
  ok "$BSP" info "s$s.h5"
  out_has '^stem +conv2d +\[1, 1, 16\]'
  works "s$s.h5"
done
# The output is the same as with any other stride that gives one pixel.
edit bn.h5 s14.h5 stem stride 14,14
ok "$BSP" eval s14.h5 --data d.h5 --logits l14.npy
ok "$BSP" eval s65536.h5 --data d.h5 --logits lbig.npy
CHECKS=$((CHECKS + 1))
cmp -s l14.npy lbig.npy || fail "a stride of 65536 gives other logits than 14"
# Likewise in int8 (the int8 program and its runner).
ok "$BSP" compact s14.h5 --dtype int8 --calib d.h5 --calib-images 4 -o q14.h5
ok "$BSP" compact s65536.h5 --dtype int8 --calib d.h5 --calib-images 4 -o qbig.h5
ok "$BSP" eval q14.h5 --data d.h5 --logits q14.npy
ok "$BSP" eval qbig.h5 --data d.h5 --logits qbig.npy
ok "$BSP" bench qbig.h5 --reps 1
CHECKS=$((CHECKS + 1))
cmp -s q14.npy qbig.npy || fail "int8: a stride of 65536 gives other logits than 14"

# Out of range: strides, dilations, pads, groups and kernels past 2^24, an
# input near 2^31 (whose MAC total used to overflow and whose schedule
# never ended).
edit bn.h5 st31.h5 stem stride 2147483648,1
refused st31.h5 "node 'stem': stride 2147483648 is out of range: 1 to 16777216 \(bsp-format\(5\), LIMITS\)"
edit bn.h5 stneg.h5 stem stride -4096,1
refused stneg.h5 "node 'stem': kernel, stride and dilation must be positive"
edit bn.h5 dil.h5 stem dilation 1,1099511627776
refused dil.h5 "node 'stem': dilation 1099511627776 is out of range"
edit bn.h5 padbig.h5 stem pad 4611686018427387904,1,1,1
refused padbig.h5 "node 'stem': pad 4611686018427387904 is out of range: 0 to 16777216"
edit bn.h5 grp.h5 stem groups 4294967296
refused grp.h5 "node 'stem': groups 4294967296 is out of range"
edit cnn.h5 kern.h5 pool1 kernel 2147483648,2
refused kern.h5 "node 'pool1': kernel height 2147483648 is out of range"
edit cnn.h5 kern2.h5 pool1 kernel 1048576,2
refused kern2.h5 "node 'pool1': window 1048576x2 larger than the padded input"
edit bn.h5 in31.h5 input shape 2147483647,2147483647,3
refused in31.h5 "node 'input': input dimension 2147483647 is out of range"

# In range but past the memory bound: the message says how much it needs.
edit bn.h5 in24.h5 input shape 16777216,16777216,3
refused in24.h5 "node 'input': output \[16777216, 16777216, 3\] needs 3\.38 PB per image, above bsp's limit of 4\.29 GB \(bsp-format\(5\), LIMITS\)"
edit bn.h5 wide.h5 input shape 16384,16384,3
refused wide.h5 "node 'stem': output \[16384, 16384, 16\] needs 17\.2 GB per image"
edit bn.h5 pad24.h5 stem pad 16777216,16777216,16777216,16777216
refused pad24.h5 "node 'stem': padded input \[33554444, 33554444, 3\] needs [0-9.]+ PB per image"

# A weight dataset that claims 1.5e11 values in a few kilobytes (chunked,
# compressed): refused from its shape, before anything is allocated.
"$PY" - <<'PY' || fail "bigw.h5"
import shutil
import h5py
shutil.copy('bn.h5', 'bigw.h5')
with h5py.File('bigw.h5', 'r+') as f:
    g = f['/graph/nodes/stem']
    del g['weight']
    g.create_dataset('weight', shape=(16, 3, 3, 2**30), dtype='f4', chunks=(1, 1, 1, 2**16), compression='gzip')
PY
refused bigw.h5 "node 'stem': dataset 'weight' \[16, 3, 3, 1073741824\] takes the model past 1073741824 stored values \(4\.29 GB in float32\), bsp's limit \(bsp-format\(5\), LIMITS\)"

# The scheduler's work bound: a map it could plan, but whose program would
# run past 65,536 loop iterations per core, is refused quickly by schedule
# and estimate (the other commands are not concerned).
truncate_at bn.h5 conv.h5 c.relu
edit conv.h5 big.h5 input shape 6000,6000,3
refused big.h5 "loop iterations per core .*above bsp's work limit \(bsp-schedule\(1\), LIMITS\)" schedule estimate
ok "$BSP" info big.h5
out_has '^total: .* 326,592,000,000 MACs per image'  # 6000^2 x 9,072: no overflow

finish
