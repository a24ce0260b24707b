#!/usr/bin/env bash
# Runs the kernel tests for aarch64 (the NEON GEMM micro-kernel and the row kernels over
# `wide`) under qemu user-mode emulation. Needs rustup's aarch64 target and Debian's cross
# gcc and qemu-user; installs them if missing. Takes about 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add aarch64-unknown-linux-gnu
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    apt-get update -qq && apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
cargo test -p clip-kernels --target aarch64-unknown-linux-gnu --target-dir target/aarch64
