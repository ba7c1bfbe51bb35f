#!/usr/bin/env bash
# Installs everything fedpp needs to build, test and run on Debian 12, from Debian's archive.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  build-essential cmake ninja-build pkg-config python3 \
  libtorch-dev libopenblas0-pthread \
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libspdlog-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  zlib1g-dev libpng-dev libssl-dev openssl gnuplot-nox \
  clang libclang-rt-14-dev \
  dataset-fashion-mnist \
  python3-torch \
  libopenmpi-dev openmpi-bin
