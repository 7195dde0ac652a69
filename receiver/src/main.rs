//! `tessera-receiver`: view a shared screen. See `--help`.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_engine::stream::{Identity, JoinLink};
use tessera_engine::BackendRequest;
use tessera_receiver::{write_png, Receiver, ReceiverConfig};
use tessera_sender::stats;

/// View a screen shared by tessera-sender.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The sender's join link (tessera://HOST:PORT,.../#TOKEN).
    #[arg(required_unless_present = "listen", conflicts_with = "listen")]
    join: Option<JoinLink>,
    /// Listen for a sender on this address instead (prints a join link for `tessera-sender --connect`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Composite without a window (the window comes with the receiver-window work).
    #[arg(long)]
    headless: bool,
    /// Where to composite: auto (GPU only on real hardware), cpu or gpu.
    #[arg(long, default_value = "auto")]
    compositor: BackendRequest,
    /// Write the last frame as a PNG here.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// Leave after this many composited frames.
    #[arg(long)]
    frames: Option<u64>,
    /// Write counters as JSON here when done.
    #[arg(long)]
    stats_json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if !args.headless {
        eprintln!("tessera-receiver: this build has no viewer window yet; run with --headless");
        return ExitCode::from(2);
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ntessera-receiver: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = ReceiverConfig {
        compositor: args.compositor,
        frames: args.frames,
        ..ReceiverConfig::default()
    };
    let receiver = match (args.join, args.listen) {
        (Some(link), _) => Receiver::connect(config, link),
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
    let stats = receiver.stats();
    let status = stats::spawn_status(stats.clone());
    let result = tokio::select! {
        r = receiver.run() => r.map(Some),
        _ = tokio::signal::ctrl_c() => Ok(None),
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
