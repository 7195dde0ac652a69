//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use tessera_engine::stream::FrameChecksum;
use tessera_engine::{
    apply_copies, detect_copy, CacheModel, CopyRect, CpuFrame, DirtyMask, FrameBuffer, GpuContext,
    PixelFormat, TileEncoder, TileGrid, COPIES_CAPABILITY,
};

/// The GPU for tests. Without one, the test fails when `CI=true` or `TESSERA_REQUIRE_SYSTEM=1`
/// (the README's test command sets it), and is reported as not run otherwise.
pub fn gpu() -> Option<GpuContext> {
    match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("GPU adapter: {}", ctx.adapter());
            Some(ctx)
        }
        Err(e) => {
            if tessera_engine::system_tests_required() {
                panic!("no GPU adapter, and GPU tests are required here: {e}. Install mesa-vulkan-drivers (lavapipe).");
            }
            eprintln!(
                "NOT RUN: no GPU adapter ({e}); install mesa-vulkan-drivers to run GPU tests"
            );
            None
        }
    }
}

/// A small deterministic random generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n.max(1))) as u32
    }
    pub fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Pixels laid out with `stride` bytes a row (padding filled with junk), copied from `frame`.
pub fn padded(frame: &FrameBuffer, stride: usize, junk: u8) -> Vec<u8> {
    let row = frame.stride();
    let mut out = vec![junk; stride * (frame.height() as usize - 1) + row];
    for (y, src) in frame.pixels().chunks_exact(row).enumerate() {
        out[y * stride..y * stride + row].copy_from_slice(src);
    }
    out
}

/// A frame of random pixels.
pub fn noise(width: u32, height: u32, format: PixelFormat, rng: &mut Rng) -> FrameBuffer {
    let mut f = FrameBuffer::new(width, height, format).unwrap();
    rng.fill(f.pixels_mut());
    f
}

/// One delta as a sender that keeps up with its viewer makes it: the scroll from `prev` to
/// `cur` (when the encoder sends copies and one is found), the frame the viewer holds after
/// it with its tile hashes, and the tiles still to send.
pub struct Planned {
    pub copies: Vec<CopyRect>,
    pub after: FrameBuffer,
    pub hashes: Vec<u64>,
    pub tiles: DirtyMask,
}

pub fn plan(
    encoder: &TileEncoder,
    prev: &FrameBuffer,
    prev_sum: &FrameChecksum,
    cur: &CpuFrame<'_>,
    grid: &TileGrid,
    mask: &DirtyMask,
) -> Planned {
    let mut planned = Planned {
        copies: Vec::new(),
        after: prev.clone(),
        hashes: prev_sum.hashes().to_vec(),
        tiles: mask.clone(),
    };
    if encoder.codecs() & COPIES_CAPABILITY == 0 {
        return planned;
    }
    let Some(copy) = detect_copy(&prev.as_frame(), cur, grid, mask) else {
        return planned;
    };
    apply_copies(&mut planned.after, &[copy]).unwrap();
    let written = grid.tiles_touching(&[copy.dst()]);
    let mut after_sum = prev_sum.clone();
    after_sum.update_from_frame(&planned.after.as_frame(), &written);
    let mut cur_sum = FrameChecksum::new(*grid);
    cur_sum.update_from_frame(cur, &written);
    let mut tiles = DirtyMask::new(grid.tile_count());
    for t in mask.iter().chain(written.iter()) {
        if !(written.get(t) && after_sum.hashes()[t] == cur_sum.hashes()[t]) {
            tiles.set(t);
        }
    }
    planned.copies.push(copy);
    planned.hashes = after_sum.hashes().to_vec();
    planned.tiles = tiles;
    planned
}

/// The tiles of `tiles` whose content (by `hashes`, the frame's tile hashes) the viewer's
/// tile cache holds, as the sender's `model` says; none when there are none.
pub fn cached_tiles(model: &CacheModel, tiles: &DirtyMask, hashes: &[u64]) -> Option<DirtyMask> {
    let mut m = DirtyMask::new(tiles.len());
    for t in tiles.iter().filter(|&t| model.holds(hashes[t])) {
        m.set(t);
    }
    (!m.none()).then_some(m)
}

/// Records in `model` an update of `tiles` (by `hashes`), as a sender does once it sent it.
pub fn record_sent(
    model: &mut CacheModel,
    keyframe: bool,
    grid: &TileGrid,
    tiles: &DirtyMask,
    hashes: &[u64],
) {
    model.record(
        keyframe,
        tiles.iter().map(|t| {
            let r = grid.tile_rect(t);
            (hashes[t], r.width, r.height)
        }),
    );
}
