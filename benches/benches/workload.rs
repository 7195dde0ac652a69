//! Desktop workloads end to end, per tile codec: a sender process capturing a private Xvfb
//! 1920x1080 screen driven by real X clients (xterm, xclock, xdotool), or the synthetic
//! screen, and a headless receiver (CPU compositor) in this process. For each workload and
//! codec set it reports updates a second, bytes an update, kB a second and the sender's CPU
//! seconds a second, after a warm-up (so the first keyframe is not counted). Each row starts
//! its workload afresh. Where TigerVNC's scraping server is installed, each X11 workload also
//! gets a row of it on the same screen ([`tigervnc`]), and the run ends with the ratio of
//! Tessera's sender CPU to that server's, a second (the comparison) and an update (for
//! two senders that catch different shares of the screen's redraws), measured in one run.
//!
//! `cargo bench -p tessera-benches --bench workload` prints the table for BENCHMARKS.md. Under
//! `cargo test --benches` it runs one short row to prove it works.

#[path = "workload/threads.rs"]
mod threads;
#[path = "workload/tigervnc.rs"]
mod tigervnc;
use tigervnc::Security;

use std::process::Command;
use std::time::Duration;
use tessera_engine::stream::Identity;
use tessera_engine::{system_tests_required, BackendRequest};
use tessera_platform::xvfb::{run_on, Spawned, Xvfb};
use tessera_receiver::{Receiver, ReceiverConfig};
use tessera_sender::{Sender, SenderConfig};
use threads::{cpu_by_thread, schedstat_seconds, ThreadCpu};

/// Set in the child process: `SOURCE CODECS`; it runs a sender and prints its join link.
const SENDER_VAR: &str = "TESSERA_WORKLOAD_SENDER";

/// The child: a sender of `source` with `codecs` on loopback until killed.
fn sender_child(spec: &str) {
    let (source, codecs) = spec.split_once(' ').expect("SOURCE CODECS");
    let config = SenderConfig {
        source: source.parse().expect("a source"),
        width: 1920,
        height: 1080,
        fps: 60,
        tile: 64,
        diff: BackendRequest::Cpu,
        codecs: tessera_sender::cli::parse_codecs(codecs)
            .expect("codecs")
            .bits,
        tile_cache: tessera_sender::cli::parse_codecs(codecs)
            .expect("codecs")
            .tile_cache,
        ..SenderConfig::default()
    };
    let runtime = tessera_sender::runtime().unwrap();
    runtime.block_on(async {
        let sender = Sender::listen(
            config,
            "127.0.0.1:0".parse().unwrap(),
            &Identity::generate().unwrap(),
        )
        .unwrap();
        eprintln!("join: {}", sender.link().unwrap());
        sender.run().await.unwrap();
    });
}

/// CPU seconds (user + system) `pid` has used, all its threads, finished ones included: from the
/// process's CPU clock (nanoseconds), else from `/proc/PID/stat` (clock ticks, 10 ms: a
/// typing row's 8 seconds hold only a few of them).
fn cpu_seconds(pid: u32) -> f64 {
    process_clock_seconds(pid).unwrap_or_else(|| stat_seconds(pid))
}

fn process_clock_seconds(pid: u32) -> Option<f64> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: clock_getcpuclockid only writes the clock id we pass.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return None;
    }
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    if unsafe { libc::clock_gettime(clock, &mut time) } != 0 {
        return None;
    }
    Some(time.tv_sec as f64 + time.tv_nsec as f64 * 1e-9)
}

fn stat_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and
    // 13th of them.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    f.iter().sum::<u64>() as f64 / ticks
}

/// One measured row.
struct Row {
    updates_per_s: f64,
    bytes_per_update: f64,
    kb_per_s: f64,
    sender_cpu: f64,
    /// The sender's CPU seconds a second by thread, where `/proc` tells.
    threads: Option<ThreadCpu>,
    /// CPU seconds a second of the X server: drawing the clients, and serving the sender's
    /// grabs.
    server_cpu: f64,
    mismatches: u64,
    /// Updates the viewer could not apply (it asked for a keyframe instead).
    unapplied: u64,
}

