//! Sender and receiver over loopback QUIC: bit-exact delivery of every scene on both
//! compositors, both connection directions, refusals, several viewers at their own pace, and
//! hostile peers on either side.

mod common;

use common::gpu_available;
use std::time::Duration;
use tessera_engine::stream::{
    Capabilities, ControlMessage, FrameHeader, Identity, JoinLink, RefuseReason, Role,
};
use tessera_engine::{
    BackendRequest, DecodeLimits, FrameBuffer, PixelFormat, Scene, SyntheticSource, TileCodec,
    TileEncoder, TileGrid,
};
use tessera_receiver::{Receiver, ReceiverConfig, ReceiverError};
use tessera_sender::net::{self, NetError};
use tessera_sender::source::SourceSpec;
use tessera_sender::{Sender, SenderConfig};

const LOOPBACK: &str = "127.0.0.1:0";
const W: u32 = 480;
const H: u32 = 270;

fn config(scene: Scene, frames: u64) -> SenderConfig {
    SenderConfig {
        source: SourceSpec::Synthetic(scene),
        width: W,
        height: H,
        fps: 0,
        tile: 32,
        diff: BackendRequest::Cpu,
        frames: Some(frames),
        ..SenderConfig::default()
    }
}

/// What the sender's screen shows after `frames` frames.
fn expected(scene: Scene, frames: u64) -> FrameBuffer {
    let mut s = SyntheticSource::new(scene, W, H, PixelFormat::Bgra8).unwrap();
    for _ in 1..frames {
        s.advance();
    }
    s.frame_buffer().canonical()
}

fn share(
    config: SenderConfig,
) -> (
    tokio::task::JoinHandle<
        Result<tessera_sender::stats::StatsReport, tessera_sender::SenderError>,
    >,
    JoinLink,
) {
    let sender = Sender::listen(
        config,
        LOOPBACK.parse().unwrap(),
        &Identity::generate().unwrap(),
    )
    .unwrap();
    let link = sender.link().unwrap().clone();
    (tokio::spawn(sender.run()), link)
}

