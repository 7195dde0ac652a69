#!/usr/bin/env bash
# Runs Tessera's whole test suite, installing what is missing first.
# GPU tests run on whatever Vulkan adapter exists (lavapipe without a GPU) and fail if none does.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh

ensure_all
ensure_packages "${TESSERA_TEST_PACKAGES[@]}"
export TESSERA_REQUIRE_SYSTEM=1

cargo test --workspace --locked
# The benchmarks, once each, to prove they still run (figures come from `cargo bench`).
cargo test -p tessera-benches --benches --locked
# The Windows and macOS capture backends, type-checked (they cannot run here).
bash scripts/cross-check.sh
