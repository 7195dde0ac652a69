//! The fixed catalogue of operations one side may ask the other to run, and the checks the
//! running side makes against what it allows before anyone is even asked.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path};

/// Longest path, URL or program name a request may carry.
pub const MAX_ARGUMENT_LEN: usize = 512;
/// The settings `set-setting` can change (each `on` or `off`).
pub const SETTINGS: [&str; 2] = ["pointer", "damage-hints"];
/// Frames a second `set-fps` accepts.
pub const FPS_RANGE: std::ops::RangeInclusive<u32> = 1..=240;

/// One operation from the catalogue. Nothing else can be asked for: no shell, no free argv.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Operation {
    /// Stop capturing (viewers keep the last frame).
    Pause,
    Resume,
    /// Send every viewer a keyframe.
    FullRefresh,
    /// Cap the capture rate.
    SetFps {
        fps: u32,
    },
    /// Share only this rectangle of the screen (it must lie on the screen).
    SetRegion {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
    },
    /// Follow one window (by id `0x...` or part of its title) as it moves and resizes.
    FollowWindow {
        window: String,
    },
    /// Stop sharing: capture stops and every viewer is shown a blank frame of the same size
    /// (unlike pause, nothing of the screen stays on view).
    StopSharing,
    /// Share again after stop-sharing (every viewer gets a keyframe).
    StartSharing,
    /// Change one of the sharing side's settings: `pointer` (`on`/`off`: draw the mouse pointer
    /// into frames) or `damage-hints` (`on`/`off`: let the OS's damage narrow the diff).
    SetSetting {
        name: String,
        value: String,
    },
    /// Open a file with the desktop's opener; `path` is relative to one of the running side's
    /// shared folders.
    OpenFile {
        path: String,
    },
    /// Open an http(s) URL with the desktop's opener, if the running side allows its prefix.
    OpenUrl {
        url: String,
    },
    /// Start a program from the running side's allow-list, by its name there (its argv is fixed
    /// in that side's presets).
    Launch {
        program: String,
    },
}

/// What kind of operation, for consent rules and the audit log.
impl Operation {
    /// The catalogue name (`pause`, `open-file`, ...), as in presets files.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::FullRefresh => "full-refresh",
            Self::SetFps { .. } => "set-fps",
            Self::SetRegion { .. } => "set-region",
            Self::FollowWindow { .. } => "follow-window",
            Self::StopSharing => "stop-sharing",
            Self::StartSharing => "start-sharing",
            Self::SetSetting { .. } => "set-setting",
            Self::OpenFile { .. } => "open-file",
            Self::OpenUrl { .. } => "open-url",
            Self::Launch { .. } => "launch",
        }
    }

    /// Stream control runs on the sharing side; everything else runs on the side asked.
    pub fn is_stream_control(&self) -> bool {
        matches!(
            self,
            Self::Pause
                | Self::Resume
                | Self::FullRefresh
                | Self::SetFps { .. }
                | Self::SetRegion { .. }
                | Self::FollowWindow { .. }
                | Self::StopSharing
                | Self::StartSharing
                | Self::SetSetting { .. }
        )
    }

    /// Checks the operation against what this side allows. `Err` is the reason to refuse it
    /// without asking anyone.
    pub fn check(&self, allow: &Allow) -> Result<(), String> {
        match self {
            Self::Pause
            | Self::Resume
            | Self::FullRefresh
            | Self::StopSharing
            | Self::StartSharing => Ok(()),
            Self::SetFps { fps } => {
                if FPS_RANGE.contains(fps) {
                    Ok(())
                } else {
                    Err(format!(
                        "{fps} fps is outside {}..={}",
                        FPS_RANGE.start(),
                        FPS_RANGE.end()
                    ))
                }
            }
            Self::SetRegion { width, height, .. } => {
                if *width == 0 || *height == 0 {
                    Err("an empty region".into())
                } else if *width > crate::MAX_DIMENSION || *height > crate::MAX_DIMENSION {
                    Err(format!(
                        "a region larger than {} on a side",
                        crate::MAX_DIMENSION
                    ))
                } else {
                    Ok(())
                }
            }
            Self::FollowWindow { window } => check_argument(window),
            Self::SetSetting { name, value } => {
                if !SETTINGS.contains(&name.as_str()) {
                    return Err(format!(
                        "unknown setting {:?}: the settings are {}",
                        printable(name),
                        SETTINGS.join(", ")
                    ));
                }
                match value.as_str() {
                    "on" | "off" => Ok(()),
                    other => Err(format!("{name} is on or off, not {:?}", printable(other))),
                }
            }
            Self::OpenFile { path } => {
                check_argument(path)?;
                if allow.folders.is_empty() {
                    return Err("no folders are shared here".into());
                }
                check_relative_path(path)
            }
            Self::OpenUrl { url } => {
                check_argument(url)?;
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err("only http and https URLs can be opened".into());
                }
                if url.chars().any(char::is_whitespace) {
                    return Err("a URL cannot contain spaces".into());
                }
                if !allow.url_prefixes.iter().any(|p| url.starts_with(p)) {
                    return Err("this URL is not on the allowed list here".into());
                }
                Ok(())
            }
            Self::Launch { program } => {
                check_argument(program)?;
                if allow.programs.contains_key(program) {
                    Ok(())
                } else {
                    Err(format!(
                        "{program:?} is not on the programs allow-list here"
                    ))
                }
            }
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SetFps { fps } => write!(f, "set-fps {fps}"),
            Self::SetRegion {
                x,
                y,
                width,
                height,
            } => write!(f, "set-region {x},{y} {width}x{height}"),
            Self::FollowWindow { window } => write!(f, "follow-window {}", printable(window)),
            Self::SetSetting { name, value } => {
                write!(f, "set-setting {} {}", printable(name), printable(value))
            }
            Self::OpenFile { path } => write!(f, "open-file {}", printable(path)),
            Self::OpenUrl { url } => write!(f, "open-url {}", printable(url)),
            Self::Launch { program } => write!(f, "launch {}", printable(program)),
            other => f.write_str(other.name()),
        }
    }
}