async fn stream_every_scene(compositor: BackendRequest) {
    for scene in Scene::ALL {
        let frames = 300;
        let (sender, link) = share(config(scene, frames));
        let receiver = Receiver::connect(
            ReceiverConfig {
                compositor,
                ..ReceiverConfig::default()
            },
            link,
        );
        let report = receiver.run().await.unwrap();
        let sent = sender.await.unwrap().unwrap();
        assert_eq!(sent.frames, frames, "{scene:?}");
        assert_eq!(report.stats.checksum_mismatches, 0, "{scene:?}");
        assert_eq!(report.stats.unapplied_updates, 0, "{scene:?}");
        assert!(
            report.stats.frames >= 1 && report.stats.frames <= frames,
            "{scene:?}"
        );
        if matches!(scene, Scene::Typing | Scene::Dragging) {
            let parts = sent.tiles.patch + sent.tiles.palette;
            assert!(parts > 0, "{scene:?}: {:?}", sent.tiles);
        }
        if matches!(scene, Scene::Scrolling | Scene::Dragging) {
            assert!(sent.tiles.copies > 0, "{scene:?}: {:?}", sent.tiles);
        }
        assert_eq!(
            report.stats.updates, sent.updates,
            "{scene:?}: every update sent was applied"
        );
        assert!(
            report.last_frame.unwrap() == expected(scene, frames),
            "{scene:?}: last frame differs"
        );
        if scene != Scene::Idle {
            assert!(report.stats.frames > 1, "{scene:?} sent only a keyframe");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scene_arrives_bit_exact_on_the_cpu_compositor() {
    stream_every_scene(BackendRequest::Cpu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scene_arrives_bit_exact_on_the_gpu_compositor() {
    if gpu_available() {
        stream_every_scene(BackendRequest::Gpu).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_viewer_is_dialed_by_the_sender() {
    let receiver = Receiver::listen(
        ReceiverConfig {
            compositor: BackendRequest::Cpu,
            ..ReceiverConfig::default()
        },
        LOOPBACK.parse().unwrap(),
        &Identity::generate().unwrap(),
    )
    .unwrap();
    let link = receiver.link().unwrap().clone();
    let viewing = tokio::spawn(receiver.run());
    let sender = Sender::connect(config(Scene::Scrolling, 120), link).unwrap();
    let sent = sender.run().await.unwrap();
    let report = viewing.await.unwrap().unwrap();
    assert_eq!(sent.frames, 120);
    assert_eq!(report.stats.checksum_mismatches, 0);
    assert!(report.last_frame.unwrap() == expected(Scene::Scrolling, 120));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_or_fingerprint_is_refused_before_any_pixel() {
    let sender = Sender::listen(
        config(Scene::Typing, 10),
        LOOPBACK.parse().unwrap(),
        &Identity::generate().unwrap(),
    )
    .unwrap();
    let link = sender.link().unwrap().clone();
    let stats = sender.stats();
    let running = tokio::spawn(sender.run());

    let mut wrong_secret = link.clone();
    wrong_secret.token.secret[0] ^= 1;
    match Receiver::connect(ReceiverConfig::default(), wrong_secret)
        .run()
        .await
    {
        Err(ReceiverError::Net(NetError::Refused {
            reason: RefuseReason::Secret,
            ..
        })) => {}
        other => panic!(
            "expected a secret refusal, got {:?}",
            other.map(|r| r.stats)
        ),
    }
    let mut wrong_cert = link.clone();
    wrong_cert.token.fingerprint[0] ^= 1;
    match Receiver::connect(ReceiverConfig::default(), wrong_cert)
        .run()
        .await
    {
        Err(ReceiverError::Net(NetError::Connect(why))) => {
            assert!(why.contains("127.0.0.1"), "{why}")
        }
        other => panic!("expected a TLS failure, got {:?}", other.map(|r| r.stats)),
    }
    assert_eq!(
        stats.lock().unwrap().updates,
        0,
        "nothing was sent to refused peers"
    );
    // The sender still serves the right viewer.
    let report = Receiver::connect(
        ReceiverConfig {
            compositor: BackendRequest::Cpu,
            ..ReceiverConfig::default()
        },
        link,
    )
    .run()
    .await
    .unwrap();
    assert_eq!(report.stats.checksum_mismatches, 0);
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_palettes_and_solid_tiles_cut_the_bytes_and_stay_exact() {
    let frames = 200;
    let mut bytes = Vec::new();
    let all = TileCodec::ALL.iter().fold(0, |m, c| m | c.bit());
    for codecs in [0, all] {
        let (sender, link) = share(SenderConfig {
            codecs,
            ..config(Scene::Typing, frames)
        });
        let cpu = ReceiverConfig {
            compositor: BackendRequest::Cpu,
            ..ReceiverConfig::default()
        };
        let report = Receiver::connect(cpu, link).run().await.unwrap();
        let sent = sender.await.unwrap().unwrap();
        assert_eq!(report.stats.checksum_mismatches, 0);
        assert!(report.last_frame.unwrap() == expected(Scene::Typing, frames));
        let parts = sent.tiles.patch + sent.tiles.palette;
        assert_eq!(parts > 0, codecs != 0, "{:?}", sent.tiles);
        // Every delta travelled compact (the sender sent just the one keyframe), and the
        // viewer saw them as the sender sent them.
        assert_eq!(sent.keyframes, 1);
        assert_eq!(sent.compact_updates, sent.updates - 1);
        assert_eq!(report.stats.compact_updates, report.stats.updates - 1);
        assert_eq!(sent.tiles.solid > 0, codecs != 0, "{:?}", sent.tiles);
        // Past the keyframe, per update.
        bytes.push(report.stats.bytes_per_update);
    }
    assert!(
        bytes[1] * 1.5 < bytes[0],
        "bytes per update: lz4 alone {:.0}, with patches {:.0}",
        bytes[0],
        bytes[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dragged_window_uncovers_tiles_from_the_viewers_tile_cache() {
    let frames = 200;
    let mut bytes = Vec::new();
    for tile_cache in [false, true] {
        let (sender, link) = share(SenderConfig {
            tile_cache,
            ..config(Scene::Dragging, frames)
        });
        let cpu = ReceiverConfig {
            compositor: BackendRequest::Cpu,
            ..ReceiverConfig::default()
        };
        let report = Receiver::connect(cpu, link).run().await.unwrap();
        let sent = sender.await.unwrap().unwrap();
        assert_eq!(report.stats.checksum_mismatches, 0);
        assert!(report.last_frame.unwrap() == expected(Scene::Dragging, frames));
        assert_eq!(sent.tiles.cached > 0, tile_cache, "{:?}", sent.tiles);
        // The sender's model of the viewer's cache never named a tile it lacked: no update was
        // refused, so no keyframe beyond the first.
        assert_eq!((sent.keyframes, report.stats.unapplied_updates), (1, 0));
        bytes.push(report.stats.bytes_per_update);
    }
    assert!(
        bytes[1] < bytes[0],
        "bytes per update: without the cache {:.0}, with it {:.0}",
        bytes[0],
        bytes[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_go_at_their_own_pace_and_late_joiners_start_with_a_keyframe() {
    // Dragging (patches of what each viewer holds) and scrolling (copies, for the viewers that
    // hold what they read).
    for scene in [Scene::Dragging, Scene::Scrolling] {
        viewers_at_their_own_pace(scene).await;
    }
}

async fn viewers_at_their_own_pace(scene: Scene) {
    let frames = 240;
    let (sender, link) = share(SenderConfig {
        fps: 120,
        ..config(scene, frames)
    });
    let cpu = ReceiverConfig {
        compositor: BackendRequest::Cpu,
        ..ReceiverConfig::default()
    };
    let fast = tokio::spawn(Receiver::connect(cpu.clone(), link.clone()).run());
    let slow = tokio::spawn(
        Receiver::connect(
            ReceiverConfig {
                delay_per_update: Some(Duration::from_millis(40)),
                ..cpu.clone()
            },
            link.clone(),
        )
        .run(),
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let late = tokio::spawn(Receiver::connect(cpu, link).run());
    let (fast, slow, late) = (
        fast.await.unwrap().unwrap(),
        slow.await.unwrap().unwrap(),
        late.await.unwrap().unwrap(),
    );
    let sent = sender.await.unwrap().unwrap();
    let want = expected(scene, frames);
    for (name, r) in [("fast", &fast), ("slow", &slow), ("late", &late)] {
        assert_eq!(r.stats.checksum_mismatches, 0, "{scene:?} {name}");
        assert_eq!(r.stats.unapplied_updates, 0, "{scene:?} {name}");
        assert!(
            r.last_frame.as_ref().unwrap() == &want,
            "{scene:?} {name} did not converge to the last frame"
        );
        assert_eq!(r.stats.keyframes, 1, "{scene:?} {name}");
    }
    assert!(
        slow.stats.updates * 2 < fast.stats.updates,
        "slow {} fast {}: the slow viewer got unions, not a queue",
        slow.stats.updates,
        fast.stats.updates
    );
    assert!(late.stats.updates < fast.stats.updates);
    assert_eq!(sent.frames, frames);
}

/// Recognises the error a hostile case must produce.
type ExpectedError = fn(&ReceiverError) -> bool;

/// A fake sender: listens, completes the handshake, then sends `streams` as update streams.
async fn hostile_sender(streams: Vec<Vec<u8>>) -> ReceiverError {
    let secret = net::random_secret();
    let listener = net::listen(
        LOOPBACK.parse().unwrap(),
        &Identity::generate().unwrap(),
        secret,
        Role::Sender,
    )
    .unwrap();
    let link = listener.link.clone();
    let endpoint = listener.endpoint.clone();
    let fake = tokio::spawn(async move {
        let conn = endpoint.accept().await.unwrap().await.unwrap();
        let caps = Capabilities::with_limits(&DecodeLimits::default());
        let _hs = net::welcome(&conn, Role::Sender, &secret, caps, |_| Ok(()))
            .await
            .unwrap();
        for bytes in streams {
            let Ok(mut s) = conn.open_uni().await else {
                break;
            };
            if s.write_all(&bytes).await.is_err() {
                break;
            }
            let _ = s.finish();
        }
        conn.closed().await;
    });
    let cpu = ReceiverConfig {
        compositor: BackendRequest::Cpu,
        ..ReceiverConfig::default()
    };
    let err = tokio::time::timeout(Duration::from_secs(20), Receiver::connect(cpu, link).run())
        .await
        .expect("the receiver gives up on a hostile sender, it does not hang")
        .err()
        .expect("a hostile sender is an error");
    fake.abort();
    err
}

fn frame_message(header: FrameHeader, update: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    header.write(&mut m);
    m.extend_from_slice(update);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_sender_gets_clear_errors() {
    // A compact delta (no copies, one sequence step, no time step) declaring `tiles` records,
    // then `padding` zero bytes.
    let compact = |tiles: u8, padding: usize| {
        let mut m = vec![tessera_engine::stream::COMPACT_TAG, 1, 0];
        m.extend_from_slice(&[0; 8]);
        m.push(tiles);
        m.resize(m.len() + padding, 0);
        m
    };
    let header = FrameHeader {
        sequence: 1,
        capture_time_us: 0,
        checksum: 0,
    };
    let source = SyntheticSource::new(Scene::Typing, 64, 64, PixelFormat::Bgra8).unwrap();
    let mut keyframe = Vec::new();
    TileEncoder::default()
        .encode_keyframe(
            &source.frame(),
            &TileGrid::new(64, 64, 32).unwrap(),
            1,
            &mut keyframe,
        )
        .unwrap();
    let mut absurd = keyframe.clone();
    absurd[12..16].copy_from_slice(&100_000u32.to_le_bytes());
    absurd[16..20].copy_from_slice(&100_000u32.to_le_bytes());
    let mut lying = keyframe.clone();
    let n = lying.len();
    lying.truncate(n - 10);

    let cases: Vec<(&str, Vec<Vec<u8>>, ExpectedError)> = vec![
        (
            "garbage",
            vec![
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n0123456789012345678901234567890123456789"
                    .to_vec(),
            ],
            |e| matches!(e, ReceiverError::BadMessage(m) if m.contains("magic")),
        ),
        (
            "truncated headers",
            vec![frame_message(header, &keyframe)[..40].to_vec()],
            |e| matches!(e, ReceiverError::BadMessage(m) if m.contains("headers")),
        ),
        (
            "100000x100000",
            vec![frame_message(header, &absurd)],
            |e| matches!(e, ReceiverError::BadMessage(m) if m.contains("100000x100000")),
        ),
        (
            "truncated update",
            vec![frame_message(header, &lying)],
            |e| matches!(e, ReceiverError::BadUpdate(_)),
        ),
        (
            "delta first",
            vec![frame_message(header, &{
                let mut d = Vec::new();
                TileEncoder::default()
                    .encode_delta(
                        &source.frame(),
                        &TileGrid::new(64, 64, 32).unwrap(),
                        &tessera_engine::DirtyMask::full(4),
                        None,
                        1,
                        &mut d,
                    )
                    .unwrap();
                d
            })],
            |e| {
                matches!(
                    e,
                    ReceiverError::BadUpdate(tessera_engine::ApplyError::NoKeyframe)
                )
            },
        ),
        (
            "compact first",
            vec![compact(1, 0)],
            |e| matches!(e, ReceiverError::BadMessage(m) if m.contains("before any canonical")),
        ),
        (
            "compact with more tiles than the frame",
            vec![frame_message(header, &keyframe), compact(5, 0)],
            |e| matches!(e, ReceiverError::BadMessage(m) if m.contains("more tiles than the frame")),
        ),
        (
            "compact longer than its frame allows",
            vec![frame_message(header, &keyframe), compact(0, 100_000)],
            |e| matches!(e, ReceiverError::BadMessage(m) if m.contains("longer than its frame allows")),
        ),
    ];
    for (name, streams, expected) in cases {
        let err = hostile_sender(streams).await;
        assert!(expected(&err), "{name}: got {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_viewers_do_not_hurt_the_others() {
    let frames = 150;
    let (sender, link) = share(SenderConfig {
        fps: 100,
        stall_timeout: Duration::from_secs(1),
        ..config(Scene::Video, frames)
    });
    let caps = Capabilities::with_limits(&DecodeLimits::default());

    // A viewer that completes the handshake and then never reads or acknowledges anything.
    let (stuck_endpoint, stuck) = net::dial(&link, Role::Viewer).await.unwrap();
    let _stuck_hs = net::greet(&stuck, Role::Viewer, link.token.secret, caps)
        .await
        .unwrap();
    // A viewer that sends garbage on its control stream.
    let (_e2, rude) = net::dial(&link, Role::Viewer).await.unwrap();
    let mut rude_hs = net::greet(&rude, Role::Viewer, link.token.secret, caps)
        .await
        .unwrap();
    rude_hs
        .writer
        .send(&ControlMessage::Ack { sequence: 999 })
        .await
        .unwrap();
    // A peer that never says hello.
    let (_e3, mute) = net::dial(&link, Role::Viewer).await.unwrap();

    let cpu = ReceiverConfig {
        compositor: BackendRequest::Cpu,
        ..ReceiverConfig::default()
    };
    let report = Receiver::connect(cpu, link).run().await.unwrap();
    assert_eq!(report.stats.checksum_mismatches, 0);
    assert!(report.last_frame.unwrap() == expected(Scene::Video, frames));
    sender.await.unwrap().unwrap();
    for (name, conn) in [("stuck", &stuck), ("rude", &rude), ("mute", &mute)] {
        // Closed by the sender, or at worst by the idle timeout if the close packet was lost.
        let closed = tokio::time::timeout(net::IDLE_TIMEOUT * 2, conn.closed()).await;
        assert!(closed.is_ok(), "the sender closed the {name} viewer");
    }
    drop(stuck_endpoint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_too_small_for_the_stream_is_refused() {
    let (_sender, link) = share(config(Scene::Idle, 10));
    let small = DecodeLimits {
        max_width: 100,
        max_height: 100,
        max_pixels: 10_000,
    };
    let err = Receiver::connect(
        ReceiverConfig {
            limits: small,
            compositor: BackendRequest::Cpu,
            ..ReceiverConfig::default()
        },
        link,
    )
    .run()
    .await
    .err()
    .expect("refused");
    assert!(
        matches!(
            err,
            ReceiverError::Net(NetError::Refused {
                reason: RefuseReason::Capabilities,
                ..
            })
        ),
        "{err}"
    );
}

/// A UDP relay to `target` that lets at most `rate` bytes a second through towards the viewer,
/// queues up to `max_queue` bytes and drops the rest: a bottleneck link on loopback.
async fn throttled_relay(
    target: std::net::SocketAddr,
    rate: u64,
    max_queue: usize,
) -> std::net::SocketAddr {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use tokio::net::UdpSocket;
    let front = Arc::new(UdpSocket::bind(LOOPBACK).await.unwrap());
    let back = Arc::new(UdpSocket::bind(LOOPBACK).await.unwrap());
    back.connect(target).await.unwrap();
    let addr = front.local_addr().unwrap();
    let client = Arc::new(Mutex::new(None));
    let queue = Arc::new(Mutex::new((VecDeque::<Vec<u8>>::new(), 0usize)));
    let notify = Arc::new(tokio::sync::Notify::new());
    {
        let (front, back, client) = (front.clone(), back.clone(), client.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                *client.lock().unwrap() = Some(from);
                let _ = back.send(&buf[..n]).await;
            }
        });
    }
    {
        let (back, queue, notify) = (back.clone(), queue.clone(), notify.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = back.recv(&mut buf).await {
                let mut q = queue.lock().unwrap();
                if q.1 + n <= max_queue {
                    q.1 += n;
                    q.0.push_back(buf[..n].to_vec());
                }
                notify.notify_one();
            }
        });
    }
    tokio::spawn(async move {
        loop {
            let packet = queue.lock().unwrap().0.pop_front();
            match packet {
                Some(p) => {
                    queue.lock().unwrap().1 -= p.len();
                    tokio::time::sleep(Duration::from_secs_f64(p.len() as f64 / rate as f64)).await;
                    let to = *client.lock().unwrap();
                    if let Some(to) = to {
                        let _ = front.send_to(&p, to).await;
                    }
                }
                None => notify.notified().await,
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_behind_a_slow_link_converges_to_the_latest_frame() {
    let frames = 180;
    let (sender, mut link) = share(SenderConfig {
        fps: 60,
        ..config(Scene::Video, frames)
    });
    let sender_addr = link.addrs[0];
    // About a quarter of what the video scene needs at 60 fps.
    link.addrs = vec![throttled_relay(sender_addr, 300_000, 64 * 1024).await];
    let cpu = ReceiverConfig {
        compositor: BackendRequest::Cpu,
        ..ReceiverConfig::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(60), Receiver::connect(cpu, link).run())
        .await
        .unwrap()
        .unwrap();
    let sent = sender.await.unwrap().unwrap();
    assert_eq!(sent.frames, frames);
    assert_eq!(report.stats.checksum_mismatches, 0);
    assert!(
        report.last_frame.unwrap() == expected(Scene::Video, frames),
        "converged to the last frame"
    );
    assert!(
        report.stats.updates < frames / 2,
        "{} updates: the slow link got unions of frames, not every frame",
        report.stats.updates
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_is_shared_exactly() {
    let region = tessera_engine::Rect::new(300, 20, 170, 100);
    let (sender, link) = share(SenderConfig {
        region: Some(region),
        ..config(Scene::Video, 60)
    });
    let cpu = ReceiverConfig {
        compositor: BackendRequest::Cpu,
        ..ReceiverConfig::default()
    };
    let report = Receiver::connect(cpu, link).run().await.unwrap();
    sender.await.unwrap().unwrap();
    let full = expected(Scene::Video, 60);
    let want = FrameBuffer::from_frame(&full.as_frame().crop(&region).unwrap());
    assert_eq!(report.stats.checksum_mismatches, 0);
    assert!(report.last_frame.unwrap() == want);
}
