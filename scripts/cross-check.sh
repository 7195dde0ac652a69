#!/usr/bin/env bash
# Type-checks (with clippy -D warnings) the capture backends and the sender and receiver for
# Windows and macOS on this Linux machine: Debian's own Rust (rustc-web) builds std for those
# targets from source (build-std), nothing is linked. C code that build scripts compile (ring's)
# goes to stand-ins that write empty objects (scripts/cross-check/cc, ar): there is no C
# toolchain or SDK for those targets here, and nothing is linked. See
# ../shared/notes/cross-check.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh

# Debian ships rustc-web (bookworm-security); elsewhere the check is skipped, except in CI.
if ! apt-cache show rustc-web >/dev/null 2>&1; then
    if [ "${CI:-}" = "true" ]; then
        echo "tessera: the Windows/macOS type-check needs Debian's rustc-web, which apt cannot find" >&2
        exit 1
    fi
    echo "tessera: skipping the Windows/macOS type-check (needs Debian's rustc-web package)" >&2
    exit 0
fi
ensure_packages rustc-web cargo-web rust-web-src rust-web-clippy

export PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
stubs="$PWD/scripts/cross-check"
for target in x86_64_pc_windows_msvc aarch64_apple_darwin; do
    export "CC_$target=$stubs/cc" "AR_$target=$stubs/ar"
done
/usr/bin/cargo clippy -p tessera-platform -p tessera-sender -p tessera-receiver --locked \
    -Zbuild-std=core,alloc,std,panic_abort \
    --target x86_64-pc-windows-msvc --target aarch64-apple-darwin \
    --target-dir target/cross-check -- -D warnings
echo "tessera: tessera-platform, tessera-sender and tessera-receiver type-check for x86_64-pc-windows-msvc and aarch64-apple-darwin" >&2
