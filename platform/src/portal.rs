//! The xdg-desktop-portal ScreenCast interface (Wayland desktops): asks the user which screen
//! or window to share, and hands out a PipeWire remote and node for [`crate::pipewire`].
//!
//! The portal remembers the choice when given the restore token of the last session, kept in
//! `$XDG_STATE_HOME/tessera/portal-restore-token` (default `~/.local/state/...`), so the user
//! is asked once. The D-Bus session stays open on a thread of its own for as long as the
//! [`ScreenCastSession`] lives: the portal ends the cast when its client leaves.
//!
//! Tested against a stand-in portal on a private session bus (`tests/portal.rs`): a desktop's
//! own portal cannot start a cast without a GPU on the test machines.

use crate::CaptureError;
use ashpd::desktop::screencast::{CursorMode, Screencast, SelectSourcesOptions, SourceType};
use ashpd::desktop::PersistMode;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// What to offer the user in the portal's dialog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CastKind {
    /// A whole monitor.
    Monitor,
    /// One application window (the compositor follows it as it moves and resizes).
    Window,
}

/// A running screen-cast session: the PipeWire remote to connect to and the node to capture.
pub struct ScreenCastSession {
    /// The node of the stream the user chose.
    pub node: u32,
    /// The size the portal announced, if it did.
    pub size: Option<(u32, u32)>,
    remote: Option<OwnedFd>,
    quit: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ScreenCastSession {
    /// Takes the PipeWire remote (a connected socket) to hand to the capture; once.
    pub fn take_remote(&mut self) -> Option<OwnedFd> {
        self.remote.take()
    }
}

impl Drop for ScreenCastSession {
    fn drop(&mut self) {
        if let Some(q) = self.quit.take() {
            let _ = q.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where the restore token is kept.
pub fn token_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("tessera").join("portal-restore-token"))
}

/// The token saved at `path`, if there is a plausible one (one line of printable ASCII).
pub fn read_token(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let token = text.trim();
    (!token.is_empty() && token.len() <= 256 && token.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| token.to_string())
}

/// Saves `token` at `path` (readable by the user alone).
pub fn write_token(path: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{token}")
}

/// Asks the portal for a screen cast of `kind` (the dialog shows unless a saved token still
/// names the last choice) and returns the running session.
pub fn start_screen_cast(kind: CastKind) -> Result<ScreenCastSession, CaptureError> {
    let path = token_path();
    let token = path.as_deref().and_then(read_token);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (quit_tx, quit_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("tessera-portal".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let cast = match open_cast(kind, token.as_deref()).await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let (proxy, session, grant) = cast;
                let _ = ready_tx.send(Ok(grant));
                // Hold the session (and the D-Bus connection) until the capture ends.
                let _ = tokio::task::spawn_blocking(move || quit_rx.recv()).await;
                let _ = session.close().await;
                drop(proxy);
            });
        })
        .map_err(|e| CaptureError::Failed(format!("portal thread: {e}")))?;
    let grant = match ready_rx.recv() {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(CaptureError::Unavailable(format!(
                "the desktop portal's screen cast: {e}"
            )));
        }
        Err(_) => {
            let _ = thread.join();
            return Err(CaptureError::Failed("the portal thread ended".into()));
        }
    };
    if let (Some(path), Some(token)) = (path, grant.token.as_deref()) {
        if let Err(e) = write_token(&path, token) {
            eprintln!(
                "tessera: could not save the portal's restore token to {}: {e}",
                path.display()
            );
        }
    }
    Ok(ScreenCastSession {
        node: grant.node,
        size: grant.size,
        remote: Some(grant.remote),
        quit: Some(quit_tx),
        thread: Some(thread),
    })
}

/// What the portal granted.
struct Grant {
    node: u32,
    size: Option<(u32, u32)>,
    remote: OwnedFd,
    token: Option<String>,
}

type Cast = (Screencast, ashpd::desktop::Session<Screencast>, Grant);

async fn open_cast(kind: CastKind, token: Option<&str>) -> Result<Cast, String> {
    // A connection of this session's own: ashpd's shared one would stay bound to the runtime
    // that made it, which ends with the session, and hang the next cast.
    let bus = ashpd::zbus::Connection::session()
        .await
        .map_err(|e| format!("no D-Bus session bus: {e}"))?;
    let proxy = Screencast::with_connection(bus)
        .await
        .map_err(|e| format!("no ScreenCast portal on the session bus: {e}"))?;
    let session = proxy
        .create_session(Default::default())
        .await
        .map_err(|e| format!("create session: {e}"))?;
    let sources = match kind {
        CastKind::Monitor => SourceType::Monitor,
        CastKind::Window => SourceType::Window,
    };
    proxy
        .select_sources(
            &session,
            SelectSourcesOptions::default()
                .set_cursor_mode(CursorMode::Embedded)
                .set_sources(ashpd::enumflags2::BitFlags::from_flag(sources))
                .set_multiple(false)
                .set_persist_mode(PersistMode::ExplicitlyRevoked)
                .set_restore_token(token),
        )
        .await
        .map_err(|e| format!("select sources: {e}"))?;
    let streams = proxy
        .start(&session, None, Default::default())
        .await
        .map_err(|e| format!("start: {e}"))?
        .response()
        .map_err(|e| format!("the user declined, or the portal failed: {e}"))?;
    let stream = streams
        .streams()
        .first()
        .ok_or("the portal granted no stream")?;
    let node = stream.pipe_wire_node_id();
    let size = stream
        .size()
        .and_then(|(w, h)| Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?)));
    let token = streams.restore_token().map(str::to_string);
    let remote = proxy
        .open_pipe_wire_remote(&session, Default::default())
        .await
        .map_err(|e| format!("open the PipeWire remote: {e}"))?;
    Ok((
        proxy,
        session,
        Grant {
            node,
            size,
            remote,
            token,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_tokens_round_trip_and_junk_is_ignored() {
        let dir = std::env::temp_dir().join(format!("tessera-portal-{}", std::process::id()));
        let path = dir.join("state").join("portal-restore-token");
        assert_eq!(read_token(&path), None, "no file yet");
        write_token(&path, "4f6e2a1c-token").unwrap();
        assert_eq!(read_token(&path).as_deref(), Some("4f6e2a1c-token"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        for junk in ["", "  \n", "two words", "\u{1b}[31m", &"x".repeat(300)] {
            std::fs::write(&path, junk).unwrap();
            assert_eq!(read_token(&path), None, "{junk:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
