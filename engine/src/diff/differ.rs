//! [`FrameDiffer`]: the diff as a stream sees it — hand it each new frame, get the tiles that
//! changed since the last one.

use super::{
    choose_backend, cpu::check_same_shape, needs_gpu, BackendChoice, BackendRequest, CpuDiff,
    DiffBackend, DiffError, FramesIn, GpuDiff,
};
use crate::{DirtyMask, Frame, FrameBuffer, GpuContext, Rect, TileGrid};

/// Keeps the previous frame (a CPU copy, or textures on the GPU) and diffs each new frame
/// against it. The first frame, and the first after a change of size or format, is all dirty.
pub enum FrameDiffer {
    Cpu {
        diff: CpuDiff,
        previous: Option<FrameBuffer>,
    },
    Gpu(Box<GpuDiff>),
}

impl FrameDiffer {
    /// A differ on `backend`; the GPU needs a context.
    pub fn new(backend: DiffBackend, gpu: Option<&GpuContext>) -> Result<Self, DiffError> {
        Ok(match (backend, gpu) {
            (DiffBackend::Cpu, _) => Self::Cpu {
                diff: CpuDiff::multi_threaded(),
                previous: None,
            },
            (DiffBackend::Gpu, Some(ctx)) => Self::Gpu(Box::new(GpuDiff::new(ctx))),
            (DiffBackend::Gpu, None) => {
                return Err(crate::GpuError::NoAdapter("no GPU context given".into()).into())
            }
        })
    }

    /// Opens the differ the user asked for, for frames that arrive in `frames`: a GPU is opened
    /// where [`needs_gpu`] says so, and [`choose_backend`] decides. Returns the choice (with the
    /// adapter, when one was opened) to report, and the GPU context when the diff runs there,
    /// to share with the rest of the pipeline.
    pub fn open(
        request: BackendRequest,
        frames: FramesIn,
    ) -> Result<(Self, BackendChoice, Option<GpuContext>), DiffError> {
        let gpu = if needs_gpu(request, frames) {
            GpuContext::new()
        } else {
            Err(crate::GpuError::NoAdapter("not opened".into()))
        };
        let choice = choose_backend(request, frames, gpu.as_ref().map(|g| g.adapter()))?;
        let gpu = gpu.ok().filter(|_| choice.backend == DiffBackend::Gpu);
        let differ = Self::new(choice.backend, gpu.as_ref())?;
        Ok((differ, choice, gpu))
    }

    pub fn backend(&self) -> DiffBackend {
        match self {
            Self::Cpu { .. } => DiffBackend::Cpu,
            Self::Gpu(_) => DiffBackend::Gpu,
        }
    }

    /// Forgets the previous frame: the next diff reports every tile dirty.
    pub fn reset(&mut self) {
        match self {
            Self::Cpu { previous, .. } => *previous = None,
            Self::Gpu(gpu) => gpu.reset(),
        }
    }

    /// The tiles that changed since the previous call.
    ///
    /// The CPU path refreshes its copy of the previous frame only where tiles were dirty, so
    /// a quiet screen costs one read of the frame and no copy.
    pub fn diff(
        &mut self,
        frame: Frame<'_>,
        grid: &TileGrid,
        hints: Option<&[Rect]>,
    ) -> Result<DirtyMask, DiffError> {
        match self {
            Self::Gpu(gpu) => gpu.diff(frame, grid, hints),
            Self::Cpu { diff, previous } => {
                let Frame::Cpu(current) = frame else {
                    return Err(DiffError::NotInCpuMemory);
                };
                let prev = match previous {
                    Some(p) if check_same_shape(&p.as_frame(), &current).is_ok() => p,
                    _ => {
                        grid.check_frame(current.width(), current.height())?;
                        *previous = Some(FrameBuffer::from_frame(&current));
                        return Ok(DirtyMask::full(grid.tile_count()));
                    }
                };
                let mask = diff.diff(grid, &prev.as_frame(), &current, hints)?;
                prev.copy_tiles_from(&current, grid, &mask);
                Ok(mask)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PixelFormat;

    #[test]
    fn cpu_differ_tracks_what_it_reported() {
        let grid = TileGrid::new(100, 70, 16).unwrap();
        let mut d = FrameDiffer::new(DiffBackend::Cpu, None).unwrap();
        let mut f = FrameBuffer::new(100, 70, PixelFormat::Rgba8).unwrap();
        assert!(d.diff(Frame::Cpu(f.as_frame()), &grid, None).unwrap().all());
        assert!(d
            .diff(Frame::Cpu(f.as_frame()), &grid, None)
            .unwrap()
            .none());
        f.pixels_mut()[(69 * 100 + 99) * 4] = 9;
        let m = d.diff(Frame::Cpu(f.as_frame()), &grid, None).unwrap();
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![grid.tile_count() - 1]);
        // The change is now in the differ's copy: the same frame again is clean.
        assert!(d
            .diff(Frame::Cpu(f.as_frame()), &grid, None)
            .unwrap()
            .none());
        // A new size starts over.
        let g = FrameBuffer::new(50, 50, PixelFormat::Rgba8).unwrap();
        let grid2 = TileGrid::new(50, 50, 16).unwrap();
        assert!(d
            .diff(Frame::Cpu(g.as_frame()), &grid2, None)
            .unwrap()
            .all());
        d.reset();
        assert!(d
            .diff(Frame::Cpu(g.as_frame()), &grid2, None)
            .unwrap()
            .all());
    }
}
