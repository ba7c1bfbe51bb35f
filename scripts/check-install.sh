#!/usr/bin/env bash
# Installs the built library into a temporary prefix and builds and runs the example in
# examples/custom_algorithm against it through find_package(fedpp).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install build --prefix "$prefix" > /dev/null
cmake -S examples/custom_algorithm -B "$prefix/example-build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$prefix/example-build"
"$prefix/example-build/custom_algorithm"
