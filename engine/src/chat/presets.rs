//! A side's presets file (TOML): the phrases that turn chat into requests, what this side
//! allows others to run here, and its consent rules.
//!
//! ```toml
//! [[preset]]
//! phrase = "pause please"      # a chat line equal to this (case and spacing aside)
//! action = "pause"             # becomes this request
//!
//! [[preset]]
//! phrase = "show the plan"
//! action = "open-file"
//! path = "plan.pdf"            # relative to the other side's shared folders
//!
//! [allow]                      # what the other side may run here
//! folders = ["/home/me/Shared"]
//! url_prefixes = ["https://intranet.example/"]
//! programs = { calculator = ["/usr/bin/gnome-calculator"] }
//!
//! [consent]
//! unattended = ["pause", "resume", "full-refresh"]   # stream control only (also set-fps,
//!                                                    # set-region, follow-window)
//! confirm = "yes"              # typed back to approve ("no" refuses)
//! requests_per_minute = 20
//! ```

use super::{Allow, Operation};
use serde::Deserialize;
use thiserror::Error;

/// A parsed, checked presets file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presets {
    /// Normalised phrase and the request it makes.
    pub phrases: Vec<(String, Operation)>,
    pub allow: Allow,
    pub consent: ConsentRules,
}

/// When a request may run here.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentRules {
    /// Stream-control operations (by catalogue name) that run without asking.
    pub unattended: Vec<String>,
    /// The phrase that approves the oldest waiting request (`y` and `yes` always do).
    pub confirm: String,
    /// Requests from the other side accepted a minute; more are refused.
    pub requests_per_minute: u32,
}