/// One X11 workload's all-codecs row beside TigerVNC's, for the comparisons after the table.
struct Against {
    workload: &'static str,
    /// Tessera's sender: CPU seconds a second, updates a second, and CPU by thread.
    sender_cpu: f64,
    updates_per_s: f64,
    threads: Option<ThreadCpu>,
    /// TigerVNC's server, where it ran: CPU seconds a second and updates a second, in the order
    /// of [`Security::ALL`].
    vnc: [Option<(f64, f64)>; 2],
}

impl Against {
    /// TigerVNC's figures with `security`, where they are usable.
    fn vnc(&self, security: Security) -> Option<(f64, f64)> {
        self.vnc[security as usize].filter(|(cpu, updates)| *cpu > 0.0 && *updates > 0.0)
    }
}

/// Shares `source` with `codecs` from a child process for `warmup + seconds`, measuring over
/// the last `seconds` (and the CPU of the X server `server`, when there is one).
fn measure(source: &str, codecs: &str, server: Option<u32>, warmup: f64, seconds: f64) -> Row {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.env(SENDER_VAR, format!("{source} {codecs}"));
    let child = Spawned::start(command, "sender");
    let link = child.wait_for("join: ");
    let link = link.split_once("join: ").unwrap().1.trim().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let receiver = Receiver::connect(
            ReceiverConfig {
                compositor: BackendRequest::Cpu,
                ..ReceiverConfig::default()
            },
            link,
        );
        let (stats, stop) = (receiver.stats(), receiver.stop_handle());
        let task = tokio::spawn(receiver.run());
        tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
        let sample = || {
            let s = stats.lock().unwrap();
            (s.updates, s.bytes)
        };
        let server_seconds = || server.map_or(0.0, cpu_seconds);
        let pid = child.child.id();
        let (u0, b0, c0) = (sample().0, sample().1, cpu_seconds(pid));
        let (x0, t0) = (server_seconds(), cpu_by_thread(pid));
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        let (u1, b1, c1) = (sample().0, sample().1, cpu_seconds(pid));
        let (x1, t1) = (server_seconds(), cpu_by_thread(pid));
        stop.stop();
        let report = task.await.unwrap().unwrap();
        let updates = (u1 - u0) as f64;
        Row {
            updates_per_s: updates / seconds,
            bytes_per_update: if updates > 0.0 {
                (b1 - b0) as f64 / updates
            } else {
                0.0
            },
            kb_per_s: (b1 - b0) as f64 / seconds / 1000.0,
            sender_cpu: (c1 - c0) / seconds,
            threads: t0.zip(t1).map(|(t0, t1)| (t1 - t0).scaled(1.0 / seconds)),
            server_cpu: (x1 - x0) / seconds,
            mismatches: report.stats.checksum_mismatches,
            unapplied: report.stats.unapplied_updates,
        }
    })
}

/// An X client for one workload, killed when dropped.
fn client(display: &str, program: &str, args: &[&str]) -> Spawned {
    let mut command = Command::new(program);
    command.args(args).env("DISPLAY", display);
    Spawned::start(command, "client")
}

/// Runs `act` over and over on a thread until the returned guard is dropped.
struct Actor(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Option<std::thread::JoinHandle<()>>,
);

impl Actor {
    fn start(mut act: impl FnMut() + Send + 'static) -> Self {
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let r = running.clone();
        let thread = std::thread::spawn(move || {
            while r.load(std::sync::atomic::Ordering::Relaxed) {
                act();
            }
        });
        Self(running, Some(thread))
    }
}

