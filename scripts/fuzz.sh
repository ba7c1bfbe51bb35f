#!/usr/bin/env bash
# Builds the libFuzzer target for decode_message with clang (a build folder of its own) and
# runs it briefly. Usage: scripts/fuzz.sh [SECONDS] (default 30). Exit status non-zero when the
# fuzzer found a crash; the input that crashed is left in build-fuzz/crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
build="${FEDPP_FUZZ_BUILD:-build-fuzz}"
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFEDPP_BUILD_FUZZ=ON -DFEDPP_BUILD_TESTS=OFF -DFEDPP_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target fuzz_message -j "${FEDPP_FUZZ_JOBS:-2}"
corpus="$build/fuzz-corpus"
mkdir -p "$corpus"
cd "$build"
FEDPP_FUZZ_SEEDS="fuzz-corpus" ASAN_OPTIONS=allocator_may_return_null=1 \
  ./fuzz_message fuzz-corpus -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 \
  -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1
