//! Runs an approved operation that touches this machine: opens a file from a shared folder or
//! an allowed URL with the opener, or starts an allow-listed program with its fixed argv. No
//! shell is involved anywhere; every argument is one argv element.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tessera_engine::chat::{Allow, Operation};

/// The opener used when the presets name none.
const DEFAULT_OPENER: &str = "xdg-open";

/// Runs `op` here (stream control is the pipeline's, not this). `Ok` says what was done.
pub fn run_here(op: &Operation, allow: &Allow) -> Result<String, String> {
    // The session checked already; check again where it matters.
    op.check(allow)?;
    let opener = || {
        allow
            .opener
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_OPENER.to_string()])
    };
    match op {
        Operation::OpenFile { path } => {
            let target = resolve_in_folders(&allow.folders, path)?;
            let mut argv = opener();
            argv.push(target.to_string_lossy().into_owned());
            spawn(&argv).map(|pid| format!("opened {} (pid {pid})", target.display()))
        }
        Operation::OpenUrl { url } => {
            let mut argv = opener();
            argv.push(url.clone());
            spawn(&argv).map(|pid| format!("opened {url} (pid {pid})"))
        }
        Operation::Launch { program } => {
            let argv = &allow.programs[program];
            spawn(argv).map(|pid| format!("started {program} (pid {pid})"))
        }
        other => Err(format!("{other} is stream control, not run here")),
    }
}

/// The file `path` names inside one of `folders`, after links are followed: a link that leads
/// out of the shared folder is refused.
pub fn resolve_in_folders(folders: &[PathBuf], path: &str) -> Result<PathBuf, String> {
    let mut outside = false;
    for folder in folders {
        let Ok(base) = folder.canonicalize() else {
            continue;
        };
        let Ok(target) = base.join(path).canonicalize() else {
            continue;
        };
        if !target.starts_with(&base) {
            outside = true;
            continue;
        }
        if target.is_file() {
            return Ok(target);
        }
    }
    Err(if outside {
        format!("{path} leads outside the shared folders")
    } else {
        format!("{path} is not a file in the shared folders")
    })
}

/// Starts `argv` detached from our terminal, reaps it in the background, returns its pid.
fn spawn(argv: &[String]) -> Result<u32, String> {
    let (program, args) = argv.split_first().ok_or("empty argv")?;
    let mut child = Command::new(Path::new(program))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let pid = child.id();
    std::thread::spawn(move || child.wait());
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_out_of_a_shared_folder_are_refused() {
        let root = std::env::temp_dir().join(format!("tessera-actions-{}", std::process::id()));
        let shared = root.join("shared");
        std::fs::create_dir_all(shared.join("sub")).unwrap();
        std::fs::write(shared.join("sub/ok.txt"), "ok").unwrap();
        std::fs::write(root.join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(root.join("secret.txt"), shared.join("escape")).unwrap();
        let folders = vec![shared.clone()];
        assert_eq!(
            resolve_in_folders(&folders, "sub/ok.txt").unwrap(),
            shared.canonicalize().unwrap().join("sub/ok.txt")
        );
        assert!(resolve_in_folders(&folders, "escape")
            .unwrap_err()
            .contains("outside"));
        assert!(resolve_in_folders(&folders, "missing.txt")
            .unwrap_err()
            .contains("not a file"));
        assert!(resolve_in_folders(&folders, "sub")
            .unwrap_err()
            .contains("not a file"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn programs_run_with_their_fixed_argv_only() {
        let allow = Allow {
            programs: [("truth".to_string(), vec!["/bin/true".to_string()])].into(),
            ..Allow::default()
        };
        let ok = run_here(
            &Operation::Launch {
                program: "truth".into(),
            },
            &allow,
        )
        .unwrap();
        assert!(ok.starts_with("started truth"));
        assert!(run_here(
            &Operation::Launch {
                program: "/bin/sh".into()
            },
            &allow
        )
        .is_err());
        assert!(run_here(&Operation::Pause, &allow).is_err());
    }
}
