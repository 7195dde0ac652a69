// Tile diff: one workgroup of 64 invocations compares one tile of `previous` and `current` and,
// if any pixel differs, sets the tile's bit in `mask`. Invocations cover the tile in passes of
// `span` columns x (64 / span) rows, so small tiles keep every lane busy. Each invocation stops at
// its first difference, and all of them stop once any one has found one.

struct Params {
    width: u32,
    height: u32,
    tile_size: u32,
    cols: u32,
    // Number of tile indices in `listed` (entry point `diff_listed`).
    listed_count: u32,
    // 0 for opaque formats: the fourth byte is padding and is not compared.
    compare_alpha: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var previous: texture_2d<f32>;
@group(0) @binding(1) var current: texture_2d<f32>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> mask: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read> listed: array<u32>;

const LANES: u32 = 64u;

var<workgroup> found: atomic<u32>;

fn differs(a: vec4<f32>, b: vec4<f32>) -> bool {
    let d = a != b;
    return d.x || d.y || d.z || (d.w && params.compare_alpha != 0u);
}

// Compares the pixels of `tile` in columns x0..x1 and rows y0..y1 (inside the tile).
fn diff_tile(tile: u32, lane: u32, x0: u32, y0: u32, x1: u32, y1: u32) {
    let span = min(params.tile_size, LANES);
    let rows_per_pass = LANES / span;
    if (lane >= span * rows_per_pass) {
        return;
    }
    for (var y = y0 + lane / span; y < y1; y += rows_per_pass) {
        if (atomicLoad(&found) != 0u) {
            return;
        }
        for (var x = x0 + lane % span; x < x1; x += span) {
            let p = vec2<u32>(x, y);
            if (differs(textureLoad(previous, p, 0), textureLoad(current, p, 0))) {
                atomicStore(&found, 1u);
                atomicOr(&mask[tile / 32u], 1u << (tile % 32u));
                return;
            }
        }
    }
}

// Every tile: dispatched as (cols, rows, 1).
@compute @workgroup_size(64)
fn diff_all(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let tile = wg.y * params.cols + wg.x;
    let x0 = wg.x * params.tile_size;
    let y0 = wg.y * params.tile_size;
    let x1 = min(x0 + params.tile_size, params.width);
    let y1 = min(y0 + params.tile_size, params.height);
    diff_tile(tile, lane, x0, y0, x1, y1);
}

// Only the tiles in `listed` (those touching damage hints), three words each: the tile, its
// columns and its rows to compare (first | end << 16, the hints' window). Dispatched as
// (min(n, 65535), ceil(n / 65535), 1).
@compute @workgroup_size(64)
fn diff_listed(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let slot = wg.y * groups.x + wg.x;
    if (slot >= params.listed_count) {
        return;
    }
    let columns = listed[slot * 3u + 1u];
    let rows = listed[slot * 3u + 2u];
    diff_tile(
        listed[slot * 3u],
        lane,
        columns & 0xFFFFu,
        rows & 0xFFFFu,
        columns >> 16u,
        rows >> 16u,
    );
}
