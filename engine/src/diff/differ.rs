//! [`FrameDiffer`]: the diff as a stream sees it — hand it each new frame, get the tiles that
//! changed since the last one.

use super::{
    choose_backend, cpu::check_same_shape, needs_gpu, BackendChoice, BackendRequest, CpuDiff,
    DiffBackend, DiffError, FramesIn, GpuDiff, SolidTiles,
};
use crate::{CpuFrame, DirtyMask, Frame, FrameBuffer, GpuContext, Rect, TileGrid};

/// Keeps the previous frame (a CPU copy with its one-colour tiles, or textures on the GPU) and
/// diffs each new frame against it, or, on the CPU, against the previous frame its caller keeps
/// ([`FrameDiffer::diff_from`]). The first frame, and the first after a change of size or
/// format, is all dirty.
pub enum FrameDiffer {
    Cpu {
        diff: CpuDiff,
        previous: Option<(FrameBuffer, SolidTiles)>,
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
    /// The CPU path refreshes its copy of the previous frame (and which of its tiles are one
    /// colour) only where tiles were dirty, so a quiet screen costs one read of the frame and no
    /// copy.
    pub fn diff(
        &mut self,
        frame: Frame<'_>,
        grid: &TileGrid,
        hints: Option<&[Rect]>,
    ) -> Result<DirtyMask, DiffError> {
        match self {
            Self::Gpu(gpu) => gpu.diff(frame, grid, hints),
            Self::Cpu { diff, previous } => {
                let current = in_cpu_memory(frame)?;
                let held = previous.as_ref().map(|(f, _)| f.as_frame());
                let solids = previous.as_ref().map(|(_, s)| s);
                match (
                    compare_on_cpu(diff, held.as_ref(), solids, &current, grid, hints)?,
                    previous,
                ) {
                    (Some(mask), Some((p, solids))) => {
                        p.copy_tiles_from(&current, grid, &mask);
                        solids.update(&current, grid, &mask)?;
                        Ok(mask)
                    }
                    (_, previous) => {
                        let solids = SolidTiles::of(&current, grid)?;
                        *previous = Some((FrameBuffer::from_frame(&current), solids));
                        Ok(DirtyMask::full(grid.tile_count()))
                    }
                }
            }
        }
    }

    /// The tiles that changed from `previous`, the last frame as the caller keeps it, to
    /// `frame`: for a caller that keeps the previous frame anyway (the sender, to patch
    /// against), so that the CPU path keeps no second copy. `solids`, when the caller keeps
    /// them up with `previous`, are its one-colour tiles ([`CpuDiff::diff_with_solids`]). The
    /// CPU path forgets any copy of its own ([`Self::diff`] then reports every tile once); no
    /// `previous`, or one of another size or format, reports every tile. The GPU path compares
    /// with the frame it holds, as [`Self::diff`] does.
    pub fn diff_from(
        &mut self,
        previous: Option<&CpuFrame<'_>>,
        solids: Option<&SolidTiles>,
        frame: Frame<'_>,
        grid: &TileGrid,
        hints: Option<&[Rect]>,
    ) -> Result<DirtyMask, DiffError> {
        match self {
            Self::Gpu(gpu) => gpu.diff(frame, grid, hints),
            Self::Cpu {
                diff,
                previous: own,
            } => {
                let current = in_cpu_memory(frame)?;
                *own = None;
                Ok(
                    compare_on_cpu(diff, previous, solids, &current, grid, hints)?
                        .unwrap_or_else(|| DirtyMask::full(grid.tile_count())),
                )
            }
        }
    }
}

/// The tiles that changed from `previous` to `current` on the CPU; `None` when there is no
/// previous frame of `current`'s size and format to compare with (every tile changed then).
fn compare_on_cpu(
    diff: &CpuDiff,
    previous: Option<&CpuFrame<'_>>,
    solids: Option<&SolidTiles>,
    current: &CpuFrame<'_>,
    grid: &TileGrid,
    hints: Option<&[Rect]>,
) -> Result<Option<DirtyMask>, DiffError> {
    match previous {
        Some(p) if check_same_shape(p, current).is_ok() => diff
            .diff_with_solids(grid, p, solids, current, hints)
            .map(Some),
        _ => {
            grid.check_frame(current.width(), current.height())?;
            Ok(None)
        }
    }
}

/// The frame, for the CPU path: it must be in CPU memory.
fn in_cpu_memory(frame: Frame<'_>) -> Result<CpuFrame<'_>, DiffError> {
    match frame {
        Frame::Cpu(f) => Ok(f),
        _ => Err(DiffError::NotInCpuMemory),
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

    #[test]
    fn cpu_differ_compares_with_the_callers_previous_frame() {
        let grid = TileGrid::new(100, 70, 16).unwrap();
        let mut d = FrameDiffer::new(DiffBackend::Cpu, None).unwrap();
        let before = FrameBuffer::new(100, 70, PixelFormat::Rgba8).unwrap();
        let mut after = before.clone();
        // Its own copy, which diff_from forgets.
        assert!(d
            .diff(Frame::Cpu(before.as_frame()), &grid, None)
            .unwrap()
            .all());
        let from = |d: &mut FrameDiffer, p: Option<&FrameBuffer>, f: &FrameBuffer, g: &TileGrid| {
            d.diff_from(
                p.map(|p| p.as_frame()).as_ref(),
                None,
                Frame::Cpu(f.as_frame()),
                g,
                None,
            )
            .unwrap()
        };
        assert!(from(&mut d, None, &after, &grid).all());
        assert!(from(&mut d, Some(&before), &after, &grid).none());
        after.pixels_mut()[(20 * 100 + 40) * 4 + 2] = 7;
        let m = from(&mut d, Some(&before), &after, &grid);
        assert_eq!(m, grid.tiles_touching(&[Rect::new(40, 20, 1, 1)]));
        // Nothing of `after` was kept: compared with `before` again, the tile is still dirty.
        assert_eq!(from(&mut d, Some(&before), &after, &grid), m);
        // Hints narrow the compare as in diff.
        let hinted = d
            .diff_from(
                Some(&before.as_frame()),
                None,
                Frame::Cpu(after.as_frame()),
                &grid,
                Some(&[Rect::new(0, 0, 16, 16)]),
            )
            .unwrap();
        assert!(hinted.none());
        // A previous frame of another size reports every tile.
        let small = FrameBuffer::new(50, 50, PixelFormat::Rgba8).unwrap();
        assert!(from(&mut d, Some(&small), &after, &grid).all());
        // A grid that does not fit the frame is an error, not a mask.
        let wrong = TileGrid::new(50, 50, 16).unwrap();
        assert!(d
            .diff_from(None, None, Frame::Cpu(after.as_frame()), &wrong, None)
            .is_err());
        // The copy diff had kept is gone: diff starts over.
        assert!(d
            .diff(Frame::Cpu(after.as_frame()), &grid, None)
            .unwrap()
            .all());
    }
}
