//! Where the frame goes in the window: scaled to fit with its aspect ratio kept, or at one
//! frame pixel per physical pixel. Whole pixels only, so a 1:1 picture is exact.

use std::str::FromStr;

/// How the frame is sized in the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// As large as the window allows, aspect ratio kept, centred, black bars elsewhere.
    Fit,
    /// One frame pixel per physical pixel: centred when smaller than the window, its
    /// top-left part shown when larger.
    Actual,
}

impl Scale {
    pub fn toggled(self) -> Self {
        match self {
            Self::Fit => Self::Actual,
            Self::Actual => Self::Fit,
        }
    }
}

impl FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fit" => Ok(Self::Fit),
            "1:1" | "actual" => Ok(Self::Actual),
            _ => Err(format!("unknown scale {s:?}: use fit or 1:1")),
        }
    }
}

/// The frame's rectangle on the surface, in physical pixels (it may reach past the surface).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// One frame pixel per surface pixel: the picture is the frame's pixels exactly.
    pub exact: bool,
}

/// Places a `frame`-sized picture on a `surface`-sized window (both width, height; non-zero).
pub fn place(frame: (u32, u32), surface: (u32, u32), scale: Scale) -> Placement {
    let (fw, fh) = (frame.0.max(1), frame.1.max(1));
    let (sw, sh) = (surface.0.max(1), surface.1.max(1));
    let (width, height) = match scale {
        Scale::Actual => (fw, fh),
        Scale::Fit => {
            // Compare sw/fw with sh/fh in integers: the limiting side gets the whole surface.
            if u64::from(sw) * u64::from(fh) <= u64::from(sh) * u64::from(fw) {
                let h = (u64::from(fh) * u64::from(sw) + u64::from(fw) / 2) / u64::from(fw);
                (sw, (h as u32).clamp(1, sh))
            } else {
                let w = (u64::from(fw) * u64::from(sh) + u64::from(fh) / 2) / u64::from(fh);
                ((w as u32).clamp(1, sw), sh)
            }
        }
    };
    Placement {
        x: sw.saturating_sub(width) / 2,
        y: sh.saturating_sub(height) / 2,
        width,
        height,
        exact: (width, height) == (fw, fh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_the_aspect_ratio_and_centres() {
        // 16:9 into 4:3: full width, bars above and below.
        let p = place((1920, 1080), (800, 600), Scale::Fit);
        assert_eq!((p.x, p.y, p.width, p.height), (0, 75, 800, 450));
        assert!(!p.exact);
        // 4:3 into 16:9: full height, bars left and right.
        let p = place((640, 480), (1920, 1080), Scale::Fit);
        assert_eq!((p.x, p.y, p.width, p.height), (240, 0, 1440, 1080));
    }

    #[test]
    fn fit_at_the_frame_size_is_exact() {
        let p = place((1280, 720), (1280, 720), Scale::Fit);
        assert_eq!(
            p,
            Placement {
                x: 0,
                y: 0,
                width: 1280,
                height: 720,
                exact: true
            }
        );
    }

    #[test]
    fn actual_centres_a_small_frame_and_shows_the_corner_of_a_large_one() {
        let p = place((640, 480), (801, 601), Scale::Actual);
        assert_eq!(
            (p.x, p.y, p.width, p.height, p.exact),
            (80, 60, 640, 480, true)
        );
        let p = place((3840, 2160), (800, 600), Scale::Actual);
        assert_eq!(
            (p.x, p.y, p.width, p.height, p.exact),
            (0, 0, 3840, 2160, true)
        );
    }

    #[test]
    fn extreme_shapes_never_collapse_to_nothing() {
        let p = place((100_000, 1), (800, 600), Scale::Fit);
        assert_eq!((p.width, p.height), (800, 1));
        let p = place((1, 100_000), (800, 600), Scale::Fit);
        assert_eq!((p.width, p.height), (1, 600));
        let p = place((0, 0), (0, 0), Scale::Fit);
        assert_eq!((p.width, p.height), (1, 1));
    }

    #[test]
    fn scale_parses_and_toggles() {
        assert_eq!("fit".parse::<Scale>(), Ok(Scale::Fit));
        assert_eq!("1:1".parse::<Scale>(), Ok(Scale::Actual));
        assert!("2x".parse::<Scale>().is_err());
        assert_eq!(Scale::Fit.toggled(), Scale::Actual);
    }
}
