#!/bin/bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer.
# Configures (once) and builds build-asan/ with Debian's clang:
# -fsanitize=address,undefined, no recovery, and libFuzzer's coverage hooks
# (-fsanitize=fuzzer-no-link, inert without libFuzzer) so that the same
# build also makes the fuzz targets (tests/fuzz/build.sh). Then runs meson
# test there with every sanitizer report fatal: a report fails the test that
# triggered it (the end-to-end tests run the sanitized bsp binary, which
# inherits this environment). Leaks are reported, except those listed in
# tests/sanitize.supp (not bsp's; each entry says why).
#   tests/sanitize.sh                   the whole suite (unit and e2e)
#   tests/sanitize.sh --suite sanitize  the fast subset (see tests/meson.build)
#   tests/sanitize.sh [meson test args...]
#   tests/sanitize.sh --build [TARGET...]   configure and build only
# Environment: BUILD (build-asan), JOBS (2).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
dir=${BUILD:-build-asan}
jobs=${JOBS:-2}
if [ ! -f "$dir/build.ninja" ]; then
  cxx=clang++
  command -v ccache >/dev/null && cxx="ccache clang++"
  # -O1 and line tables: the sanitizers' usual trade of speed for build time
  # and reports that name file and line. b_lundef=false: the sanitizer
  # runtimes resolve symbols at load time. No LTO: every frame in reports.
  CXX="$cxx" meson setup "$dir" --buildtype=plain --wrap-mode=nofallback -Dfuzz=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Db_lto=false \
    -Dcpp_args="['-O1', '-gline-tables-only', '-fno-omit-frame-pointer', '-fno-sanitize-recover=all', '-fsanitize=fuzzer-no-link']" \
    -Dcpp_link_args="['-fno-sanitize-recover=all']"
fi
if [ "${1:-}" = --build ]; then
  shift
  exec ninja -C "$dir" -j "$jobs" "$@"
fi
ninja -C "$dir" -j "$jobs"
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:print_summary=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1
export LSAN_OPTIONS=suppressions=$src/tests/sanitize.supp:print_suppressions=0
# Sanitized code runs 2-3 times slower: the tests get three times their time.
start=$(date +%s)
status=0
meson test -C "$dir" --num-processes "$jobs" --timeout-multiplier 3 --print-errorlogs "$@" || status=$?
echo "sanitize.sh: $(($(date +%s) - start)) s of tests, exit $status"
exit $status
