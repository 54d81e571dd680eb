# Helpers for the end-to-end tests: each test script runs the real bsp binary
# ($BSP) in a fresh temporary directory and fails on the first broken check.
set -u
: "${BSP:?BSP must name the bsp binary}"
WORK=$(mktemp -d /tmp/bsp-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
FAILS=0
CHECKS=0

fail() {
  echo "FAIL: $*" >&2
  FAILS=$((FAILS + 1))
}

# ok CMD...: the command must succeed.
ok() {
  CHECKS=$((CHECKS + 1))
  if ! "$@" >"$WORK/.out" 2>"$WORK/.err"; then
    fail "expected success: $* (exit $?)"
    sed 's/^/  stderr: /' "$WORK/.err" >&2
    return 1
  fi
}

# err CODE SUBCOMMAND REGEX CMD...: the command must exit with CODE and print
# exactly one line on stderr, "bsp SUBCOMMAND: ..." matching REGEX.
err() {
  local code=$1 sub=$2 re=$3
  shift 3
  CHECKS=$((CHECKS + 1))
  "$@" >"$WORK/.out" 2>"$WORK/.err"
  local got=$?
  local lines
  lines=$(wc -l <"$WORK/.err")
  local msg
  msg=$(cat "$WORK/.err")
  local prefix="bsp"
  [ -n "$sub" ] && prefix="bsp $sub"
  if [ "$got" -ne "$code" ]; then
    fail "$*: exit $got, expected $code (stderr: $msg)"
  elif [ "$lines" -ne 1 ]; then
    fail "$*: $lines lines on stderr, expected 1: $msg"
  elif [[ "$msg" != "$prefix: "* ]]; then
    fail "$*: stderr does not start with '$prefix: ': $msg"
  elif ! grep -Eq -- "$re" "$WORK/.err"; then
    fail "$*: stderr '$msg' does not match /$re/"
  fi
}

# out_has REGEX: the last command's stdout matches.
out_has() {
  CHECKS=$((CHECKS + 1))
  grep -Eq -- "$1" "$WORK/.out" || fail "stdout does not match /$1/: $(head -c 400 "$WORK/.out")"
}

# no_file PATH...: none of these exist.
no_file() {
  for f in "$@"; do
    CHECKS=$((CHECKS + 1))
    [ -e "$f" ] && fail "'$f' exists but should not"
  done
  return 0
}

# no_temp_files DIR: no temporary output files were left behind.
no_temp_files() {
  CHECKS=$((CHECKS + 1))
  local left
  left=$(find "${1:-.}" -maxdepth 1 -name '.*.tmp.*' | head -3)
  [ -n "$left" ] && fail "temporary files left behind: $left"
  return 0
}

# json_get FILE PYTHON-EXPR: evaluates EXPR with `d` bound to the parsed JSON.
# overflowing_model SRC DST: a copy of SRC whose conv2 and conv3 weights are
# scaled by 1e30: finite, but its forward pass overflows float32.
overflowing_model() {
  cp "$1" "$2"
  /usr/bin/python3 - "$2" <<'PY' || fail "python3 h5py"
import h5py, sys
with h5py.File(sys.argv[1], "r+") as f:
    for n in ["conv2.conv", "conv3.conv"]:
        d = f["graph/nodes/" + n + "/weight"]
        d[...] = d[...] * 1e30
PY
}

json_get() {
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

finish() {
  if [ "$FAILS" -ne 0 ]; then
    echo "$FAILS of $CHECKS checks failed" >&2
    exit 1
  fi
  echo "all $CHECKS checks passed"
  exit 0
}
