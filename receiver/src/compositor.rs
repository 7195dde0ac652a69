//! The receiver's compositor: the engine's GPU compositor on real hardware, else the CPU one.

use std::str::FromStr;
use tessera_engine::{
    ApplyError, CpuCompositor, DecodeLimits, DecodedTiles, FrameBuffer, GpuCompositor, GpuContext,
    UpdateHeader,
};

/// What `--compositor` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompositorChoice {
    /// The GPU on a hardware adapter, else the CPU.
    #[default]
    Auto,
    Cpu,
    Gpu,
}

impl FromStr for CompositorChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            _ => Err(format!(
                "unknown compositor {s:?}: expected auto, cpu or gpu"
            )),
        }
    }
}

pub enum Compositor {
    Cpu(CpuCompositor),
    Gpu(Box<GpuCompositor>),
}

impl Compositor {
    /// Opens the compositor asked for; `gpu` without an adapter is an error.
    pub fn open(
        choice: CompositorChoice,
        limits: DecodeLimits,
    ) -> Result<(Self, String), tessera_engine::GpuError> {
        let gpu = match choice {
            CompositorChoice::Cpu => None,
            _ => match GpuContext::new() {
                Ok(ctx) => Some(ctx),
                Err(e) if choice == CompositorChoice::Gpu => return Err(e),
                Err(_) => None,
            },
        };
        Ok(match gpu {
            Some(ctx) if choice == CompositorChoice::Gpu || !ctx.adapter().software => {
                let label = format!("gpu on {}", ctx.adapter());
                (Self::Gpu(Box::new(GpuCompositor::new(&ctx, limits))), label)
            }
            _ => (Self::Cpu(CpuCompositor::new(limits)), "cpu".to_string()),
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

    /// The composited frame in CPU memory (read back from the GPU).
    pub fn frame(&mut self) -> Result<Option<FrameBuffer>, ApplyError> {
        match self {
            Self::Cpu(c) => Ok(c.frame().cloned()),
            Self::Gpu(g) => g.read_back(),
        }
    }
}