/// What this side lets the other side run here (the `[allow]` table of a presets file).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// Folders whose files may be opened (paths in requests are relative to them).
    #[serde(default)]
    pub folders: Vec<std::path::PathBuf>,
    /// URL prefixes that may be opened, e.g. `https://intranet.example/`.
    #[serde(default)]
    pub url_prefixes: Vec<String>,
    /// Programs by name, each with its fixed argv (the first element an absolute path).
    #[serde(default)]
    pub programs: BTreeMap<String, Vec<String>>,
    /// The argv that opens files and URLs (the path or URL is appended as one argument);
    /// `xdg-open` when absent.
    #[serde(default)]
    pub opener: Option<Vec<String>>,
}

fn check_argument(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty argument".into());
    }
    if s.len() > MAX_ARGUMENT_LEN {
        return Err(format!("argument longer than {MAX_ARGUMENT_LEN} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err("control characters in an argument".into());
    }
    if s.starts_with('-') {
        return Err("an argument may not start with '-'".into());
    }
    Ok(())
}

/// A path that stays inside whatever folder it is joined to: relative, made only of plain
/// names (no `..`, no `.`, no root or drive prefix).
fn check_relative_path(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if p.is_absolute() || path.starts_with('\\') || path.contains(':') {
        return Err("the path must be relative to a shared folder".into());
    }
    for c in p.components() {
        match c {
            Component::Normal(_) => {}
            Component::ParentDir => return Err("'..' is not allowed in a path".into()),
            _ => return Err("the path must be plain names inside a shared folder".into()),
        }
    }
    if path.contains('\\') {
        return Err("backslashes are not allowed in a path".into());
    }
    Ok(())
}

/// `s` with control characters replaced, safe to print on a terminal.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow() -> Allow {
        Allow {
            folders: vec!["/srv/shared".into()],
            url_prefixes: vec!["https://example.org/".into()],
            programs: [("calculator".to_string(), vec!["/usr/bin/bc".to_string()])].into(),
            opener: None,
        }
    }

    fn refused(op: Operation) -> String {
        op.check(&allow()).expect_err("refused")
    }

    #[test]
    fn plain_requests_pass() {
        for op in [
            Operation::Pause,
            Operation::SetFps { fps: 30 },
            Operation::OpenFile {
                path: "notes/today.txt".into(),
            },
            Operation::OpenUrl {
                url: "https://example.org/a?b=c".into(),
            },
            Operation::Launch {
                program: "calculator".into(),
            },
        ] {
            assert_eq!(op.check(&allow()), Ok(()), "{op}");
        }
    }

    #[test]
    fn traversal_out_of_the_shared_folders_is_refused() {
        for path in [
            "../etc/passwd",
            "notes/../../etc/passwd",
            "/etc/passwd",
            "./notes.txt",
            "C:\\Windows\\win.ini",
            "..\\secret",
            "",
            "-rf",
        ] {
            let why = refused(Operation::OpenFile { path: path.into() });
            assert!(!why.is_empty(), "{path}");
        }
        let nothing_shared = Allow::default();
        assert_eq!(
            Operation::OpenFile {
                path: "a.txt".into()
            }
            .check(&nothing_shared),
            Err("no folders are shared here".into())
        );
    }

    #[test]
    fn injection_is_refused() {
        for program in [
            "calculator; rm -rf /",
            "calculator --evil",
            "/usr/bin/bc",
            "calc\nulator",
        ] {
            refused(Operation::Launch {
                program: program.into(),
            });
        }
        for url in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://example.org/ --new-window",
            "https://evil.example/",
            "-https://example.org/",
        ] {
            refused(Operation::OpenUrl { url: url.into() });
        }
        assert!(refused(Operation::SetFps { fps: 0 }).contains("outside"));
        assert!(refused(Operation::SetSetting {
            name: "shell".into(),
            value: "on".into()
        })
        .contains("unknown setting"));
        assert!(refused(Operation::SetSetting {
            name: "pointer".into(),
            value: "maybe".into()
        })
        .contains("on or off"));
        assert!(refused(Operation::SetFps { fps: 100_000 }).contains("outside"));
    }

    #[test]
    fn printing_strips_terminal_escapes() {
        assert_eq!(printable("a\x1b[2Jb\u{7}"), "a\u{fffd}[2Jb\u{fffd}");
    }
}
