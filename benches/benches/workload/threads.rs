//! Where a sender process's CPU goes, by thread: the network thread (its main thread, which
//! runs the tokio runtime: QUIC and the network tasks), the capture threads (the capture
//! thread and the diff and encode pool it starts, all named `tessera-capture`), and the rest.
//! Read from each thread's `/proc/PID/task/TID/schedstat` (nanoseconds on a CPU).

use std::ops::Sub;

/// CPU seconds of a sender process's threads, by kind. Threads that have finished are not
/// counted.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadCpu {
    pub network: f64,
    pub capture: f64,
    pub other: f64,
}

impl ThreadCpu {
    pub fn total(&self) -> f64 {
        self.network + self.capture + self.other
    }

    pub fn scaled(self, by: f64) -> Self {
        Self {
            network: self.network * by,
            capture: self.capture * by,
            other: self.other * by,
        }
    }
}

impl Sub for ThreadCpu {
    type Output = Self;

    fn sub(self, earlier: Self) -> Self {
        Self {
            network: self.network - earlier.network,
            capture: self.capture - earlier.capture,
            other: self.other - earlier.other,
        }
    }
}

/// The CPU seconds `pid`'s live threads have used, by kind; `None` where `/proc` has no
/// scheduler statistics for them.
pub fn cpu_by_thread(pid: u32) -> Option<ThreadCpu> {
    let mut cpu = ThreadCpu::default();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let dir = entry.ok()?.path();
        let Ok(schedstat) = std::fs::read_to_string(dir.join("schedstat")) else {
            // The thread finished between the listing and the read.
            if dir.exists() {
                return None;
            }
            continue;
        };
        let seconds = schedstat_seconds(&schedstat)?;
        let tid = dir.file_name()?.to_str()?.parse::<u32>().ok()?;
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if tid == pid {
            cpu.network += seconds;
        } else if comm.trim() == "tessera-capture" {
            cpu.capture += seconds;
        } else {
            cpu.other += seconds;
        }
    }
    Some(cpu)
}

/// The run time in a `schedstat` line (its first field, nanoseconds on a CPU), in seconds;
/// `None` when the line does not start with a number.
pub fn schedstat_seconds(line: &str) -> Option<f64> {
    let ns: u64 = line.split(' ').next()?.trim().parse().ok()?;
    Some(ns as f64 * 1e-9)
}
