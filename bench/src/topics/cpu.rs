//! CPU use over a window: of the server (when it is a local process: a spawned Strand or a
//! peer), of this tool, and of everything else on the machine, plus the UDP datagrams the
//! kernel dropped meanwhile. Client and server share the machine's CPUs, so a run whose
//! "other" share is high was disturbed, and UDP drops are QUIC losses the client caused.

use crate::proc;
use std::time::Instant;

use crate::report::Figure;

/// CPU use over a window, in percent of one core.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    /// `None` when the server is not a local process of this run.
    pub server: Option<f64>,
    pub client: f64,
    /// Everything else that ran on the machine meanwhile (other processes, kernel threads
    /// such as writeback; interrupts; the server when it is not known).
    pub other: f64,
    /// UDP datagrams the kernel dropped because a socket's receive buffer was full
    /// (`RcvbufErrors` of `/proc/net/snmp`, machine-wide).
    pub udp_drops: u64,
}

impl CpuUse {
    /// The figures of a measurement: `server cpu`, `client cpu`, `other cpu` (%), `udp
    /// drops`.
    pub fn figures(&self) -> Vec<Figure> {
        let mut figures = Vec::new();
        if let Some(server) = self.server {
            figures.push(Figure::new("server cpu", server, "%"));
        }
        figures.push(Figure::new("client cpu", self.client, "%"));
        figures.push(Figure::new("other cpu", self.other, "%"));
        figures.push(Figure::new("udp drops", self.udp_drops as f64, ""));
        figures
    }
}

/// CPU time (ns) of the server, of this process and of the whole machine, and the wall
/// clock, at the start of a window.
pub struct CpuMark {
    at: Instant,
    server_pid: Option<u32>,
    server_ns: u64,
    client_ns: u64,
    machine_ns: u64,
    udp_drops: u64,
}

impl CpuMark {
    pub fn now(server_pid: Option<u32>) -> CpuMark {
        CpuMark {
            at: Instant::now(),
            server_pid,
            server_ns: server_pid.map_or(0, proc::cpu_ns),
            client_ns: proc::own_cpu_ns(),
            machine_ns: machine_busy_ns(),
            udp_drops: udp_receive_buffer_drops(),
        }
    }

    /// When the window began.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// CPU use from the mark until now.
    pub fn use_since(&self) -> CpuUse {
        let wall = self.at.elapsed().as_nanos().max(1) as f64;
        let server = self
            .server_pid
            .map(|pid| proc::cpu_ns(pid).saturating_sub(self.server_ns));
        let client = proc::own_cpu_ns().saturating_sub(self.client_ns);
        let machine = machine_busy_ns().saturating_sub(self.machine_ns);
        let percent = |ns: u64| 100.0 * ns as f64 / wall;
        CpuUse {
            server: server.map(percent),
            client: percent(client),
            other: percent(machine.saturating_sub(server.unwrap_or(0) + client)),
            udp_drops: udp_receive_buffer_drops().saturating_sub(self.udp_drops),
        }
    }
}

/// `RcvbufErrors` of the `Udp:` lines of `/proc/net/snmp` (0 when unreadable).
fn udp_receive_buffer_drops() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    let column = names.split_whitespace().position(|n| n == "RcvbufErrors");
    column
        .and_then(|c| values.split_whitespace().nth(c)?.parse().ok())
        .unwrap_or(0)
}

/// Busy time of all CPUs since boot (`/proc/stat`: everything but idle and iowait), in ns
/// (counted in 10 ms ticks, so short windows are coarse).
fn machine_busy_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return 0;
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    total.saturating_sub(idle) * 10_000_000
}
