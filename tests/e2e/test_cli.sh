#!/usr/bin/env bash
# The command line as a whole: help, version, subcommand errors.
source "$E2E_LIB"

ok "$BSP" --help
out_has '^Subcommands:'
out_has '^  init '
out_has '^  info '
# Every listed subcommand has its own --help.
for s in $(awk '/^Subcommands:/{on=1;next} on&&/^  [a-z]/{print $1} on&&/^[A-Za-z]/{on=0}' "$WORK/.out"); do
  ok "$BSP" "$s" --help
  out_has "^Usage: .*bsp $s"
done

# --help and the man page agree: every long option of `bsp SUB --help` is in
# man/bsp-SUB.1, and every option in the page's OPTIONS section is in --help.
for s in $(awk '/^Subcommands:/{on=1;next} on&&/^  [a-z]/{print $1} on&&/^[A-Za-z]/{on=0}' <("$BSP" --help)); do
  page="$MAN_DIR/bsp-$s.1"
  CHECKS=$((CHECKS + 1))
  [ -f "$page" ] || { fail "no man page for '$s'"; continue; }
  help_opts=$("$BSP" "$s" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
  man_opts=$(awk '/^\.SH OPTIONS/{on=1;next} /^\.SH/{on=0} on&&/^\.(B|BI|BR|TP)/' "$page" | sed 's/\\-/-/g' |
    grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
  for o in $help_opts; do
    CHECKS=$((CHECKS + 1))
    sed 's/\\-/-/g' "$page" | grep -q -- "$o" || fail "bsp $s: option $o is in --help but not in $page"
  done
  for o in $man_opts; do
    CHECKS=$((CHECKS + 1))
    echo "$help_opts" | grep -qx -- "$o" || fail "bsp $s: option $o is in $page but not in --help"
  done
done
# The overview page lists every subcommand.
for s in $(awk '/^Subcommands:/{on=1;next} on&&/^  [a-z]/{print $1} on&&/^[A-Za-z]/{on=0}' <("$BSP" --help)); do
  CHECKS=$((CHECKS + 1))
  grep -q "^\.B $s\$" "$MAN_DIR/bsp.1" || fail "man/bsp.1 does not list '$s'"
done

# -q/--quiet and -v/--verbose everywhere but help, never both.
for s in $(awk '/^Subcommands:/{on=1;next} on&&/^  [a-z]/{print $1} on&&/^[A-Za-z]/{on=0}' <("$BSP" --help)); do
  [ "$s" = help ] && continue
  CHECKS=$((CHECKS + 1))
  "$BSP" "$s" --help | grep -q -- '-q,--quiet' && "$BSP" "$s" --help | grep -q -- '-v,--verbose' ||
    fail "bsp $s --help has no -q,--quiet or -v,--verbose"
done
err 2 info "--quiet excludes --verbose" "$BSP" info x.h5 -q -v
# Verbose: one line per model file read and written, with its size.
ok "$BSP" init --arch fmnist-cnn -o v.h5 --verbose
CHECKS=$((CHECKS + 1))
grep -Eq "^bsp init: wrote 'v.h5': $(stat -c %s v.h5 | sed -E ':a;s/([0-9])([0-9]{3})($|,)/\1,\2\3/;ta') bytes, [0-9.]+ s$" "$WORK/.err" ||
  fail "init -v: stderr '$(cat "$WORK/.err")'"
ok "$BSP" prune v.h5 -p block:8x8 -d 0.5 -o vp.h5 -v
CHECKS=$((CHECKS + 1))
[ "$(grep -c "^bsp prune: read 'v.h5': [0-9,]* bytes\|^bsp prune: wrote 'vp.h5': [0-9,]* bytes" "$WORK/.err")" = 2 ] ||
  fail "prune -v: stderr '$(cat "$WORK/.err")'"
# Quiet: no report; the result asked for (info's table) still printed.
ok "$BSP" prune v.h5 -p block:8x8 -d 0.5 -o vq.h5 -q
CHECKS=$((CHECKS + 1))
[ -s "$WORK/.out" ] || [ -s "$WORK/.err" ] && fail "prune -q printed: $(cat "$WORK/.out" "$WORK/.err")"
ok "$BSP" info vq.h5 -q
out_has '^total: '
# Without either: the prune report.
ok "$BSP" prune v.h5 -p block:8x8 -d 0.5 -o vn.h5
CHECKS=$((CHECKS + 1))
[ -s "$WORK/.out" ] || fail "prune without -q printed no report"

ok "$BSP" --version
out_has '^bsp [0-9]+\.[0-9]+\.[0-9]+$'

err 2 "" "a subcommand is required" "$BSP"
err 2 "" "unknown subcommand 'frobnicate'" "$BSP" frobnicate
err 2 "" "" "$BSP" --no-such-flag
err 2 init "not expected|--bogus" "$BSP" init --arch fmnist-cnn --bogus -o x.h5
no_file x.h5
err 2 info "model is required" "$BSP" info

# An error stays one line whatever the file holds: a string quoted from it has
# its control characters escaped, and a huge one is cut short.
"$MAKE_TEST_MODEL" tiny t.h5 || fail "make_test_model tiny"
/usr/bin/python3 - t.h5 <<'PY' || fail "h5py edit"
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    g = f["graph/nodes/a.clip"]
    del g.attrs["op"]
    g.attrs["op"] = "cl\nip\x1b"
PY
err 1 info "node 'a\.clip': unknown op 'cl\\\\nip\\\\x1b'" "$BSP" info t.h5
/usr/bin/python3 - t.h5 <<'PY' || fail "h5py edit"
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    g = f["graph/nodes/a.clip"]
    del g.attrs["op"]
    g.attrs["op"] = "clip"
    g = f["graph/nodes/stem.relu"]
    del g.attrs["op"]
    g.attrs["op"] = "r" * 100000
PY
err 1 info "unknown op 'rrrr+ \.\.\. \([0-9]+ more bytes\)$" "$BSP" info t.h5
CHECKS=$((CHECKS + 1))
[ "$(wc -c <"$WORK/.err")" -lt 5000 ] || fail "a 100000-byte op name gives a $(wc -c <"$WORK/.err")-byte error"

finish
