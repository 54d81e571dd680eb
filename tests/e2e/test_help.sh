#!/usr/bin/env bash
# bsp help (the man page, or --help without man) and the bash completion
# (data/completion/bsp asking `bsp __complete`).
source "$E2E_LIB"
SRC=$(cd "$MAN_DIR/.." && pwd)

# bsp help TOPIC: the page of this source tree, formatted by man.
if command -v man >/dev/null; then
  ok "$BSP" help prune
  out_has '^BSP-PRUNE\(1\)'
  out_has 'bsp-prune - prune a model'
  ok "$BSP" help
  out_has '^BSP\(1\)'
  ok "$BSP" help format
  out_has '^BSP-FORMAT\(5\)'
  ok "$BSP" help isa
  out_has '^BSP-ISA\(7\)'
fi
# Without man: the subcommand's --help on stdout and one note on stderr;
# a section 5/7 page without man is an error.
CHECKS=$((CHECKS + 1))
PATH=/nonexistent "$BSP" help schedule >"$WORK/.out" 2>"$WORK/.err" || fail "help without man: exit $?"
out_has '^Usage: bsp schedule '
out_has '--target'
CHECKS=$((CHECKS + 1))
[ "$(wc -l <"$WORK/.err")" -eq 1 ] && grep -q "^bsp help: the page bsp-schedule(1) cannot be shown ('man' is missing); here is --help" "$WORK/.err" ||
  fail "help without man: stderr: $(cat "$WORK/.err")"
err 1 help "the page bsp-aie2\(5\) cannot be shown" env PATH=/nonexistent "$BSP" help aie2
err 2 help "unknown topic 'frobnicate' \(a subcommand, or format, aie2, isa\)" "$BSP" help frobnicate
err 2 help "" "$BSP" help prune extra

# Completion, through the installed script as bash runs it.
# complete WORD...: the candidates bash would offer for the last word.
complete_words() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _bsp
    printf "%s\n" "${COMPREPLY[@]}"' _ "$SRC/data/completion/bsp" "$BSP" "$@"
}
# expect "WORDS" "CANDIDATES": the offer is exactly CANDIDATES (sorted, space-separated).
expect() {
  CHECKS=$((CHECKS + 1))
  local got
  # shellcheck disable=SC2086
  got=$(complete_words $1 | sort | tr '\n' ' ' | sed 's/ $//')
  [ "$got" = "$2" ] || fail "completing '$1': got '$got', expected '$2'"
}
expect "fi" "finetune"
expect "e" "estimate eval explore export"
expect "--v" "--version"
expect "prune --crit" "--criterion"
expect "prune --criterion v" "variance"
expect "prune --pattern nm:2" "nm:2:4 nm:2:8"
expect "init --arch fmnist" "fmnist-cnn fmnist-resnet"
expect "compact --dtype b" "bf16"
expect "export --dtype i" "int8"
expect "bench --baseline d" "dense"
expect "schedule --target npu" "npu1"
expect "explore --target no" "none"
expect "help fo" "format"
expect "info --w" "--weighted"
# Files where a file goes: the model, -o, --data's paths beside its names.
touch model_a.h5 model_b.h5
expect "info model_" "model_a.h5 model_b.h5"
expect "prune m.h5 -o model_a" "model_a.h5"
expect "eval m.h5 --data model_b" "model_b.h5"
expect "eval m.h5 --data fash" "fashion-mnist"
# Every subcommand and every option of its --help completes.
for s in $("$BSP" __complete 1 bsp ""); do
  expect "$s" "$s"
  for o in $("$BSP" "$s" --help | awk '/^  -/ {n = split($1, a, ","); for (i = 1; i <= n; i++) if (a[i] ~ /^--/) print a[i]}'); do
    CHECKS=$((CHECKS + 1))
    complete_words "$s" "$o" | grep -qx -- "$o" || fail "completing 'bsp $s $o' does not offer $o"
  done
done
# The value rules name options that exist.
ok "$BSP" __complete --check

finish
