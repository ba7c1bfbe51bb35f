#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (a build folder of its own) and runs each briefly:
#   fuzz_message  decode_message (every codec; with and without reference tensors)
#   fuzz_config   the TOML config reader and its typed getters
#   fuzz_loaders  the data loaders (IDX plain/gzip, CIFAR-10/100 binary, PNG folders)
#   fuzz_chunks   the chunk assembler of the gRPC task and reply streams, and the hand-written
#                 chunk reader (differentially against protobuf)
# Usage: scripts/fuzz.sh [SECONDS per target] (default 30). Exit status non-zero when a fuzzer
# found a crash; the input that crashed is left in build-fuzz/crash-*. Prints each target's
# number of executions (libFuzzer's stat::number_of_executed_units). Inputs that once crashed a
# target are kept in fuzz/regressions/<target>/ and run first, every time.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
secs="${1:-30}"
build="${FEDPP_FUZZ_BUILD:-build-fuzz}"
targets=(fuzz_message fuzz_config fuzz_loaders fuzz_chunks)
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFEDPP_BUILD_FUZZ=ON -DFEDPP_BUILD_TESTS=OFF -DFEDPP_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target "${targets[@]}" -j "${FEDPP_FUZZ_JOBS:-2}"
cd "$build"
for t in "${targets[@]}"; do
  corpus="corpus-$t"
  mkdir -p "$corpus"
  echo "== $t: $secs s"
  FEDPP_FUZZ_SEEDS="$corpus" ASAN_OPTIONS=allocator_may_return_null=1 \
    "./$t" "$corpus" $(ls -d "$root/fuzz/regressions/$t" 2>/dev/null) -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 \
    -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 2>&1 |
    tee "$t.log" | grep -E "^stat::number_of_executed_units|^== |SUMMARY: |ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)" || true
  # The pipeline hides the fuzzer's status: a crash leaves a crash-* file and an ERROR line.
  if grep -qE "ERROR: (libFuzzer|AddressSanitizer)|SUMMARY: " "$t.log"; then
    echo "fuzz.sh: $t found a crash: see $build/$t.log and $build/crash-*" >&2
    exit 1
  fi
done