impl Default for ConsentRules {
    fn default() -> Self {
        Self {
            unattended: Vec::new(),
            confirm: "yes".into(),
            requests_per_minute: 20,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PresetError {
    #[error("presets file: {0}")]
    Toml(String),
    #[error("preset {phrase:?}: {reason}")]
    Preset { phrase: String, reason: String },
    #[error("[allow]: {0}")]
    Allow(String),
    #[error("[consent]: {0}")]
    Consent(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    preset: Vec<RawPreset>,
    #[serde(default)]
    allow: Allow,
    #[serde(default)]
    consent: ConsentRules,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreset {
    phrase: String,
    action: String,
    path: Option<String>,
    url: Option<String>,
    program: Option<String>,
    window: Option<String>,
    name: Option<String>,
    value: Option<String>,
    fps: Option<u32>,
    x: Option<u32>,
    y: Option<u32>,
    width: Option<u32>,
    height: Option<u32>,
}

/// Lower case, single spaces, no ends: how typed lines and phrases are compared.
pub fn normalise(line: &str) -> String {
    line.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

const STREAM_CONTROL: [&str; 9] = [
    "pause",
    "resume",
    "full-refresh",
    "set-fps",
    "set-region",
    "follow-window",
    "stop-sharing",
    "start-sharing",
    "set-setting",
];

impl Default for Presets {
    /// Stream control by its own words; nothing allowed to run here; everything asked.
    fn default() -> Self {
        let phrases = [
            ("pause", Operation::Pause),
            ("resume", Operation::Resume),
            ("refresh", Operation::FullRefresh),
        ]
        .into_iter()
        .map(|(p, op)| (p.to_string(), op))
        .collect();
        Self {
            phrases,
            allow: Allow::default(),
            consent: ConsentRules::default(),
        }
    }
}

impl Presets {
    pub fn parse(text: &str) -> Result<Self, PresetError> {
        let file: File = toml::from_str(text).map_err(|e| PresetError::Toml(e.to_string()))?;
        let mut phrases: Vec<(String, Operation)> = Vec::new();
        for raw in file.preset {
            let phrase = normalise(&raw.phrase);
            let bad = |reason: String| PresetError::Preset {
                phrase: raw.phrase.clone(),
                reason,
            };
            if phrase.is_empty() {
                return Err(bad("empty phrase".into()));
            }
            if phrases.iter().any(|(p, _)| *p == phrase) {
                return Err(bad("phrase used twice".into()));
            }
            let mut fields = serde_json::Map::new();
            fields.insert("action".into(), raw.action.clone().into());
            for (key, value) in [
                ("path", raw.path),
                ("url", raw.url),
                ("program", raw.program),
                ("window", raw.window),
                ("name", raw.name),
                ("value", raw.value),
            ] {
                if let Some(v) = value {
                    fields.insert(key.into(), v.into());
                }
            }
            for (key, value) in [
                ("fps", raw.fps),
                ("x", raw.x),
                ("y", raw.y),
                ("width", raw.width),
                ("height", raw.height),
            ] {
                if let Some(v) = value {
                    fields.insert(key.into(), v.into());
                }
            }
            let op: Operation = super::strict_from_value(fields.into())
                .map_err(|e| bad(format!("action {:?}: {e}", raw.action)))?;
            phrases.push((phrase, op));
        }
        for folder in &file.allow.folders {
            if !folder.is_absolute() {
                return Err(PresetError::Allow(format!(
                    "shared folder {} must be an absolute path",
                    folder.display()
                )));
            }
        }
        for (name, argv) in &file.allow.programs {
            if !argv
                .first()
                .is_some_and(|p| std::path::Path::new(p).is_absolute())
            {
                return Err(PresetError::Allow(format!(
                    "program {name:?} needs an argv starting with an absolute path"
                )));
            }
        }
        if file.allow.opener.as_ref().is_some_and(|o| o.is_empty()) {
            return Err(PresetError::Allow("opener is empty".into()));
        }
        for name in &file.consent.unattended {
            if !STREAM_CONTROL.contains(&name.as_str()) {
                return Err(PresetError::Consent(format!(
                    "{name:?} cannot run unattended: only stream control ({}) can",
                    STREAM_CONTROL.join(", ")
                )));
            }
        }
        if normalise(&file.consent.confirm).is_empty() {
            return Err(PresetError::Consent("empty confirm phrase".into()));
        }
        Ok(Self {
            phrases,
            allow: file.allow,
            consent: file.consent,
        })
    }

    /// The request a typed line makes, if it matches a phrase.
    pub fn request_for(&self, line: &str) -> Option<&Operation> {
        let line = normalise(line);
        self.phrases
            .iter()
            .find(|(p, _)| *p == line)
            .map(|(_, op)| op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[[preset]]
phrase = "Pause   please"
action = "pause"

[[preset]]
phrase = "show the plan"
action = "open-file"
path = "plan.pdf"

[[preset]]
phrase = "slower"
action = "set-fps"
fps = 15

[[preset]]
phrase = "just the corner"
action = "set-region"
x = 0
y = 0
width = 320
height = 200

[allow]
folders = ["/srv/shared"]
programs = { calculator = ["/usr/bin/bc", "-q"] }

[consent]
unattended = ["pause", "resume"]
confirm = "go ahead"
"#;

    #[test]
    fn a_presets_file_parses_and_matches_typed_lines() {
        let p = Presets::parse(EXAMPLE).unwrap();
        assert_eq!(p.request_for("  pause PLEASE "), Some(&Operation::Pause));
        assert_eq!(
            p.request_for("show the plan"),
            Some(&Operation::OpenFile {
                path: "plan.pdf".into()
            })
        );
        assert_eq!(
            p.request_for("slower"),
            Some(&Operation::SetFps { fps: 15 })
        );
        assert_eq!(
            p.request_for("just the corner"),
            Some(&Operation::SetRegion {
                x: 0,
                y: 0,
                width: 320,
                height: 200
            })
        );
        assert_eq!(p.request_for("show the plan now"), None);
        assert_eq!(p.consent.confirm, "go ahead");
        assert_eq!(p.consent.requests_per_minute, 20);
        assert_eq!(p.allow.programs["calculator"], ["/usr/bin/bc", "-q"]);
    }

    #[test]
    fn bad_presets_files_are_clear_errors() {
        for (text, needle) in [
            ("[[preset]]\nphrase = \"x\"\naction = \"shell\"", "unknown variant"),
            ("[[preset]]\nphrase = \"x\"\naction = \"open-file\"", "missing field `path`"),
            ("[[preset]]\nphrase = \"x\"\naction = \"pause\"\npath = \"a\"", "unknown field"),
            ("[[preset]]\nphrase = \"  \"\naction = \"pause\"", "empty phrase"),
            (
                "[[preset]]\nphrase = \"a\"\naction = \"pause\"\n[[preset]]\nphrase = \"A\"\naction = \"resume\"",
                "twice",
            ),
            ("[allow]\nfolders = [\"relative\"]", "absolute"),
            ("[allow]\nprograms = { sh = [\"sh\", \"-c\"] }", "absolute path"),
            ("[consent]\nunattended = [\"launch\"]", "only stream control"),
            ("[consent]\nbogus = 1", "unknown field"),
            ("[unknown]\n", "unknown field"),
            ("not toml at all = = =", "presets file"),
        ] {
            let e = Presets::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn the_defaults_ask_for_everything_and_allow_nothing() {
        let p = Presets::default();
        assert_eq!(p.request_for("Refresh"), Some(&Operation::FullRefresh));
        assert!(p.consent.unattended.is_empty());
        assert!(p.allow.folders.is_empty() && p.allow.programs.is_empty());
    }
}
