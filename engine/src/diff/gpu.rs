//! The GPU tile diff: a compute shader (`shaders/tile_diff.wgsl`) compares the new frame with the
//! previous one, which stays on the GPU, and only the dirty bitmask (a few hundred bytes) comes
//! back.
//!
//! Frames in CPU memory are uploaded into one of two textures that swap roles each frame (no
//! copy of the previous frame). Frames already on the GPU ([`GpuFrame`]) are read in place and
//! copied GPU-side into the previous-frame texture afterwards, so capture textures can be reused
//! by their owner as soon as the call returns.

use super::DiffError;
use crate::{DirtyMask, Frame, GpuContext, GpuFrame, Rect, TileGrid};

const SHADER: &str = include_str!("../../../shaders/tile_diff.wgsl");
/// The largest workgroup count of one dispatch dimension that every adapter supports.
const MAX_GROUPS_PER_DIM: u32 = 65_535;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    width: u32,
    height: u32,
    tile_size: u32,
    cols: u32,
    listed_count: u32,
    compare_alpha: u32,
    _pad: [u32; 2],
}

/// Textures holding the previous frame (and, for CPU frames, the next upload).
struct History {
    size: wgpu::Extent3d,
    format: wgpu::TextureFormat,
    textures: [wgpu::Texture; 2],
    /// Which of `textures` holds the previous frame.
    previous: usize,
    /// Whether `textures[previous]` holds a frame yet.
    primed: bool,
}

/// Compares frames tile by tile on the GPU, keeping the previous frame there.
pub struct GpuDiff {
    ctx: GpuContext,
    layout: wgpu::BindGroupLayout,
    diff_all: wgpu::ComputePipeline,
    diff_listed: wgpu::ComputePipeline,
    params: wgpu::Buffer,
    mask: wgpu::Buffer,
    readback: wgpu::Buffer,
    listed: wgpu::Buffer,
    history: Option<History>,
    words: Vec<u8>,
}

