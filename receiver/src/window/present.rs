//! [`Presenter`]: the window's wgpu surface, and one render pass that draws the composited
//! frame texture onto it (`shaders/present.wgsl`): exact texel loads at 1:1, bilinear when
//! scaled, black outside the picture.

use super::layout::{place, Placement, Scale};
use super::WindowError;
use std::sync::Arc;
use tessera_engine::GpuContext;
use winit::window::Window;

/// The placement uniform, laid out as `Placement` in the shader.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PlacementUniform {
    origin: [f32; 2],
    size: [f32; 2],
    exact: u32,
    _pad: [u32; 3],
}

impl From<Placement> for PlacementUniform {
    fn from(p: Placement) -> Self {
        Self {
            origin: [p.x as f32, p.y as f32],
            size: [p.width as f32, p.height as f32],
            exact: u32::from(p.exact),
            _pad: [0; 3],
        }
    }
}

/// Draws frames into one window.
pub struct Presenter {
    ctx: GpuContext,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    uniform: wgpu::Buffer,
    /// The bind group of the texture drawn last (remade when the compositor makes a new one).
    bound: Option<(wgpu::Texture, wgpu::BindGroup)>,
}

/// Surface formats that store the bytes the shader writes (no sRGB re-encoding), best first.
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

impl Presenter {
    /// Opens a surface on `window` and a device on an adapter that can present to it.
    pub fn new(window: Arc<Window>) -> Result<Self, WindowError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let size = window.inner_size();
        let surface = instance
            .create_surface(window)
            .map_err(|e| WindowError::Surface(e.to_string()))?;
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
            .map_err(|e| WindowError::Gpu(tessera_engine::GpuError::NoAdapter(e.to_string())))?;
        let ctx = pollster::block_on(GpuContext::from_adapter(&adapter))?;
        let caps = surface.get_capabilities(&adapter);
        let format = EXACT_FORMATS
            .into_iter()
            .find(|f| caps.formats.contains(f))
            .or_else(|| caps.formats.iter().copied().find(|f| !f.is_srgb()))
            .ok_or_else(|| {
                WindowError::Surface(format!(
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
            .get_default_config(&adapter, size.width.max(1), size.height.max(1))
            .ok_or_else(|| WindowError::Surface("the adapter cannot present here".into()))?;
        config.format = format;
        config.present_mode = present_mode;
        config.desired_maximum_frame_latency = 1;
        config.view_formats = vec![];
        // At 1:1 the frame is copied into the surface, no shader: far cheaper on a software
        // adapter.
        if caps.usages.contains(wgpu::TextureUsages::COPY_DST) {
            config.usage |= wgpu::TextureUsages::COPY_DST;
        }
        surface.configure(&ctx.device, &config);

        let device = &ctx.device;
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("present"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../../shaders/present.wgsl").into()),
        });
        let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty,
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("present"),
            entries: &[
                entry(
                    0,
                    wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                ),
                entry(
                    1,
                    wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                ),
                entry(
                    2,
                    wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                ),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("present"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("present"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &shader,
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
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("present"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("placement"),
            size: std::mem::size_of::<PlacementUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Self {
            ctx,
            surface,
            config,
            pipeline,
            layout,
            sampler,
            uniform,
            bound: None,
        })
    }

    /// The device the frame texture must live on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// What the surface runs with, for the log.
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

    /// Follows the window's new size in physical pixels.
    pub fn resize(&mut self, width: u32, height: u32) {
        if width == 0 || height == 0 {
            return; // minimised: nothing to draw into
        }
        if (width, height) != (self.config.width, self.config.height) {
            self.config.width = width;
            self.config.height = height;
            self.reconfigure();
        }
    }

    /// Applies `config` to the surface, while no other thread submits (see
    /// [`GpuContext::submission_lock`]).
    fn reconfigure(&self) {
        let _quiet = self.ctx.submission_lock();
        self.surface.configure(&self.ctx.device, &self.config);
    }

    /// Draws `frame` (or black before the first one) and presents it. Returns false when the
    /// surface had nothing to draw into this time (occluded, timed out); the caller draws again
    /// on the next frame or redraw.
    pub fn present(
        &mut self,
        frame: Option<&wgpu::Texture>,
        scale: Scale,
    ) -> Result<bool, WindowError> {
        let (texture, suboptimal) = match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t) => (t, false),
            // Draw this one; reconfigure for the next once it is presented.
            wgpu::CurrentSurfaceTexture::Suboptimal(t) => (t, true),
            wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => {
                return Ok(false);
            }
            wgpu::CurrentSurfaceTexture::Outdated => {
                self.reconfigure();
                return Ok(false);
            }
            other => {
                return Err(WindowError::Surface(format!(
                    "the window's surface is gone: {other:?}"
                )))
            }
        };
        let view = texture.texture.create_view(&Default::default());
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        let placement = frame.map(|f| {
            place(
                (f.width(), f.height()),
                (self.config.width, self.config.height),
                scale,
            )
        });
        let copy = match (frame, placement) {
            (Some(f), Some(p))
                if p.exact
                    && f.format() == self.config.format
                    && self.config.usage.contains(wgpu::TextureUsages::COPY_DST) =>
            {
                Some((f, p))
            }
            _ => None,
        };
        let (sw, sh) = (self.config.width, self.config.height);
        let covers = |p: Placement| p.x == 0 && p.y == 0 && p.width >= sw && p.height >= sh;
        let bind_group = match (frame, placement) {
            (Some(f), Some(p)) if copy.is_none() => Some(self.bind(f, p)),
            _ => None,
        };
        if copy.is_none_or(|(_, p)| !covers(p)) {
            // Black everywhere, then the picture drawn (or copied below) over it.
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("present"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &view,
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
            });
            if let Some(bind_group) = &bind_group {
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, bind_group, &[]);
                pass.draw(0..3, 0..1);
            }
        }
        if let Some((f, p)) = copy {
            // The part of the frame that lands on the surface.
            let width = p.width.min(self.config.width - p.x);
            let height = p.height.min(self.config.height - p.y);
            encoder.copy_texture_to_texture(
                f.as_image_copy(),
                wgpu::TexelCopyTextureInfo {
                    texture: &texture.texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: p.x,
                        y: p.y,
                        z: 0,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d {
                    width,
                    height,
                    depth_or_array_layers: 1,
                },
            );
        }
        self.ctx.queue.submit([encoder.finish()]);
        self.ctx.queue.present(texture);
        if suboptimal {
            self.reconfigure();
        }
        Ok(true)
    }

    /// Writes `placement` for the shader and returns `frame`'s bind group.
    fn bind(&mut self, frame: &wgpu::Texture, placement: Placement) -> wgpu::BindGroup {
        self.ctx.queue.write_buffer(
            &self.uniform,
            0,
            bytemuck::bytes_of(&PlacementUniform::from(placement)),
        );
        match &self.bound {
            Some((t, group)) if t == frame => group.clone(),
            _ => {
                let view = frame.create_view(&Default::default());
                let group = self
                    .ctx
                    .device
                    .create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("present"),
                        layout: &self.layout,
                        entries: &[
                            wgpu::BindGroupEntry {
                                binding: 0,
                                resource: wgpu::BindingResource::TextureView(&view),
                            },
                            wgpu::BindGroupEntry {
                                binding: 1,
                                resource: wgpu::BindingResource::Sampler(&self.sampler),
                            },
                            wgpu::BindGroupEntry {
                                binding: 2,
                                resource: self.uniform.as_entire_binding(),
                            },
                        ],
                    });
                self.bound = Some((frame.clone(), group.clone()));
                group
            }
        }
    }
}
