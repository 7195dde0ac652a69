# Sourced by Tessera's scripts: installs what a fresh Debian/Ubuntu machine is missing.
# As root, missing system packages are installed with apt-get; otherwise the exact install line
# is printed and the script stops.

# The Rust version the workspace needs (Cargo.toml's rust-version).
TESSERA_MIN_RUST="1.87"

ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "tessera: missing system packages ${missing[*]} and no apt-get to install them" >&2
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "tessera: missing system packages. Install them with:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "tessera: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "tessera: Rust is not installed. Install it (then open a new shell) with:" >&2
        echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y" >&2
        exit 1
    fi
    local have
    have=$(rustc --version | awk '{print $2}')
    if [ "$(printf '%s\n%s\n' "$TESSERA_MIN_RUST" "$have" | sort -V | head -n1)" != "$TESSERA_MIN_RUST" ]; then
        echo "tessera: Rust $have is older than $TESSERA_MIN_RUST. Update it with:" >&2
        echo "  rustup update stable" >&2
        exit 1
    fi
}

# Vulkan (lavapipe, Mesa's software driver) so the GPU code runs on machines without a GPU.
TESSERA_GPU_PACKAGES=(libvulkan1 mesa-vulkan-drivers)

# What the PipeWire capture backend builds against (its bindings are generated with clang).
TESSERA_BUILD_PACKAGES=(pkg-config clang libclang-dev libpipewire-0.3-dev libspa-0.2-dev)

# What the receiver's window loads at run time (winit on X11 or Wayland).
TESSERA_WINDOW_PACKAGES=(libx11-6 libx11-xcb1 libxcursor1 libxi6 libxrandr2 libxkbcommon0 libxkbcommon-x11-0 libwayland-client0)

# What the tests drive: an X server and real X clients for the X11 capture and window tests,
# a PipeWire daemon for the PipeWire capture test, a D-Bus daemon for the desktop portal test,
# and the window's libraries.
TESSERA_TEST_PACKAGES=(xvfb x11-apps xterm xdotool pipewire pipewire-bin dbus "${TESSERA_WINDOW_PACKAGES[@]}")

# The Vulkan loader warns on every start without a runtime dir; give it a private one.
ensure_runtime_dir() {
    if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
        XDG_RUNTIME_DIR=$(mktemp -d)
        chmod 700 "$XDG_RUNTIME_DIR"
        export XDG_RUNTIME_DIR
    fi
}

# Everything Tessera needs to build and run: Rust, the Vulkan runtime, the PipeWire headers, a
# runtime dir.
ensure_all() {
    ensure_rust
    ensure_packages "${TESSERA_GPU_PACKAGES[@]}" "${TESSERA_BUILD_PACKAGES[@]}"
    ensure_runtime_dir
}
