//! The headless receiver's compositor, chosen by the same rule as the diff
//! (`tessera_engine::choose_backend`): its output is read in CPU memory (checksums, dumps), so
//! `auto` takes the CPU compositor and `gpu` must be asked for. The window always composites on
//! the GPU, where it presents.

use tessera_engine::{
    choose_backend, needs_gpu, ApplyError, BackendRequest, CpuCompositor, DecodeLimits,
    DecodedTiles, DiffBackend, FrameBuffer, FramesIn, GpuCompositor, GpuContext, GpuError, Rect,
    UpdateHeader,
};

pub enum Compositor {
    Cpu(Box<CpuCompositor>),
    Gpu(Box<GpuCompositor>),
}

impl Compositor {
    /// Opens the headless compositor asked for (`auto`: the CPU, since the frame is read in CPU
    /// memory); `gpu` without an adapter is an error. Returns it with a label for reports.
    /// `tile_cache` is its tile cache's budget in bytes (what the receiver announced).
    pub fn open(
        request: BackendRequest,
        limits: DecodeLimits,
        tile_cache: u32,
    ) -> Result<(Self, String), GpuError> {
        let gpu = if needs_gpu(request, FramesIn::Cpu) {
            GpuContext::new()
        } else {
            Err(GpuError::NoAdapter("not opened".into()))
        };
        let choice = choose_backend(request, FramesIn::Cpu, gpu.as_ref().map(|g| g.adapter()))?;
        Ok(match (choice.backend, gpu) {
            (DiffBackend::Gpu, Ok(ctx)) => (
                Self::Gpu(Box::new(
                    GpuCompositor::new(&ctx, limits).with_tile_cache(tile_cache),
                )),
                format!("gpu on {}", ctx.adapter()),
            ),
            _ => (
                Self::Cpu(Box::new(
                    CpuCompositor::new(limits).with_tile_cache(tile_cache),
                )),
                "cpu".to_string(),
            ),
        })
    }

    pub fn apply(&mut self, update: &[u8]) -> Result<UpdateHeader, ApplyError> {
        match self {
            Self::Cpu(c) => c.apply(update),
            Self::Gpu(g) => g.apply(update),
        }
    }

    pub fn decoded(&self) -> &DecodedTiles {
        match self {
            Self::Cpu(c) => c.decoded(),
            Self::Gpu(g) => g.decoded(),
        }
    }

    /// Where the last update's copies wrote.
    pub fn copied(&self) -> &[Rect] {
        match self {
            Self::Cpu(c) => c.copied(),
            Self::Gpu(g) => g.copied(),
        }
    }

    /// The frame as held in CPU memory (the GPU compositor keeps a copy beside its texture).
    pub fn held(&self) -> Option<&FrameBuffer> {
        match self {
            Self::Cpu(c) => c.frame(),
            Self::Gpu(g) => g.held(),
        }
    }

    /// The composited frame in CPU memory (read back from the GPU).
    pub fn frame(&mut self) -> Result<Option<FrameBuffer>, ApplyError> {
        match self {
            Self::Cpu(c) => Ok(c.frame().cloned()),
            Self::Gpu(g) => g.read_back(),
        }
    }
}
