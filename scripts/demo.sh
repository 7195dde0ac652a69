#!/usr/bin/env bash
# Tessera's main job on one machine: a sender sharing the built-in synthetic desktop and a
# receiver viewing it over QUIC on loopback, with live stats, until Ctrl-C: in a window where
# there is a display, headless where there is none.
# Extra arguments go to the sender, e.g.: ./scripts/demo.sh --source synthetic:video --size 3840x2160
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh

ensure_all
viewer=(--headless)
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
    ensure_packages "${TESSERA_WINDOW_PACKAGES[@]}"
    viewer=()
fi

echo "tessera: building (release; the first build takes a few minutes)" >&2
cargo build --release --locked -q -p tessera-sender -p tessera-receiver

dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
./target/release/tessera-sender --listen 127.0.0.1:0 --quiet --stats-json "$dir/sender.json" "$@" >"$dir/join" &
for _ in $(seq 100); do
    grep -q '^join: ' "$dir/join" 2>/dev/null && break
    sleep 0.1
done
join=$(sed -n 's/^join: //p' "$dir/join")
[ -n "$join" ] || { echo "tessera: the sender did not start" >&2; exit 1; }
echo "tessera: sender listening; receiver joining (Ctrl-C to stop)" >&2
./target/release/tessera-receiver "$join" "${viewer[@]}"
