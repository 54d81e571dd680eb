#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.cpp) in the sanitizer build
# of tests/sanitize.sh (build-asan/: clang, ASan + UBSan, libFuzzer coverage),
# linked with -fsanitize=fuzzer. The normal gcc build (build/) is untouched.
exec "$(dirname "$0")/../sanitize.sh" --build tests/fuzz/fuzz_model tests/fuzz/fuzz_edit tests/fuzz/fuzz_program tests/fuzz/fuzz_hardware
