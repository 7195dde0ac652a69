//! [`GpuCompositor`]: the frame lives in one persistent wgpu texture; each update uploads only
//! its dirty tiles, all of them through one staging buffer and one submission. A copy of the
//! frame in CPU memory is what patches apply to.

use super::{decode_for, write_tiles, ApplyError, FrameShape};
use crate::{
    DecodeLimits, DecodedTiles, FrameBuffer, GpuContext, Rect, TileCache, UpdateHeader,
    BYTES_PER_PIXEL,
};

/// Applies updates onto a texture on the GPU.
pub struct GpuCompositor {
    ctx: GpuContext,
    limits: DecodeLimits,
    target: Option<(wgpu::Texture, FrameShape)>,
    /// The frame as the texture holds it, in CPU memory: the base of patches.
    held: Option<FrameBuffer>,
    decoded: DecodedTiles,
    copied: Vec<Rect>,
    /// Where an update's tiles are staged, rows padded for buffer-to-texture copies; grown on
    /// demand, never past one frame's padded size.
    upload: Option<wgpu::Buffer>,
    readback: Vec<u8>,
    cache: TileCache,
}

impl GpuCompositor {
    pub fn new(ctx: &GpuContext, limits: DecodeLimits) -> Self {
        Self {
            ctx: ctx.clone(),
            limits,
            target: None,
            held: None,
            decoded: DecodedTiles::new(),
            copied: Vec::new(),
            upload: None,
            readback: Vec::new(),
            cache: TileCache::new(0),
        }
    }

    /// The same compositor with a tile cache of `budget` bytes (what the receiver announces).
    pub fn with_tile_cache(mut self, budget: u32) -> Self {
        self.cache = TileCache::new(budget);
        self
    }

    /// The tile cache (empty without one).
    pub fn tile_cache(&self) -> &TileCache {
        &self.cache
    }

    /// The texture holding the frame (none before the first keyframe). Its format is the
    /// update's [`crate::PixelFormat::texture_format`]; usage includes `TEXTURE_BINDING`.
    pub fn texture(&self) -> Option<&wgpu::Texture> {
        self.target.as_ref().map(|(t, _)| t)
    }

    /// The tiles of the last applied update, decoded (for the frame checksum).
    pub fn decoded(&self) -> &DecodedTiles {
        &self.decoded
    }

    /// Where the last applied update's copies wrote (for the frame checksum).
    pub fn copied(&self) -> &[Rect] {
        &self.copied
    }

    /// The frame as composited, in CPU memory (kept beside the texture).
    pub fn held(&self) -> Option<&FrameBuffer> {
        self.held.as_ref()
    }

    /// Applies one update message: decodes on the CPU, then writes each dirty tile into the
    /// texture. On error the texture is unchanged.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<UpdateHeader, ApplyError> {
        let (header, reshape, copied) = decode_for(
            bytes,
            &self.limits,
            self.held.as_mut(),
            &mut self.decoded,
            &self.cache,
        )?;
        self.copied = copied;
        if reshape {
            self.held = Some(
                FrameBuffer::new(header.width, header.height, header.format)
                    .expect("size was checked against the decode limits"),
            );
            let shape = FrameShape {
                width: header.width,
                height: header.height,
                format: header.format,
            };
            let texture = self.ctx.device.create_texture(&wgpu::TextureDescriptor {
                label: Some("composited frame"),
                size: wgpu::Extent3d {
                    width: header.width,
                    height: header.height,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: header.format.texture_format(),
                usage: wgpu::TextureUsages::TEXTURE_BINDING
                    | wgpu::TextureUsages::COPY_DST
                    | wgpu::TextureUsages::COPY_SRC,
                view_formats: &[],
            });
            self.target = Some((texture, shape));
        }
        self.upload_tiles();
        let held = self.held.as_mut().expect("made with the first keyframe");
        write_tiles(held, &self.decoded, header.tile_size);
        self.upload_copied();
        self.cache.record(header.keyframe, &self.decoded);
        Ok(header)
    }

