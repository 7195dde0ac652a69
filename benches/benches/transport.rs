//! What one small update's round trip costs the sender in CPU on its transport, against a bare
//! UDP round trip on the same loopback: the floor under the sender's network thread while
//! typing (15 small updates a second, each acknowledged).
//!
//! The QUIC rows use the sender's own endpoints (`tessera_sender::net::listen` and `dial`: its
//! transport settings, certificates and timer), one unidirectional stream an update as the
//! sender sends them, and an acknowledgement on the viewer's control stream for each. They
//! differ in where an update comes from: another thread, over a channel, as the capture thread
//! hands them over; or the network thread itself (what running capture on that thread would
//! save). A third QUIC row drives `quinn-proto` from one thread with no async runtime and makes
//! the updates on that thread (`transport/one_thread.rs`): what a QUIC driver of the sender's
//! own, on the capture thread, would cost. The UDP row sends one datagram each way and nothing
//! else. Each row's CPU is that of the sending side's threads only, from their thread CPU
//! clocks, over every round trip after the first.
//!
//! `cargo bench -p tessera-benches --bench transport` prints the table for BENCHMARKS.md. Under
//! `cargo test --benches` it runs a few quick round trips of each to prove they work.

use std::net::UdpSocket;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tessera_engine::stream::{Identity, JoinLink, Role};
use tessera_sender::net;

#[path = "transport/one_thread.rs"]
mod one_thread;

/// An update's bytes: a typed character's update is about this size.
const UPDATE: [u8; 60] = [7; 60];
/// An acknowledgement's bytes.
const ACK: [u8; 8] = [1; 8];

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "this thread's CPU clock");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Where the sender's updates come from.
#[derive(Clone, Copy, PartialEq)]
enum Origin {
    /// Another thread hands each over on a channel (the capture thread today).
    OtherThread,
    /// The network thread makes each itself.
    NetworkThread,
}

/// A viewer on its own thread, as the receiver is one: it dials the link it is given, opens and
/// announces its control stream, reads each update stream whole and acknowledges it there.
fn spawn_viewer() -> (mpsc::Sender<JoinLink>, std::thread::JoinHandle<()>) {
    let (link_tx, link_rx) = mpsc::channel::<JoinLink>();
    let viewer = std::thread::spawn(move || {
        let runtime = tessera_sender::runtime().expect("a runtime");
        runtime.block_on(async move {
            let link = link_rx.recv().expect("the sender's link");
            let (endpoint, conn) = net::dial(&link, Role::Viewer).await.expect("dialled");
            let (mut control, _unused) = conn.open_bi().await.expect("a control stream");
            // A stream is announced by its first bytes.
            control.write_all(&ACK).await.expect("announced");
            while let Ok(mut update) = conn.accept_uni().await {
                if update.read_to_end(1 << 16).await.is_err()
                    || control.write_all(&ACK).await.is_err()
                {
                    break;
                }
            }
            endpoint.wait_idle().await;
        });
    });
    (link_tx, viewer)
}

/// Sends `updates` updates `interval` apart over the sender's QUIC endpoints to a viewer on
/// another thread, each acknowledged; the sending side's CPU an update, over all but the first.
fn quic(origin: Origin, updates: u32, interval: Duration) -> Duration {
    let (link_tx, viewer) = spawn_viewer();
    let runtime = tessera_sender::runtime().expect("a runtime");
    let cpu = runtime.block_on(async move {
        let secret = net::random_secret();
        let identity = Identity::generate().expect("a certificate");
        let listener = net::listen(
            "127.0.0.1:0".parse().expect("loopback"),
            &identity,
            secret,
            Role::Sender,
        )
        .expect("listening");
        link_tx
            .send(listener.link.clone())
            .expect("the viewer waits");
        let incoming = listener.endpoint.accept().await.expect("a viewer");
        let conn = incoming.await.expect("connected");
        let (_unused, mut control) = conn.accept_bi().await.expect("the control stream");
        let mut ack = [0u8; 8];
        control.read_exact(&mut ack).await.expect("announced");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
        let writer_conn = conn.clone();
        let writer = tokio::spawn(async move {
            while let Some(update) = rx.recv().await {
                let mut stream = writer_conn.open_uni().await.expect("a stream");
                stream.write_all(&update).await.expect("written");
                let _ = stream.finish();
            }
        });
        let acks = tokio::spawn(async move {
            let mut start = None;
            for n in 0..updates {
                control.read_exact(&mut ack).await.expect("acknowledged");
                if n == 0 {
                    start = Some(thread_cpu());
                }
            }
            thread_cpu() - start.expect("one update at least")
        });
        let producer_cpu = match origin {
            Origin::OtherThread => {
                let producer = std::thread::spawn(move || {
                    let mut next = Instant::now();
                    let mut start = None;
                    for n in 0..updates {
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                        next += interval;
                        tx.blocking_send(UPDATE.to_vec()).expect("the writer runs");
                        if n == 0 {
                            start = Some(thread_cpu());
                        }
                    }
                    thread_cpu() - start.expect("one update at least")
                });
                tokio::task::spawn_blocking(move || producer.join().expect("the producer"))
                    .await
                    .expect("joined")
            }
            Origin::NetworkThread => {
                let mut tick = tokio::time::interval(interval);
                for _ in 0..updates {
                    tick.tick().await;
                    tx.send(UPDATE.to_vec()).await.expect("the writer runs");
                }
                Duration::ZERO
            }
        };
        // The acknowledgements task ran on this thread, the runtime's only one: its clock is
        // the network thread's.
        let network_cpu = acks.await.expect("every update acknowledged");
        writer.abort();
        conn.close(0u32.into(), b"done");
        listener.endpoint.wait_idle().await;
        network_cpu + producer_cpu
    });
    viewer.join().expect("the viewer");
    cpu / (updates - 1)
}

