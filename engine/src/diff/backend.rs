//! Choosing where a stage (the diff, the receiver's compositor) runs: `auto` takes the GPU only
//! when the frames already live there and the adapter is real hardware.
//!
//! - On a software adapter (lavapipe, llvmpipe, WARP) GPU work runs on the same CPU through a
//!   JIT: the diff is 20-80x slower than [`super::CpuDiff`].
//! - On real hardware, frames in CPU memory cost more to upload than to compare on the CPU: on
//!   an H100 with 16 CPU threads, upload and diff took 1.6x a frame copy at 1080p, the CPU diff
//!   0.1x on all threads and 0.9x on one (BENCHMARKS.md). The GPU pays off for frames a capture
//!   backend hands over as textures.

use crate::{AdapterSummary, GpuError};
use std::str::FromStr;

/// What the user asked for (`--diff`, `--compositor`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendRequest {
    /// The GPU where the frames live there and the adapter is real hardware, else the CPU.
    #[default]
    Auto,
    Cpu,
    Gpu,
}

impl FromStr for BackendRequest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            other => Err(format!(
                "unknown backend {other:?}: expected auto, cpu or gpu"
            )),
        }
    }
}

/// Where a stage's frames live before it runs: where the capture backend put them (the diff),
/// or where its output is read (the compositor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramesIn {
    /// CPU memory: shared-memory capture, mapped buffers, a headless receiver.
    Cpu,
    /// GPU textures: zero-copy capture, a receiver that presents in a window.
    Gpu,
}

/// Where a stage runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffBackend {
    Cpu,
    Gpu,
}

/// The outcome of [`choose_backend`], for the user to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendChoice {
    pub backend: DiffBackend,
    /// The adapter that was found, whether or not it is used.
    pub adapter: Option<AdapterSummary>,
    /// Why this backend, in a sentence.
    pub reason: String,
}

impl std::fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.backend {
            DiffBackend::Cpu => "cpu",
            DiffBackend::Gpu => "gpu",
        };
        write!(f, "{name}: {}", self.reason)
    }
}

/// Whether the stage needs a GPU opened to decide: not when the CPU is forced, nor when `auto`
/// meets frames in CPU memory (it takes the CPU there whatever the adapter).
pub fn needs_gpu(request: BackendRequest, frames: FramesIn) -> bool {
    match request {
        BackendRequest::Cpu => false,
        BackendRequest::Gpu => true,
        BackendRequest::Auto => frames == FramesIn::Gpu,
    }
}

/// Decides the backend from the request, where the frames live and the outcome of opening a
/// GPU (an error when [`needs_gpu`] said none was needed).
///
/// `gpu` forced without an adapter is an error; `auto` falls back to the CPU.
pub fn choose_backend(
    request: BackendRequest,
    frames: FramesIn,
    adapter: Result<&AdapterSummary, &GpuError>,
) -> Result<BackendChoice, GpuError> {
    let found = adapter.ok().cloned();
    let (backend, reason) = match (request, adapter) {
        (BackendRequest::Cpu, _) => (DiffBackend::Cpu, "requested".to_string()),
        (BackendRequest::Gpu, Ok(a)) => (DiffBackend::Gpu, format!("requested, on {a}")),
        (BackendRequest::Gpu, Err(e)) => return Err(e.clone()),
        (BackendRequest::Auto, _) if frames == FramesIn::Cpu => (
            DiffBackend::Cpu,
            "frames are in CPU memory, where comparing them costs less than uploading them"
                .to_string(),
        ),
        (BackendRequest::Auto, Ok(a)) if !a.software => (
            DiffBackend::Gpu,
            format!("frames on the GPU, hardware adapter {a}"),
        ),
        (BackendRequest::Auto, Ok(a)) => (
            DiffBackend::Cpu,
            format!("adapter {a} is software, where the CPU is faster"),
        ),
        (BackendRequest::Auto, Err(e)) => (DiffBackend::Cpu, format!("no usable GPU ({e})")),
    };
    Ok(BackendChoice {
        backend,
        adapter: found,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(software: bool) -> AdapterSummary {
        AdapterSummary {
            name: if software { "llvmpipe" } else { "NVIDIA H100" }.into(),
            backend: "Vulkan".into(),
            device_type: if software { "Cpu" } else { "DiscreteGpu" }.into(),
            driver: String::new(),
            software,
        }
    }

    #[test]
    fn auto_takes_gpu_only_on_hardware() {
        let hw = adapter(false);
        let sw = adapter(true);
        let none = GpuError::NoAdapter("none".into());
        let pick = |r, a| choose_backend(r, FramesIn::Gpu, a).map(|c| c.backend);
        assert_eq!(
            pick(BackendRequest::Auto, Ok(&hw)).unwrap(),
            DiffBackend::Gpu
        );
        assert_eq!(
            pick(BackendRequest::Auto, Ok(&sw)).unwrap(),
            DiffBackend::Cpu
        );
        assert_eq!(
            pick(BackendRequest::Auto, Err(&none)).unwrap(),
            DiffBackend::Cpu
        );
        assert_eq!(
            pick(BackendRequest::Gpu, Ok(&sw)).unwrap(),
            DiffBackend::Gpu
        );
        assert_eq!(
            pick(BackendRequest::Cpu, Ok(&hw)).unwrap(),
            DiffBackend::Cpu
        );
        assert!(pick(BackendRequest::Gpu, Err(&none)).is_err());
        let c = choose_backend(BackendRequest::Auto, FramesIn::Gpu, Ok(&sw)).unwrap();
        assert_eq!(c.adapter, Some(sw));
        assert!(c.to_string().contains("software"), "{c}");
    }

    #[test]
    fn auto_keeps_frames_in_cpu_memory_on_the_cpu() {
        let hw = adapter(false);
        let c = choose_backend(BackendRequest::Auto, FramesIn::Cpu, Ok(&hw)).unwrap();
        assert_eq!(c.backend, DiffBackend::Cpu);
        assert!(c.to_string().contains("CPU memory"), "{c}");
        let forced = choose_backend(BackendRequest::Gpu, FramesIn::Cpu, Ok(&hw)).unwrap();
        assert_eq!(forced.backend, DiffBackend::Gpu);
        assert!(!needs_gpu(BackendRequest::Auto, FramesIn::Cpu));
        assert!(needs_gpu(BackendRequest::Auto, FramesIn::Gpu));
        assert!(needs_gpu(BackendRequest::Gpu, FramesIn::Cpu));
        assert!(!needs_gpu(BackendRequest::Cpu, FramesIn::Gpu));
    }

    #[test]
    fn parses_requests() {
        assert_eq!("gpu".parse(), Ok(BackendRequest::Gpu));
        assert!("GPU!".parse::<BackendRequest>().is_err());
    }
}
