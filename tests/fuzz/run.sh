#!/bin/bash
# Runs each fuzz target for a fixed time from its seed corpus and reports, as
# a benchmark script does: executions, coverage, corpus, and the crashes,
# hangs and out-of-memory inputs found (each saved under RUN_DIR/artifacts,
# with the first frames of its report, marked HDF5 when the fault is inside
# libhdf5 rather than bsp). Exit status 1 when anything was found.
#   tests/fuzz/run.sh SECONDS [TARGET...]   (targets: model edit program hardware)
# Environment: BUILD (build-asan), SEEDS (made with make_seeds.sh when
# absent: RUN_DIR/seeds), RUN_DIR (BUILD/fuzz-run), TIMEOUT per input (10 s).
set -uo pipefail
secs=${1:?usage: run.sh SECONDS [model edit program hardware]}
shift
targets=${*:-model edit program hardware}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$src/build-asan}
run=${RUN_DIR:-$build/fuzz-run}
seeds=${SEEDS:-$run/seeds}
timeout=${TIMEOUT:-10}
mkdir -p "$run"
[ -d "$seeds/model" ] || "$src/tests/fuzz/make_seeds.sh" "$seeds" "${NORMAL_BUILD:-$src/build}" || exit 1
# Any sanitizer report is fatal; leaks are reported (libFuzzer checks each
# input that grows memory) except those in tests/sanitize.supp.
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$src/tests/sanitize.supp:print_suppressions=0
export BSP_FUZZ_BASES=$seeds/bases
found=0
printf '%-8s %8s %10s %8s %6s %6s %8s %6s\n' target seconds execs exec/s cov corpus crashes hangs
for t in $targets; do
  bin=$build/tests/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "run.sh: no $bin: run tests/fuzz/build.sh" >&2; exit 1; }
  corpus=$run/corpus-$t
  art=$run/artifacts/$t
  mkdir -p "$corpus" "$art"
  # Inputs up to the largest seed, and a little more.
  max=$(find "$seeds/$t" -type f -printf '%s\n' | sort -n | tail -1)
  max=$((max + max / 8 + 64))
  log=$run/$t.log
  start=$(date +%s)
  # fork mode: a crash, hang or OOM is saved and the run goes on.
  "$bin" "$corpus" "$seeds/$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$secs" -timeout="$timeout" -rss_limit_mb=2048 -max_len="$max" \
    -artifact_prefix="$art/" -print_final_stats=1 >"$log" 2>&1
  took=$(($(date +%s) - start))
  # The last status line: "#N: cov: C ft: F corp: K exec/s: E oom/timeout/crash: a/b/c time: T ..."
  last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1)
  execs=$(sed -nE 's/^#([0-9]+):.*/\1/p' <<<"$last")
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  eps=$(sed -nE 's/.* exec\/s:? ([0-9]+).*/\1/p' <<<"$last")
  crashes=$(find "$art" -name 'crash-*' | wc -l)
  hangs=$(find "$art" -name 'timeout-*' -o -name 'oom-*' | wc -l)
  printf '%-8s %8s %10s %8s %6s %6s %8s %6s\n' "$t" "$took" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${corp:-?}" "$crashes" "$hangs"
  [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ] && found=1
done
# Triage: where each saved input fails (the first bsp or HDF5 frames).
for t in $targets; do
  for f in $(find "$run/artifacts/$t" -type f 2>/dev/null | sort); do
    rep=$("$build/tests/fuzz/fuzz_$t" "$f" -timeout="$timeout" -rss_limit_mb=2048 2>&1 | grep -E '^ +#[0-9]+ ' | grep -vE 'libFuzzer|fuzzer::|__sanitizer|__asan|__ubsan|__interceptor|in (malloc|calloc|realloc|operator new)|libc\.so|sysdeps/|__mem(cpy|move|set|cmp)|libstdc|abort|raise|terminate|__cxa' | head -3)
    where=bsp
    grep -q 'libhdf5' <<<"$(head -1 <<<"$rep")" && where=HDF5
    # (fork mode can save an input whose fault does not replay alone)
    [ -z "$rep" ] && where="no report on replay"
    echo "$t $(basename "$f") [$where]"
    sed 's/^/    /' <<<"$rep"
  done
done
exit $found
