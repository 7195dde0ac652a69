//! `tessera-sender`: share a screen. See `--help`.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_engine::stream::{Identity, JoinLink};
use tessera_engine::{BackendRequest, Rect};
use tessera_sender::chat;
use tessera_sender::cli::{parse_region, parse_size, ChatArgs};
use tessera_sender::select::{self, Selection};
use tessera_sender::source::{self, list_sources, SourceSpec, WindowSelector};
use tessera_sender::{stats, Sender, SenderConfig};

/// Share a screen, losslessly, with Tessera viewers over QUIC.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Listen for viewers on this address (prints a join link).
    #[arg(long, default_value = "0.0.0.0:4433", conflicts_with = "connect")]
    listen: SocketAddr,
    /// Dial a listening viewer's join link instead of listening.
    #[arg(long, value_name = "JOIN")]
    connect: Option<JoinLink>,
    /// Certificate (PEM) to listen with instead of a fresh self-signed one; needs --key.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// What to share: synthetic[:typing|scrolling|dragging|video|idle], x11[:DISPLAY],
    /// pipewire:NODE (a PipeWire video node), portal[:monitor|window] (what you pick in the
    /// desktop portal's dialog, Wayland) or screen (the portal on Wayland, else X11; Windows
    /// Graphics Capture; ScreenCaptureKit on macOS).
    #[arg(long, default_value = "synthetic")]
    source: SourceSpec,
    /// Screen size of the synthetic source.
    #[arg(long, value_parser = parse_size, default_value = "1920x1080")]
    size: (u32, u32),
    /// Follow one window: its id (0x..., see --list-sources) or part of its title.
    #[arg(long, value_name = "TITLE|ID")]
    window: Option<WindowSelector>,
    /// List the screens and windows --source can share, then exit.
    #[arg(long)]
    list_sources: bool,
    /// Freeze the screen, drag out the area to share (Esc cancels); a rectangle that matches a
    /// window offers to follow that window.
    #[arg(long, conflicts_with_all = ["region", "window", "list_sources"])]
    select: bool,
    /// Share only this rectangle of the screen (or window): x,y,w,h.
    #[arg(long, value_parser = parse_region)]
    region: Option<Rect>,
    /// Frames a second at most; 0 = as fast as viewers take them.
    #[arg(long, default_value_t = 60)]
    fps: u32,
    /// Tile side in pixels, 16..=256.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(16..=256))]
    tile: u32,
    /// Where the diff runs: auto (the GPU only for frames captured into GPU textures, on real
    /// hardware; every capture here hands frames in CPU memory, so the CPU), cpu or gpu.
    #[arg(long, default_value = "auto")]
    diff: BackendRequest,
    /// Stop after this many frames, once every viewer has them. The screen is then grabbed at
    /// every frame time (a fixed run, for tests and measurements); without it a real screen is
    /// grabbed only when it changes.
    #[arg(long)]
    frames: Option<u64>,
    /// Ignore the source's damage rectangles (compare every tile).
    #[arg(long)]
    no_damage: bool,
    /// Leave the mouse pointer out of captured frames.
    #[arg(long)]
    no_cursor: bool,
    /// Codecs to use besides lz4 and raw, where the viewer takes them: `solid` (one colour in
    /// 4 bytes), `patch` (the changed rectangle of a tile over what the viewer holds),
    /// `palette` (tiles and rectangles of at most 16 colours as indices), `copy` (a scrolled or
    /// moved area moved by a copy command, then only what it does not make right; `scroll` is
    /// the same), `cache` (a tile the viewer saw before, from its tile cache, as an 8-byte
    /// reference); `none` for lz4 alone.
    #[arg(long, value_name = "LIST", default_value = "solid,patch,palette,copy,cache", value_parser = tessera_sender::cli::parse_codecs)]
    codecs: tessera_sender::cli::CodecSet,
    /// Write counters as JSON here when done.
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// No live status line (the summary is still printed at the end).
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    chat: ChatArgs,
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.select {
        // The selection window runs on the main thread, before anything is shared.
        let chosen = source::freeze(&args.source)
            .map_err(|e| e.to_string())
            .and_then(|(frozen, windows)| {
                select::select_area(&frozen, &windows).map_err(|e| e.to_string())
            });
        match chosen {
            Ok(Selection::Area(r)) => {
                eprintln!(
                    "tessera-sender: sharing the area {},{} {}x{}",
                    r.x, r.y, r.width, r.height
                );
                args.region = Some(r);
            }
            Ok(Selection::Window(w)) => {
                eprintln!("tessera-sender: following window {:#x} {:?}", w.id, w.title);
                args.window = Some(WindowSelector::Id(w.id));
            }
            Err(e) => {
                eprintln!("tessera-sender: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = match tessera_sender::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera-sender: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ntessera-sender: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.list_sources {
        for line in list_sources(&args.source)? {
            println!("{line}");
        }
        return Ok(());
    }
    let config = SenderConfig {
        source: args.source,
        width: args.size.0,
        height: args.size.1,
        region: args.region,
        window: args.window,
        fps: args.fps,
        tile: args.tile,
        diff: args.diff,
        frames: args.frames,
        use_damage: !args.no_damage,
        cursor: !args.no_cursor,
        codecs: args.codecs.bits,
        tile_cache: args.codecs.tile_cache,
        chat: args.chat.setup(),
        ..SenderConfig::default()
    };
    let mut sender = match args.connect {
        Some(link) => Sender::connect(config, link)?,
        None => {
            let identity = match (&args.cert, &args.key) {
                (Some(c), Some(k)) => Identity::from_pem(&std::fs::read(c)?, &std::fs::read(k)?)?,
                _ => Identity::generate()?,
            };
            let sender = Sender::listen(config, args.listen, &identity)?;
            println!(
                "join: {}",
                sender.link().expect("listening senders have a link")
            );
            sender
        }
    };
    if let Some(console) = sender.take_chat_console() {
        chat::type_from_stdin(console.typed);
        chat::print_shown(console.shown, "sender", None);
    }
    let stats = sender.stats();
    {
        let s = stats.lock().expect("stats lock");
        eprintln!(
            "tessera-sender: {} | diff on {} ({})",
            s.labels.source.as_deref().unwrap_or("?"),
            s.labels.diff_backend.as_deref().unwrap_or("?"),
            s.labels.diff_reason.as_deref().unwrap_or("")
        );
    }
    let status = (!args.quiet).then(|| stats::spawn_status(stats.clone()));
    let result = tokio::select! {
        r = sender.run() => r.map(Some),
        _ = tokio::signal::ctrl_c() => Ok(None),
    };
    if let Some(s) = status {
        s.abort();
    }
    let report = stats.lock().expect("stats lock");
    eprintln!("\r\x1b[2K{}", report.status_line());
    if let Some(path) = &args.stats_json {
        report.write_json(path)?;
    }
    result?;
    Ok(())
}
