//! [`GpuContext`]: the wgpu adapter, device and queue that the GPU diff and compositor share.

use thiserror::Error;

/// A failure to get or use a GPU.
#[derive(Debug, Error, Clone)]
pub enum GpuError {
    /// No adapter could be had (no driver, or none that supports compute).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused a device.
    #[error("GPU device request failed: {0}")]
    Device(String),
    /// Waiting on the device failed (device lost, timeout).
    #[error("GPU poll failed: {0}")]
    Poll(String),
    /// Mapping a buffer for read-back failed.
    #[error("GPU buffer map failed: {0}")]
    Map(String),
    /// A window's surface could not be made or used.
    #[error("window surface: {0}")]
    Surface(String),
}

/// Whether tests that need parts of the system — a GPU adapter, an X server — must fail rather
/// than skip without them: in CI (`CI=true`) and wherever `TESSERA_REQUIRE_SYSTEM=1` (the
/// README's test command sets it, after installing those parts).
pub fn system_tests_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("TESSERA_REQUIRE_SYSTEM").is_ok_and(|v| v == "1")
}

/// A short description of the adapter in use, for reports and stats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    /// A CPU or software adapter (lavapipe, llvmpipe, WARP): the CPU diff is faster there.
    pub software: bool,
}

impl AdapterSummary {
    pub fn from_info(info: &wgpu::AdapterInfo) -> Self {
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
            software: info.device_type == wgpu::DeviceType::Cpu,
        }
    }
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {}", self.name, self.backend, self.device_type)?;
        if self.software {
            write!(f, ", software")?;
        }
        write!(f, ")")
    }
}

/// A wgpu device and queue (both cheap to clone) and what adapter they came from.
#[derive(Clone, Debug)]
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    summary: AdapterSummary,
    /// See [`Self::submission_lock`].
    submissions: std::sync::Arc<std::sync::Mutex<()>>,
}

impl GpuContext {
    /// Opens the best adapter (honouring `WGPU_BACKEND` and `WGPU_POWER_PREF`), blocking.
    pub fn new() -> Result<Self, GpuError> {
        pollster::block_on(Self::new_async())
    }

    /// Opens the best adapter (honouring `WGPU_BACKEND` and `WGPU_POWER_PREF`).
    pub async fn new_async() -> Result<Self, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::from_env()
                    .unwrap_or(wgpu::PowerPreference::HighPerformance),
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        Self::from_adapter(&adapter).await
    }

    /// Opens a device on `adapter` with limits large enough for the adapter's biggest textures.
    pub async fn from_adapter(adapter: &wgpu::Adapter) -> Result<Self, GpuError> {
        let info = adapter.get_info();
        let caps = adapter.get_downlevel_capabilities();
        if !caps.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
            return Err(GpuError::NoAdapter(format!(
                "{} has no compute shaders",
                info.name
            )));
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("tessera"),
                required_features: wgpu::Features::empty(),
                required_limits: wgpu::Limits::downlevel_defaults()
                    .using_resolution(adapter.limits()),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        Ok(Self {
            device,
            queue,
            summary: AdapterSummary::from_info(&info),
            submissions: Default::default(),
        })
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    /// Held around queue submissions by everything that shares this context across threads.
    /// Reconfiguring a window surface waits for the queue to drain and fails if another thread
    /// submits meanwhile; a presenter holds this lock while it reconfigures.
    pub fn submission_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.submissions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A texture holding `frame`, usable as a [`crate::GpuFrame`] (`TEXTURE_BINDING | COPY_SRC`,
    /// plus `COPY_DST` so it can be rewritten). For freeze-frames, tests and benchmarks.
    pub fn create_frame_texture(&self, frame: &crate::CpuFrame<'_>) -> wgpu::Texture {
        let size = wgpu::Extent3d {
            width: frame.width(),
            height: frame.height(),
            depth_or_array_layers: 1,
        };
        let texture = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("frame"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: frame.format().texture_format(),
            usage: wgpu::TextureUsages::TEXTURE_BINDING
                | wgpu::TextureUsages::COPY_SRC
                | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        self.write_frame(&texture, frame);
        texture
    }

    /// Overwrites a texture made by [`Self::create_frame_texture`] with a frame of its size.
    pub fn write_frame(&self, texture: &wgpu::Texture, frame: &crate::CpuFrame<'_>) {
        let used = frame.stride() * (frame.height() as usize - 1) + frame.row_bytes();
        self.queue.write_texture(
            texture.as_image_copy(),
            &frame.pixels()[..used],
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(frame.stride() as u32),
                rows_per_image: Some(frame.height()),
            },
            texture.size(),
        );
    }

    /// Blocks until the GPU has finished all submitted work.
    pub fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Poll(e.to_string()))
    }

    /// Reads `len` bytes from the start of a `MAP_READ` buffer, blocking until the GPU is done.
    pub fn read_buffer(
        &self,
        buffer: &wgpu::Buffer,
        len: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), GpuError> {
        let slice = buffer.slice(..len);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| GpuError::Map(e.to_string()))?
            .map_err(|e| GpuError::Map(e.to_string()))?;
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| GpuError::Map(e.to_string()))?;
            out.clear();
            out.extend_from_slice(&view);
        }
        buffer.unmap();
        Ok(())
    }
}