impl Drop for Actor {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

/// Sets up `workload` on the display; what it returns keeps it going until dropped. The actor
/// comes first so that it stops before the clients it drives go (a `search --sync` for a window
/// that is gone would wait forever).
fn start_workload(display: &str, workload: &str) -> (Option<Actor>, Vec<Spawned>) {
    let d = display.to_string();
    match workload {
        "idle" => (
            None,
            vec![client(display, "xterm", &["-geometry", "80x24+100+100"])],
        ),
        "typing" => {
            let term = client(
                display,
                "xterm",
                &["-geometry", "80x24+100+100", "-class", "TypeTerm"],
            );
            std::thread::sleep(Duration::from_millis(800));
            // About 15 characters a second: this xdotool (3.20160805) waits half of `--delay`
            // a character (66 made 30 characters a second, measured from the damage times).
            let actor = Actor::start(move || {
                run_on(
                    &d,
                    "xdotool",
                    &[
                        "search",
                        "--class",
                        "TypeTerm",
                        "windowfocus",
                        "type",
                        "--delay",
                        "132",
                        "hello tessera ",
                    ],
                );
            });
            (Some(actor), vec![term])
        }
        "scrolling" => {
            // About 1000x700 pixels; 6 lines every 20 ms is about 300 lines a second.
            let script = "i=0; while :; do seq $i $((i+5)); i=$((i+6)); sleep 0.02; done";
            (
                None,
                vec![client(
                    display,
                    "xterm",
                    &["-geometry", "166x54+0+0", "-e", "sh", "-c", script],
                )],
            )
        }
        "dragging" => {
            let text = client(
                display,
                "xterm",
                &[
                    "-geometry",
                    "166x54+0+0",
                    "-e",
                    "sh",
                    "-c",
                    "seq 1 60; sleep 1000",
                ],
            );
            let clock = client(
                display,
                "xclock",
                &["-geometry", "300x300+200+200", "-update", "1"],
            );
            std::thread::sleep(Duration::from_millis(800));
            let mut step = 0u32;
            // 30 moves a second over the text.
            let actor = Actor::start(move || {
                step = (step + 1) % 40;
                let x = (200 + step * 10).to_string();
                let started = std::time::Instant::now();
                run_on(
                    &d,
                    "xdotool",
                    &[
                        "search",
                        "--sync",
                        "--class",
                        "XClock",
                        "windowmove",
                        &x,
                        "200",
                    ],
                );
                std::thread::sleep(Duration::from_millis(33).saturating_sub(started.elapsed()));
            });
            (Some(actor), vec![text, clock])
        }
        other => panic!("unknown workload {other}"),
    }
}

/// Runs `measure` on `workload` started afresh, so that every row sees the same screens. A
/// workload whose clients did not come up changes nothing (`changed` says no): it is run again,
/// at most twice more, rather than reported as a row of zeros.
fn on_fresh_workload<T>(
    display: &str,
    workload: &str,
    row: &str,
    mut measure: impl FnMut() -> T,
    changed: impl Fn(&T) -> bool,
) -> T {
    let mut attempt = 0;
    loop {
        let running = start_workload(display, workload);
        std::thread::sleep(Duration::from_millis(500));
        let measured = measure();
        drop(running);
        attempt += 1;
        if workload == "idle" || changed(&measured) || attempt == 3 {
            return measured;
        }
        eprintln!("X11 {workload} {row}: the screen never changed; running it again");
    }
}

const CODEC_SETS: [(&str, &str); 7] = [
    ("lz4", "none"),
    ("lz4+solid", "solid"),
    ("lz4+patch", "patch"),
    ("lz4+palette", "palette"),
    ("lz4+copy", "copy"),
    ("lz4+cache", "cache"),
    ("all", ALL_CODECS),
];

const ALL_CODECS: &str = "solid,patch,palette,copy,cache";

fn print_row(workload: &str, codecs: &str, r: &Row, server: bool) {
    let server_cpu = if server {
        format!("{:.4}", r.server_cpu)
    } else {
        "-".into()
    };
    println!(
        "| {workload} | {codecs} | {:.1} | {:.0} | {:.1} | {:.4} | {server_cpu} | {} |",
        r.updates_per_s, r.bytes_per_update, r.kb_per_s, r.sender_cpu, r.mismatches
    );
    if r.unapplied > 0 {
        eprintln!(
            "workload: {workload} {codecs}: the viewer refused {} updates",
            r.unapplied
        );
    }
}

fn main() {
    if let Ok(spec) = std::env::var(SENDER_VAR) {
        return sender_child(&spec);
    }
    let bench = std::env::args().any(|a| a == "--bench");
    // Like criterion: other arguments select the rows whose workload name contains one.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let Some(x) = Xvfb::start(1920, 1080) else {
        assert!(!system_tests_required(), "Xvfb is required here");
        println!("workload: NOT RUN: no Xvfb");
        return;
    };
    let source = format!("x11:{}", x.display);
    if !bench {
        let _typing = start_workload(&x.display, "typing");
        let r = measure(&source, ALL_CODECS, Some(x.server_pid()), 1.0, 1.0);
        assert_eq!(r.mismatches, 0);
        assert_eq!(r.unapplied, 0, "the viewer refused an update");
        assert!(r.updates_per_s > 0.0, "no updates while typing");
        assert!(r.sender_cpu > 0.0, "the sender's CPU was not measured");
        // Its threads add up to the process, and both the network and the capture side ran.
        let t = r
            .threads
            .expect("the sender's CPU by thread, from /proc/PID/task/*/schedstat");
        assert!(
            t.network > 0.0 && t.capture > 0.0 && t.other >= 0.0,
            "the sender's threads: {t:?}"
        );
        assert!(
            (t.total() - r.sender_cpu).abs() < 0.002 + 0.1 * r.sender_cpu,
            "the sender's threads {t:?} add up to {} s/s, its process {} s/s",
            t.total(),
            r.sender_cpu
        );
        // What `/proc` gives that is not a thread's run time is no figure at all.
        assert_eq!(schedstat_seconds("1500000000 20 3\n"), Some(1.5));
        assert_eq!(schedstat_seconds(""), None);
        assert_eq!(schedstat_seconds("-5 20 3"), None);
        assert_eq!(schedstat_seconds("x 20 3"), None);
        assert!(cpu_by_thread(u32::MAX).is_none(), "no such process");
        // The process clock counts what the kernel's ticks count, to a few ticks, here after
        // a third of a second of spinning.
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(300) {
            std::hint::spin_loop();
        }
        let me = std::process::id();
        let (clock, ticks) = (process_clock_seconds(me), stat_seconds(me));
        assert!(
            ticks > 0.1 && clock.is_some_and(|c| (c - ticks).abs() < 0.03),
            "process CPU clock {clock:?} s against {ticks} s in ticks"
        );
        println!(
            "workload: test run ok ({:.0} B/update while typing)",
            r.bytes_per_update
        );
        return;
    }
    let (warmup, seconds) = (2.0, 8.0);
    println!(
        "\n## Desktop workloads, per tile codec\n\nMachine: {}. Sender process: 60 fps cap, 64-pixel tiles, CPU diff with XDamage hints; receiver headless (CPU compositor) in another process on loopback. {seconds} s measured after {warmup} s of warm-up (the keyframe is not counted). Sender CPU: user + system seconds a second of the sender process (capture, diff, encode, QUIC), all its threads, from the process's CPU clock (nanoseconds, not 10 ms ticks). X server CPU: the same for Xvfb, which draws the clients and serves the sender's grabs. TigerVNC rows: `X0tigervnc` (security `None`, or `TLSNone`: anonymous TLS, as its default `TLSVnc` without the password) sharing the same screen and workload with `vncviewer` (ZRLE, continuous updates) on a second Xvfb; kB/s counted by a relay over the measured seconds (with TLS: its records, not the VNC bytes inside); updates/s the server's own count over the whole connection (warm-up and first picture included), bytes/update the measured bytes over that rate; its CPU in the sender column.\n",
        tessera_benches::machine()
    );
    println!("| workload | codecs | updates/s | bytes/update | kB/s | sender CPU s/s | X server CPU s/s | mismatches |\n|---|---|---|---|---|---|---|---|");
    let vnc = tigervnc::available();
    if !vnc {
        eprintln!(
            "workload: TigerVNC rows NOT RUN: apt-get install tigervnc-scraping-server tigervnc-viewer"
        );
    }
    // Per workload: Tessera's sender CPU with every codec, and TigerVNC's server CPU.
    let mut against = Vec::new();
    for workload in ["idle", "typing", "scrolling", "dragging"] {
        if !wanted(&format!("X11 {workload}")) {
            continue;
        }
        for (name, codecs) in CODEC_SETS {
            let r = on_fresh_workload(
                &x.display,
                workload,
                name,
                || measure(&source, codecs, Some(x.server_pid()), warmup, seconds),
                |r| r.updates_per_s > 0.0,
            );
            print_row(&format!("X11 {workload}"), name, &r, true);
            if codecs == ALL_CODECS {
                against.push(Against {
                    workload,
                    sender_cpu: r.sender_cpu,
                    updates_per_s: r.updates_per_s,
                    threads: r.threads,
                    vnc: [None; 2],
                });
            }
        }
        for security in Security::ALL.into_iter().filter(|_| vnc) {
            let label = security.row();
            let m = on_fresh_workload(
                &x.display,
                workload,
                label,
                || {
                    tigervnc::measure(
                        &x.display,
                        x.server_pid(),
                        security,
                        cpu_seconds,
                        warmup,
                        seconds,
                    )
                },
                |m| m.as_ref().is_some_and(|m| m.kb_per_s > 0.0),
            );
            if let Some(m) = m {
                println!(
                    "| X11 {workload} | {label} | {:.1} | {:.0} | {:.1} | {:.4} | {:.4} | - |",
                    m.updates_per_s, m.bytes_per_update, m.kb_per_s, m.server_cpu, m.x_cpu
                );
                if let Some(last) = against.last_mut() {
                    last.vnc[security as usize] = Some((m.server_cpu, m.updates_per_s));
                }
            }
        }
    }
    // A second of CPU is the measure; an update's, what compares two senders that
    // catch different shares of the screen's redraws.
    for a in against.iter().filter(|a| a.updates_per_s > 0.0) {
        let (workload, tessera, updates) = (a.workload, a.sender_cpu, a.updates_per_s);
        for security in Security::ALL {
            let server = security.server();
            if let Some((v, v_updates)) = a.vnc(security) {
                println!(
                    "\nX11 {workload}: Tessera's sender (all codecs) used {:.2}x the CPU a second of {server}, at {updates:.1} against {v_updates:.1} updates a second: {:.2}x its CPU an update.",
                    tessera / v,
                    (tessera / updates) / (v / v_updates)
                );
            }
        }
    }
    // Where an update's CPU goes, beside the goal of half TigerVNC's: what part of that budget
    // the network side alone takes.
    let split: Vec<_> = against
        .iter()
        .filter(|a| a.updates_per_s > 0.0)
        .filter_map(|a| Some((a, a.threads?)))
        .collect();
    if !split.is_empty() {
        println!("\nThe sender's CPU an update by thread (ms, all codecs), and half of TigerVNC's server's CPU an update, unencrypted and with TLS:\n\n| workload | network thread | capture threads | other | sender | half of TigerVNC's | half of TigerVNC's with TLS |\n|---|---|---|---|---|---|---|");
    }
    for (a, threads) in split {
        let t = threads.scaled(1000.0 / a.updates_per_s);
        let half = |security| {
            a.vnc(security)
                .map_or("-".into(), |(v, u)| format!("{:.3}", 500.0 * v / u))
        };
        println!(
            "| X11 {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |",
            a.workload,
            t.network,
            t.capture,
            t.other,
            1000.0 * a.sender_cpu / a.updates_per_s,
            half(Security::Plain),
            half(Security::Tls)
        );
    }
    for scene in ["typing", "scrolling", "dragging", "video", "idle"] {
        if !wanted(&format!("synthetic {scene}")) {
            continue;
        }
        for (name, codecs) in CODEC_SETS {
            let r = measure(&format!("synthetic:{scene}"), codecs, None, warmup, seconds);
            print_row(&format!("synthetic {scene}"), name, &r, false);
        }
    }
}
