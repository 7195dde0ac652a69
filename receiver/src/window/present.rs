//! [`Presenter`]: the window's wgpu surface, and one render pass that draws the composited
//! frame texture onto it (`shaders/present.wgsl`): exact texel loads at 1:1, bilinear when
//! scaled, black outside the picture.

use super::layout::{place, Placement, Scale};
use super::WindowError;
use std::sync::Arc;
use tessera_engine::{black_pass, fullscreen_pipeline, GpuContext, WindowSurface};
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
    surface: WindowSurface,
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    uniform: wgpu::Buffer,
    /// The bind group of the texture drawn last (remade when the compositor makes a new one).
    bound: Option<(wgpu::Texture, wgpu::BindGroup)>,
}

impl Presenter {
    /// Opens a surface on `window` and a device on an adapter that can present to it.
    pub fn new(window: Arc<Window>) -> Result<Self, WindowError> {
        let size = window.inner_size();
        let surface = WindowSurface::new(window, (size.width, size.height))?;
        let format = surface.config().format;
        let device = &surface.ctx.device;
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("present"),
            source: wgpu::ShaderSource::Wgsl(
                concat!(
                    include_str!("../../../shaders/fullscreen.wgsl"),
                    include_str!("../../../shaders/present.wgsl")
                )
                .into(),
            ),
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
        let pipeline =
            fullscreen_pipeline(device, "present", &shader, Some(&pipeline_layout), format);
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
            surface,
            pipeline,
            layout,
            sampler,
            uniform,
            bound: None,
        })
    }

    /// The device the frame texture must live on.
    pub fn context(&self) -> &GpuContext {
        &self.surface.ctx
    }

    /// What the surface runs with, for the log.
    pub fn describe(&self) -> String {
        self.surface.describe()
    }

    /// Follows the window's new size in physical pixels.
    pub fn resize(&mut self, width: u32, height: u32) {
        self.surface.resize(width, height);
    }

    /// Draws `frame` (or black before the first one) and presents it. Returns false when the
    /// surface had nothing to draw into this time (occluded, timed out); the caller draws again
    /// on the next frame or redraw.
    pub fn present(
        &mut self,
        frame: Option<&wgpu::Texture>,
        scale: Scale,
    ) -> Result<bool, WindowError> {
        let Some(target) = self.surface.acquire()? else {
            return Ok(false);
        };
        let (sw, sh) = (self.surface.config().width, self.surface.config().height);
        let view = target.texture.texture.create_view(&Default::default());
        let mut encoder = self
            .surface
            .ctx
            .device
            .create_command_encoder(&Default::default());
        let placement = frame.map(|f| place((f.width(), f.height()), (sw, sh), scale));
        let copy = match (frame, placement) {
            (Some(f), Some(p))
                if p.exact
                    && f.format() == self.surface.config().format
                    && self
                        .surface
                        .config()
                        .usage
                        .contains(wgpu::TextureUsages::COPY_DST) =>
            {
                Some((f, p))
            }
            _ => None,
        };
        let covers = |p: Placement| p.x == 0 && p.y == 0 && p.width >= sw && p.height >= sh;
        let bind_group = match (frame, placement) {
            (Some(f), Some(p)) if copy.is_none() => Some(self.bind(f, p)),
            _ => None,
        };
        if copy.is_none_or(|(_, p)| !covers(p)) {
            // Black everywhere, then the picture drawn (or copied below) over it.
            let mut pass = black_pass(&mut encoder, &view);
            if let Some(bind_group) = &bind_group {
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, bind_group, &[]);
                pass.draw(0..3, 0..1);
            }
        }
        if let Some((f, p)) = copy {
            // The part of the frame that lands on the surface.
            let width = p.width.min(sw - p.x);
            let height = p.height.min(sh - p.y);
            encoder.copy_texture_to_texture(
                f.as_image_copy(),
                wgpu::TexelCopyTextureInfo {
                    texture: &target.texture.texture,
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
        self.surface.ctx.queue.submit([encoder.finish()]);
        self.surface.present(target);
        Ok(true)
    }

    /// Writes `placement` for the shader and returns `frame`'s bind group.
    fn bind(&mut self, frame: &wgpu::Texture, placement: Placement) -> wgpu::BindGroup {
        self.surface.ctx.queue.write_buffer(
            &self.uniform,
            0,
            bytemuck::bytes_of(&PlacementUniform::from(placement)),
        );
        match &self.bound {
            Some((t, group)) if t == frame => group.clone(),
            _ => {
                let view = frame.create_view(&Default::default());
                let group = self
                    .surface
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