    /// Writes every decoded tile into the texture: the tiles' rows are packed (each padded to
    /// the copy alignment) into one staging buffer, then one command buffer copies each tile
    /// from it, and one submission carries it all.
    fn upload_tiles(&mut self) {
        let tiles = self.decoded.tiles();
        let Some((texture, _)) = &self.target else {
            return;
        };
        if tiles.is_empty() {
            return;
        }
        let padded_row = |r: &crate::Rect| {
            (r.width * BYTES_PER_PIXEL as u32).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
        };
        let total: u64 = tiles
            .iter()
            .map(|t| u64::from(padded_row(&t.rect)) * u64::from(t.rect.height))
            .sum();
        if self.upload.as_ref().is_none_or(|b| b.size() < total) {
            self.upload = Some(self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tile upload"),
                size: total.next_power_of_two(),
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let upload = self.upload.as_ref().expect("made above");
        let size = wgpu::BufferSize::new(total).expect("at least one non-empty tile");
        {
            let mut staging = self
                .ctx
                .queue
                .write_buffer_with(upload, 0, size)
                .expect("the upload buffer holds `total` bytes");
            let mut at = 0usize;
            for tile in tiles {
                let row = tile.rect.width as usize * BYTES_PER_PIXEL;
                let stride = padded_row(&tile.rect) as usize;
                for src in self.decoded.pixels(tile).chunks_exact(row) {
                    staging.slice(at..at + row).copy_from_slice(src);
                    at += stride;
                }
            }
        }
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        let mut offset = 0u64;
        for tile in tiles {
            let r = tile.rect;
            let stride = padded_row(&r);
            encoder.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: upload,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset,
                        bytes_per_row: Some(stride),
                        rows_per_image: Some(r.height),
                    },
                },
                texture_at(texture, &r),
                extent(&r),
            );
            offset += u64::from(stride) * u64::from(r.height);
        }
        let _submitting = self.ctx.submission_lock();
        self.ctx.queue.submit([encoder.finish()]);
    }

    /// Writes what the copies changed into the texture, from the frame held in CPU memory
    /// (copies within one texture cannot overlap on the GPU; the held frame is final here).
    fn upload_copied(&self) {
        let (Some((texture, _)), Some(held)) = (&self.target, &self.held) else {
            return;
        };
        for r in &self.copied {
            self.ctx.queue.write_texture(
                texture_at(texture, r),
                held.pixels(),
                wgpu::TexelCopyBufferLayout {
                    offset: (r.y as usize * held.stride() + r.x as usize * BYTES_PER_PIXEL) as u64,
                    bytes_per_row: Some(held.stride() as u32),
                    rows_per_image: Some(r.height),
                },
                extent(r),
            );
        }
    }

    /// Copies the texture back to CPU memory (for tests, screenshots and `--dump`).
    pub fn read_back(&mut self) -> Result<Option<FrameBuffer>, ApplyError> {
        let Some((texture, shape)) = &self.target else {
            return Ok(None);
        };
        let row_bytes = shape.width * BYTES_PER_PIXEL as u32;
        let padded = row_bytes.next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
        let size = u64::from(padded) * u64::from(shape.height);
        let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("composited frame readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded),
                    rows_per_image: Some(shape.height),
                },
            },
            texture.size(),
        );
        {
            let _submitting = self.ctx.submission_lock();
            self.ctx.queue.submit([encoder.finish()]);
        }
        self.ctx.read_buffer(&buffer, size, &mut self.readback)?;
        let mut pixels = Vec::with_capacity(row_bytes as usize * shape.height as usize);
        for row in self.readback.chunks_exact(padded as usize) {
            pixels.extend_from_slice(&row[..row_bytes as usize]);
        }
        let frame = FrameBuffer::from_pixels(shape.width, shape.height, shape.format, pixels)
            .expect("read back exactly the texture's pixels");
        Ok(Some(frame))
    }
}

/// Where rectangle `r` of `texture` starts, for copies into it.
fn texture_at<'a>(texture: &'a wgpu::Texture, r: &Rect) -> wgpu::TexelCopyTextureInfo<'a> {
    wgpu::TexelCopyTextureInfo {
        texture,
        mip_level: 0,
        origin: wgpu::Origin3d {
            x: r.x,
            y: r.y,
            z: 0,
        },
        aspect: wgpu::TextureAspect::All,
    }
}

/// The size of rectangle `r`, for copies.
fn extent(r: &Rect) -> wgpu::Extent3d {
    wgpu::Extent3d {
        width: r.width,
        height: r.height,
        depth_or_array_layers: 1,
    }
}
