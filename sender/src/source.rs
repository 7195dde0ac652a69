//! Where the sender's frames come from. For now the synthetic desktop (`--source
//! synthetic[:SCENE]`); the OS capture backends plug in beside it.

use std::str::FromStr;
use tessera_engine::{CpuFrame, FrameError, PixelFormat, Rect, Scene, SyntheticSource};

/// What `--source` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    Synthetic(Scene),
}

impl FromStr for SourceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "synthetic" => Ok(Self::Synthetic(Scene::Typing)),
            Some(("synthetic", scene)) => scene.parse().map(Self::Synthetic),
            _ => Err(format!(
                "unknown source {s:?}: expected synthetic[:typing|scrolling|dragging|video|idle]"
            )),
        }
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Synthetic(scene) => write!(f, "synthetic:{}", scene.name()),
        }
    }
}

/// A running source, cropped to a region if one was asked for.
pub struct FrameSource {
    synthetic: SyntheticSource,
    region: Option<Rect>,
    hints: Vec<Rect>,
    started: bool,
}

impl FrameSource {
    /// Opens `spec` at `width` x `height`; `region` must lie inside that screen.
    pub fn open(
        spec: SourceSpec,
        width: u32,
        height: u32,
        region: Option<Rect>,
    ) -> Result<Self, FrameError> {
        let SourceSpec::Synthetic(scene) = spec;
        let synthetic = SyntheticSource::new(scene, width, height, PixelFormat::Bgra8)?;
        if let Some(r) = region {
            synthetic.frame().crop(&r)?;
        }
        Ok(Self {
            synthetic,
            region,
            hints: Vec::new(),
            started: false,
        })
    }

    /// Moves to the next frame (the first call keeps the first frame).
    pub fn advance(&mut self) {
        if self.started {
            self.synthetic.advance();
        }
        self.started = true;
        let region = self.region;
        self.hints.clear();
        for d in self.synthetic.damage() {
            match region {
                None => self.hints.push(*d),
                Some(r) => {
                    if let Some(i) = d.intersection(&r) {
                        self.hints
                            .push(Rect::new(i.x - r.x, i.y - r.y, i.width, i.height));
                    }
                }
            }
        }
    }

    /// The current frame (the region's pixels, not copied).
    pub fn frame(&self) -> CpuFrame<'_> {
        let full = self.synthetic.frame();
        match &self.region {
            None => full,
            Some(r) => full.crop(r).expect("region was checked at open"),
        }
    }

    /// What changed since the previous frame, in the frame's coordinates.
    pub fn damage(&self) -> &[Rect] {
        &self.hints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_regions_crop() {
        assert_eq!(
            "synthetic".parse(),
            Ok(SourceSpec::Synthetic(Scene::Typing))
        );
        assert_eq!(
            "synthetic:video".parse(),
            Ok(SourceSpec::Synthetic(Scene::Video))
        );
        assert!("synthetic:movie".parse::<SourceSpec>().is_err());
        assert!("x11".parse::<SourceSpec>().is_err());
        let mut s = FrameSource::open(
            SourceSpec::Synthetic(Scene::Video),
            640,
            480,
            Some(Rect::new(400, 40, 200, 100)),
        )
        .unwrap();
        s.advance();
        s.advance();
        assert_eq!((s.frame().width(), s.frame().height()), (200, 100));
        assert!(s
            .damage()
            .iter()
            .all(|d| d.right() <= 200 && d.bottom() <= 100));
        assert!(!s.damage().is_empty());
        assert!(FrameSource::open(
            SourceSpec::Synthetic(Scene::Idle),
            640,
            480,
            Some(Rect::new(600, 0, 100, 10))
        )
        .is_err());
    }
}
