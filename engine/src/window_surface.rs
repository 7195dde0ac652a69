//! [`WindowSurface`]: a window's wgpu surface set up for exact pixels and low latency, with the
//! device that presents to it. The window itself (winit) belongs to the binaries.

use crate::{GpuContext, GpuError};

/// Surface formats that store the bytes a shader writes (no sRGB re-encoding), best first.
const EXACT_FORMATS: [wgpu::TextureFormat; 2] = [
    wgpu::TextureFormat::Bgra8Unorm,
    wgpu::TextureFormat::Rgba8Unorm,
];

/// Present modes that never queue a frame behind another, best first (Fifo is the fallback
/// every surface offers): Mailbox does not tear. On a software adapter, where Mesa's Mailbox adds
/// a present thread competing for the same cores, Immediate came out ahead (1080p typing p99
/// capture->presented 11.5-12.9 ms against 15.4-46.5 ms, alternating runs on lavapipe).
const LOW_LATENCY_MODES: [wgpu::PresentMode; 2] =
    [wgpu::PresentMode::Mailbox, wgpu::PresentMode::Immediate];

/// A configured surface and its device.
pub struct WindowSurface {
    pub ctx: GpuContext,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
}

/// A surface texture to draw into, then hand to [`WindowSurface::present`].
pub struct SurfaceFrame {
    pub texture: wgpu::SurfaceTexture,
    suboptimal: bool,
}

impl WindowSurface {
    /// Opens a surface on `window` (`width` x `height` physical pixels) and a device on an
    /// adapter that can present to it (honouring `WGPU_BACKEND` and `WGPU_POWER_PREF`).
    pub fn new(
        window: impl Into<wgpu::SurfaceTarget<'static>>,
        (width, height): (u32, u32),
    ) -> Result<Self, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let surface = instance
            .create_surface(window)
            .map_err(|e| GpuError::Surface(e.to_string()))?;
        let adapter =
            pollster::block_on(
                instance.request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::from_env()
                        .unwrap_or(wgpu::PowerPreference::HighPerformance),
                    force_fallback_adapter: false,
                    compatible_surface: Some(&surface),
                    apply_limit_buckets: false,
                }),
            )
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let ctx = pollster::block_on(GpuContext::from_adapter(&adapter))?;
        let caps = surface.get_capabilities(&adapter);
        let format = EXACT_FORMATS
            .into_iter()
            .find(|f| caps.formats.contains(f))
            .or_else(|| caps.formats.iter().copied().find(|f| !f.is_srgb()))
            .ok_or_else(|| {
                GpuError::Surface(format!(
                    "the surface offers no format that keeps pixels exact: {:?}",
                    caps.formats
                ))
            })?;
        let mut modes = LOW_LATENCY_MODES;
        if ctx.adapter().software {
            modes.reverse();
        }
        let present_mode = modes
            .into_iter()
            .find(|m| caps.present_modes.contains(m))
            .unwrap_or(wgpu::PresentMode::Fifo);
        let mut config = surface
            .get_default_config(&adapter, width.max(1), height.max(1))
            .ok_or_else(|| GpuError::Surface("the adapter cannot present here".into()))?;
        config.format = format;
        config.present_mode = present_mode;
        config.desired_maximum_frame_latency = 1;
        config.view_formats = vec![];
        // Frames at 1:1 can be copied in, no shader: far cheaper on a software adapter.
        if caps.usages.contains(wgpu::TextureUsages::COPY_DST) {
            config.usage |= wgpu::TextureUsages::COPY_DST;
        }
        surface.configure(&ctx.device, &config);
        Ok(Self {
            ctx,
            surface,
            config,
        })
    }

    pub fn config(&self) -> &wgpu::SurfaceConfiguration {
        &self.config
    }

    /// What the surface runs with, for logs.
    pub fn describe(&self) -> String {
        format!(
            "{} {}x{} {:?} {:?}",
            self.ctx.adapter(),
            self.config.width,
            self.config.height,
            self.config.format,
            self.config.present_mode
        )
    }

    /// Follows the window's new size in physical pixels (zero: minimised, nothing changes).
    pub fn resize(&mut self, width: u32, height: u32) {
        if width == 0 || height == 0 {
            return;
        }
        if (width, height) != (self.config.width, self.config.height) {
            self.config.width = width;
            self.config.height = height;
            self.reconfigure();
        }
    }

    /// Applies the configuration while no other thread submits (see
    /// [`GpuContext::submission_lock`]).
    fn reconfigure(&self) {
        let _quiet = self.ctx.submission_lock();
        self.surface.configure(&self.ctx.device, &self.config);
    }

    /// The next texture to draw into; `None` when there is none this time (occluded, timed
    /// out, or the surface was out of date and has been reconfigured): draw again later.
    pub fn acquire(&mut self) -> Result<Option<SurfaceFrame>, GpuError> {
        match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(texture) => Ok(Some(SurfaceFrame {
                texture,
                suboptimal: false,
            })),
            // Draw this one; reconfigure once it is presented.
            wgpu::CurrentSurfaceTexture::Suboptimal(texture) => Ok(Some(SurfaceFrame {
                texture,
                suboptimal: true,
            })),
            wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => {
                Ok(None)
            }
            wgpu::CurrentSurfaceTexture::Outdated => {
                self.reconfigure();
                Ok(None)
            }
            other => Err(GpuError::Surface(format!(
                "the window's surface is gone: {other:?}"
            ))),
        }
    }

    /// Presents a drawn frame (submit its commands first).
    pub fn present(&mut self, frame: SurfaceFrame) {
        self.ctx.queue.present(frame.texture);
        if frame.suboptimal {
            self.reconfigure();
        }
    }
}

/// A render pass into `view` that starts by clearing it to black.
pub fn black_pass<'e>(
    encoder: &'e mut wgpu::CommandEncoder,
    view: &'e wgpu::TextureView,
) -> wgpu::RenderPass<'e> {
    encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
        label: Some("black pass"),
        color_attachments: &[Some(wgpu::RenderPassColorAttachment {
            view,
            depth_slice: None,
            resolve_target: None,
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                store: wgpu::StoreOp::Store,
            },
        })],
        depth_stencil_attachment: None,
        timestamp_writes: None,
        occlusion_query_set: None,
        multiview_mask: None,
    })
}

/// A pipeline that draws one full-screen triangle (`vs_main` of `shaders/fullscreen.wgsl`) with
/// `module`'s `fs_main` into `format`, without blending. `layout: None` derives it from the
/// shader.
pub fn fullscreen_pipeline(
    device: &wgpu::Device,
    label: &str,
    module: &wgpu::ShaderModule,
    layout: Option<&wgpu::PipelineLayout>,
    format: wgpu::TextureFormat,
) -> wgpu::RenderPipeline {
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout,
        vertex: wgpu::VertexState {
            module,
            entry_point: Some("vs_main"),
            compilation_options: Default::default(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module,
            entry_point: Some("fs_main"),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format,
                blend: None,
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        multiview_mask: None,
        cache: None,
    })
}