/// The same round trips driven by `quinn-proto` on one thread without a runtime.
fn quic_one_thread(updates: u32, interval: Duration) -> Duration {
    let (link_tx, viewer) = spawn_viewer();
    let cpu = one_thread::round_trips(updates, interval, link_tx);
    viewer.join().expect("the viewer");
    cpu
}

/// The same round trips as one datagram each way and nothing else.
fn bare_udp(updates: u32, interval: Duration) -> Duration {
    let viewer = UdpSocket::bind("127.0.0.1:0").expect("a socket");
    let sender = UdpSocket::bind("127.0.0.1:0").expect("a socket");
    viewer
        .connect(sender.local_addr().expect("bound"))
        .expect("connected");
    sender
        .connect(viewer.local_addr().expect("bound"))
        .expect("connected");
    for s in [&viewer, &sender] {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout");
    }
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..updates {
            viewer.recv(&mut buf).expect("an update");
            viewer.send(&ACK).expect("acknowledged");
        }
    });
    let mut buf = [0u8; 64];
    let mut next = Instant::now();
    let mut start = None;
    for n in 0..updates {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += interval;
        sender.send(&UPDATE).expect("sent");
        assert_eq!(
            sender.recv(&mut buf).expect("an acknowledgement"),
            ACK.len()
        );
        if n == 0 {
            start = Some(thread_cpu());
        }
    }
    let cpu = thread_cpu() - start.expect("one update at least");
    echo.join().expect("the viewer");
    cpu / (updates - 1)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (updates, interval, runs) = if bench {
        (150, Duration::from_millis(66), 3)
    } else {
        (5, Duration::from_millis(10), 1)
    };
    let rows: [(&str, &dyn Fn() -> Duration); 4] = [
        (
            "QUIC as the sender sends: updates handed over from another thread",
            &|| quic(Origin::OtherThread, updates, interval),
        ),
        ("QUIC, updates made on the network thread", &|| {
            quic(Origin::NetworkThread, updates, interval)
        }),
        (
            "QUIC on quinn-proto, one thread without a runtime, updates made there",
            &|| quic_one_thread(updates, interval),
        ),
        ("bare UDP: one datagram each way", &|| {
            bare_udp(updates, interval)
        }),
    ];
    if !bench {
        for (name, row) in rows {
            assert!(row() > Duration::ZERO, "{name}: no CPU measured");
        }
        println!("transport: test run ok");
        return;
    }
    println!(
        "\n## Transport: the sender's CPU a round trip\n\nMachine: {}. {updates} updates of {} bytes {} ms apart on loopback, each acknowledged with {} bytes; the sending side's threads' CPU an update. Rows in turn, {runs} times.\n\n| run | transport | sender CPU an update (µs) | against bare UDP in that run |\n|---|---|---|---|",
        tessera_benches::machine(),
        UPDATE.len(),
        interval.as_millis(),
        ACK.len()
    );
    for run in 1..=runs {
        let measured: Vec<(&str, Duration)> =
            rows.iter().map(|(name, row)| (*name, row())).collect();
        let udp = measured.last().expect("the UDP row").1;
        for (name, cpu) in measured {
            println!(
                "| {run} | {name} | {:.1} | {:.2}x |",
                cpu.as_secs_f64() * 1e6,
                cpu.as_secs_f64() / udp.as_secs_f64()
            );
        }
    }
}
