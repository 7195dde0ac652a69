//! Command-line parsing helpers shared by both binaries.

use crate::chat::{default_audit_log, load_presets, ChatSetup};
use std::path::PathBuf;
use std::sync::Arc;
use tessera_engine::chat::Presets;
use tessera_engine::Rect;

/// The chat and command channel's options, the same in both binaries.
#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    /// Presets file (TOML): phrases that become requests, what this side lets the other side
    /// run here, and its consent rules. Without one: pause/resume/refresh phrases, nothing
    /// allowed here, everything asked.
    #[arg(long, value_name = "PATH", value_parser = parse_presets)]
    pub presets: Option<Presets>,
    /// Where every request and its outcome is recorded
    /// [default: $XDG_STATE_HOME/tessera/audit.log or ~/.local/state/tessera/audit.log].
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
}

impl ChatArgs {
    pub fn setup(&self) -> ChatSetup {
        ChatSetup {
            presets: Arc::new(self.presets.clone().unwrap_or_default()),
            audit_log: self.audit_log.clone().or_else(default_audit_log),
        }
    }
}

/// Reads and checks a presets file.
pub fn parse_presets(path: &str) -> Result<Presets, String> {
    load_presets(Some(std::path::Path::new(path)))
}

/// Parses `x,y,w,h`.
pub fn parse_region(s: &str) -> Result<Rect, String> {
    let parts: Vec<&str> = s.split(',').collect();
    let nums: Result<Vec<u32>, _> = parts.iter().map(|p| p.trim().parse::<u32>()).collect();
    match nums {
        Ok(n) if n.len() == 4 && n[2] > 0 && n[3] > 0 => Ok(Rect::new(n[0], n[1], n[2], n[3])),
        _ => Err(format!(
            "region {s:?}: expected x,y,w,h with w and h above 0"
        )),
    }
}

/// The optional codecs a sender uses: [`tessera_engine::TileCodec::bit`]s with
/// [`tessera_engine::COPIES_CAPABILITY`], and whether it refers to viewers' tile caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecSet {
    pub bits: u8,
    pub tile_cache: bool,
}

/// Parses a comma-separated list of the optional codecs (`solid`; `patch`: patches and rects;
/// `palette`: palette tiles and rects; `copy` or `scroll`: copy commands for scrolled and moved
/// areas; `cache`: references to the viewer's tile cache), or `none`.
pub fn parse_codecs(s: &str) -> Result<CodecSet, String> {
    use tessera_engine::TileCodec;
    let none = CodecSet {
        bits: 0,
        tile_cache: false,
    };
    if s.trim() == "none" {
        return Ok(none);
    }
    s.split(',').try_fold(none, |set, name| {
        let bits = match name.trim() {
            "solid" => TileCodec::Solid.bit(),
            "patch" => TileCodec::Patch.bit() | TileCodec::Rect.bit(),
            "palette" => TileCodec::Palette.bit() | TileCodec::PaletteRect.bit(),
            "copy" | "scroll" => tessera_engine::COPIES_CAPABILITY,
            "cache" => {
                return Ok(CodecSet {
                    tile_cache: true,
                    ..set
                })
            }
            other => {
                return Err(format!(
                    "codec {other:?}: expected solid, patch, palette, copy, cache (comma-separated) or none"
                ))
            }
        };
        Ok(CodecSet {
            bits: set.bits | bits,
            ..set
        })
    })
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("size {s:?}: expected WIDTHxHEIGHT, e.g. 1920x1080");
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let (w, h) = (
        w.trim().parse::<u32>().map_err(|_| bad())?,
        h.trim().parse::<u32>().map_err(|_| bad())?,
    );
    tessera_engine::check_dimensions(w, h).map_err(|e| format!("size {s:?}: {e}"))?;
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(parse_region("1,2,3,4"), Ok(Rect::new(1, 2, 3, 4)));
        for bad in ["1,2,3", "1,2,0,4", "a,b,c,d", "1,2,3,4,5", "-1,2,3,4"] {
            assert!(parse_region(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("640x480"), Ok((640, 480)));
        for bad in ["640", "0x10", "x", "99999x10", "10x-1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        use tessera_engine::TileCodec;
        let patch = TileCodec::Patch.bit() | TileCodec::Rect.bit();
        let bits = |s| parse_codecs(s).map(|c| c.bits);
        assert_eq!(bits("solid,patch"), Ok(TileCodec::Solid.bit() | patch));
        assert_eq!(bits(" patch "), Ok(patch));
        for copy in ["copy", "scroll"] {
            assert_eq!(bits(copy), Ok(tessera_engine::COPIES_CAPABILITY));
        }
        assert_eq!(
            bits("palette"),
            Ok(TileCodec::Palette.bit() | TileCodec::PaletteRect.bit())
        );
        assert_eq!(
            parse_codecs("none"),
            Ok(CodecSet {
                bits: 0,
                tile_cache: false
            })
        );
        assert_eq!(
            parse_codecs("solid,cache"),
            Ok(CodecSet {
                bits: TileCodec::Solid.bit(),
                tile_cache: true
            })
        );
        assert!(!parse_codecs("solid").unwrap().tile_cache);
        for bad in ["", "zstd", "solid,,patch", "none,solid"] {
            assert!(parse_codecs(bad).is_err(), "{bad}");
        }
    }
}
