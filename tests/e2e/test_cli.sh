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

ok "$BSP" --version
out_has '^bsp [0-9]+\.[0-9]+\.[0-9]+$'

err 2 "" "a subcommand is required" "$BSP"
err 2 "" "unknown subcommand 'frobnicate'" "$BSP" frobnicate
err 2 "" "" "$BSP" --no-such-flag
err 2 init "not expected|--bogus" "$BSP" init --arch fmnist-cnn --bogus -o x.h5
no_file x.h5
err 2 info "model is required" "$BSP" info

finish
