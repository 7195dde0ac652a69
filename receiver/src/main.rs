//! `tessera-receiver`: view a shared screen. See `--help`.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use tessera_engine::stream::{Identity, JoinLink};
use tessera_engine::BackendRequest;
use tessera_receiver::window::{self, layout::Scale, WindowChat, WindowError, WindowOptions};
use tessera_receiver::{write_png, Receiver, ReceiverConfig, ReceiverReport};
use tessera_sender::chat;
use tessera_sender::cli::ChatArgs;
use tessera_sender::stats;

/// View a screen shared by tessera-sender, in a window (keys: Z fit/1:1, F11 fullscreen,
/// I stats in the title) or headless.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The sender's join link (tessera://HOST:PORT,.../#TOKEN).
    #[arg(required_unless_present = "listen", conflicts_with = "listen")]
    join: Option<JoinLink>,
    /// Listen for a sender on this address instead (prints a join link for `tessera-sender --connect`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Composite without a window.
    #[arg(long)]
    headless: bool,
    /// Where to composite headless: auto (the CPU: the frame is read in CPU memory), cpu or gpu.
    /// The window always composites on its own GPU device.
    #[arg(long, requires = "headless")]
    compositor: Option<BackendRequest>,
    /// How the window sizes the picture: fit (aspect ratio kept) or 1:1.
    #[arg(long, default_value = "fit", conflicts_with = "headless")]
    scale: Scale,
    /// Start the window fullscreen.
    #[arg(long, conflicts_with = "headless")]
    fullscreen: bool,
    /// Write the last frame as a PNG here.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// Leave after this many composited frames (a window then closes when the stream ends).
    #[arg(long)]
    frames: Option<u64>,
    /// Write counters as JSON here when done.
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// Memory for tiles seen before, which the sender may then name instead of sending
    /// (a window moved back, a tab switched to again), in MiB; 0 turns it off.
    #[arg(long, value_name = "MIB", default_value_t = tessera_engine::TILE_CACHE_BYTES >> 20, value_parser = clap::value_parser!(u32).range(0..=i64::from(tessera_engine::MAX_TILE_CACHE_BYTES >> 20)))]
    tile_cache_mb: u32,
    #[command(flatten)]
    chat: ChatArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.headless {
        if let Err(e) = window::check_display() {
            eprintln!("tessera-receiver: {e}");
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera-receiver: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(args, &runtime) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ntessera-receiver: {e}");
            let no_display = e
                .downcast_ref::<WindowError>()
                .is_some_and(|e| matches!(e, WindowError::NoDisplay(_)));
            if no_display {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(args: Args, runtime: &tokio::runtime::Runtime) -> Result<(), Box<dyn std::error::Error>> {
    let _entered = runtime.enter();
    let config = ReceiverConfig {
        compositor: args.compositor.unwrap_or(BackendRequest::Auto),
        frames: args.frames,
        chat: args.chat.setup(),
        tile_cache_bytes: args.tile_cache_mb << 20,
        ..ReceiverConfig::default()
    };
    let mut receiver = match (&args.join, args.listen) {
        (Some(link), _) => Receiver::connect(config, link.clone()),
        (None, Some(addr)) => {
            let r = Receiver::listen(config, addr, &Identity::generate()?)?;
            println!(
                "join: {}",
                r.link().expect("listening receivers have a link")
            );
            r
        }
        (None, None) => unreachable!("clap requires one"),
    };
    let last_shown = Arc::new(Mutex::new(None));
    let mut window_chat = None;
    if let Some(console) = receiver.take_chat_console() {
        window_chat = Some(WindowChat {
            typed: console.typed.clone(),
            last_shown: last_shown.clone(),
        });
        chat::type_from_stdin(console.typed);
        chat::print_shown(console.shown, "receiver", Some(last_shown));
    }
    let stats = receiver.stats();
    let status = stats::spawn_status(stats.clone());
    let result: Result<Option<ReceiverReport>, Box<dyn std::error::Error>> = if args.headless {
        runtime.block_on(async {
            tokio::select! {
                r = receiver.run() => r.map(Some).map_err(Into::into),
                _ = tokio::signal::ctrl_c() => Ok(None),
            }
        })
    } else {
        let options = WindowOptions {
            scale: args.scale,
            fullscreen: args.fullscreen,
            show_stats: true,
            close_at_end: args.frames.is_some(),
            chat: window_chat,
        };
        window::run_window(receiver, options, runtime.handle().clone())
            .map(Some)
            .map_err(Into::into)
    };
    status.abort();
    {
        let s = stats.lock().expect("stats lock");
        eprintln!("\r\x1b[2K{}", s.status_line());
        if let Some(path) = &args.stats_json {
            s.write_json(path)?;
        }
    }
    if let (Some(Some(report)), Some(path)) = (result.as_ref().ok(), &args.dump) {
        if let Some(frame) = &report.last_frame {
            write_png(frame, path)?;
        }
    }
    result?;
    Ok(())
}