impl GpuDiff {
    pub fn new(ctx: &GpuContext) -> Self {
        let device = &ctx.device;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("tile_diff.wgsl"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let texture_entry = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: false },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
            count: None,
        };
        let buffer_entry = |binding, ty| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tile_diff"),
            entries: &[
                texture_entry(0),
                texture_entry(1),
                buffer_entry(2, wgpu::BufferBindingType::Uniform),
                buffer_entry(3, wgpu::BufferBindingType::Storage { read_only: false }),
                buffer_entry(4, wgpu::BufferBindingType::Storage { read_only: true }),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("tile_diff"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = |entry| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let diff_all = pipeline("diff_all");
        let diff_listed = pipeline("diff_listed");
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tile_diff params"),
            size: std::mem::size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let (mask, readback) = mask_buffers(device, 1);
        let listed = listed_buffer(device, 1);
        Self {
            ctx: ctx.clone(),
            layout,
            diff_all,
            diff_listed,
            params,
            mask,
            readback,
            listed,
            history: None,
            words: Vec::new(),
        }
    }

    /// Forgets the previous frame: the next diff reports every tile dirty.
    pub fn reset(&mut self) {
        if let Some(h) = &mut self.history {
            h.primed = false;
        }
    }

    /// The tiles of `grid` that differ between `frame` and the frame passed to the previous
    /// call, which then becomes `frame`. The first frame, and the first after a change of size
    /// or format, is all dirty.
    ///
    /// With `hints`, only tiles touching a hint are compared (and reported), and in each row of
    /// tiles only the pixels inside the bounding box of the hints there, as [`super::CpuDiff`]
    /// does.
    pub fn diff(
        &mut self,
        frame: Frame<'_>,
        grid: &TileGrid,
        hints: Option<&[Rect]>,
    ) -> Result<DirtyMask, DiffError> {
        grid.check_frame(frame.width(), frame.height())?;
        if let Frame::Gpu(f) = frame {
            check_texture(&f)?;
        }
        let size = wgpu::Extent3d {
            width: frame.width(),
            height: frame.height(),
            depth_or_array_layers: 1,
        };
        let format = match frame {
            Frame::Cpu(f) => f.format().texture_format(),
            Frame::Gpu(f) => f.texture.format(),
        };
        self.ensure_history(size, format);
        self.ensure_mask_capacity(grid.tile_count());
        let history = self.history.as_mut().expect("history was just made");
        let next = 1 - history.previous;

        if let Frame::Cpu(f) = frame {
            self.ctx.write_frame(&history.textures[next], &f);
        }
        let current_view = match frame {
            Frame::Cpu(_) => history.textures[next].create_view(&Default::default()),
            Frame::Gpu(f) => f.texture.create_view(&wgpu::TextureViewDescriptor {
                format: Some(format),
                ..Default::default()
            }),
        };

        // Three words a listed tile: its index, and the columns and rows of it that the hints'
        // window of its tile row covers (first | end << 16).
        let listed: Option<Vec<u32>> = hints.map(|rects| {
            let windows = super::hint_windows(grid, rects);
            let mut list = Vec::new();
            for i in grid.tiles_touching(rects).iter() {
                let tile = grid.tile_rect(i);
                let row = i / grid.cols() as usize;
                if let Some(w) = windows[row].and_then(|w| w.intersection(&tile)) {
                    list.extend([i as u32, w.x | w.right() << 16, w.y | w.bottom() << 16]);
                }
            }
            list
        });
        let primed = history.primed;
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        let mask_bytes = (grid.tile_count().div_ceil(32) * 4) as u64;
        let compare = primed && listed.as_ref().is_none_or(|l| !l.is_empty());
        if compare {
            if let Some(list) = &listed {
                if self.listed.size() < (list.len() * 4) as u64 {
                    self.listed = listed_buffer(&self.ctx.device, list.len() / LISTED_WORDS);
                }
                self.ctx
                    .queue
                    .write_buffer(&self.listed, 0, bytemuck::cast_slice(list));
            }
            let params = Params {
                width: size.width,
                height: size.height,
                tile_size: grid.tile_size(),
                cols: grid.cols(),
                listed_count: listed
                    .as_ref()
                    .map_or(0, |l| (l.len() / LISTED_WORDS) as u32),
                compare_alpha: u32::from(frame.format().has_alpha()),
                _pad: [0; 2],
            };
            self.ctx
                .queue
                .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
            let previous_view = history.textures[history.previous].create_view(&Default::default());
            let bind_group = self
                .ctx
                .device
                .create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("tile_diff"),
                    layout: &self.layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: wgpu::BindingResource::TextureView(&previous_view),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: wgpu::BindingResource::TextureView(&current_view),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: self.params.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 3,
                            resource: self.mask.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 4,
                            resource: self.listed.as_entire_binding(),
                        },
                    ],
                });
            encoder.clear_buffer(&self.mask, 0, Some(mask_bytes));
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_bind_group(0, &bind_group, &[]);
                match &listed {
                    None => {
                        pass.set_pipeline(&self.diff_all);
                        pass.dispatch_workgroups(grid.cols(), grid.rows(), 1);
                    }
                    Some(list) => {
                        let n = (list.len() / LISTED_WORDS) as u32;
                        pass.set_pipeline(&self.diff_listed);
                        pass.dispatch_workgroups(
                            n.min(MAX_GROUPS_PER_DIM),
                            n.div_ceil(MAX_GROUPS_PER_DIM),
                            1,
                        );
                    }
                }
            }
            encoder.copy_buffer_to_buffer(&self.mask, 0, &self.readback, 0, mask_bytes);
        }
        match frame {
            // The uploaded texture becomes the previous frame.
            Frame::Cpu(_) => history.previous = next,
            // Keep a GPU-side copy: the caller may reuse its texture.
            Frame::Gpu(f) => encoder.copy_texture_to_texture(
                f.texture.as_image_copy(),
                history.textures[history.previous].as_image_copy(),
                size,
            ),
        }
        history.primed = true;
        self.ctx.queue.submit([encoder.finish()]);

        if !primed {
            return Ok(DirtyMask::full(grid.tile_count()));
        }
        if !compare {
            // Hints touched no tile: nothing was compared, and the frame is stored.
            return Ok(DirtyMask::new(grid.tile_count()));
        }
        self.ctx
            .read_buffer(&self.readback, mask_bytes, &mut self.words)?;
        let words: Vec<u32> = self
            .words
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        Ok(DirtyMask::from_u32_words(grid.tile_count(), &words))
    }

    fn ensure_history(&mut self, size: wgpu::Extent3d, format: wgpu::TextureFormat) {
        if self
            .history
            .as_ref()
            .is_some_and(|h| h.size == size && h.format == format)
        {
            return;
        }
        let texture = |label| {
            self.ctx.device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size,
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        };
        self.history = Some(History {
            size,
            format,
            textures: [texture("tile_diff frame A"), texture("tile_diff frame B")],
            previous: 0,
            primed: false,
        });
    }

    fn ensure_mask_capacity(&mut self, tiles: usize) {
        if self.mask.size() < (tiles.div_ceil(32) * 4) as u64 {
            (self.mask, self.readback) = mask_buffers(&self.ctx.device, tiles);
        }
    }
}

fn check_texture(frame: &GpuFrame<'_>) -> Result<(), DiffError> {
    let t = frame.texture;
    let need = wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_SRC;
    let problem = if !t.usage().contains(need) {
        Some(format!(
            "usage {:?} lacks TEXTURE_BINDING | COPY_SRC",
            t.usage()
        ))
    } else if t.dimension() != wgpu::TextureDimension::D2 || t.depth_or_array_layers() != 1 {
        Some("not a single 2D layer".to_string())
    } else if t.sample_count() != 1 {
        Some("multisampled".to_string())
    } else if t.format().remove_srgb_suffix() != frame.format.texture_format() {
        Some(format!(
            "format {:?} does not hold {:?} pixels",
            t.format(),
            frame.format
        ))
    } else {
        None
    };
    problem.map_or(Ok(()), |p| Err(DiffError::UnusableTexture(p)))
}

fn mask_buffers(device: &wgpu::Device, tiles: usize) -> (wgpu::Buffer, wgpu::Buffer) {
    let size = (tiles.div_ceil(32).max(1) * 4) as u64;
    let mask = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("tile_diff mask"),
        size,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("tile_diff mask readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    (mask, readback)
}

/// Words of the shader's `listed` array a tile takes: index, columns, rows.
const LISTED_WORDS: usize = 3;

fn listed_buffer(device: &wgpu::Device, tiles: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("tile_diff listed tiles"),
        size: (tiles.max(1) * LISTED_WORDS * 4).next_power_of_two() as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}
