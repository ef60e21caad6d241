//! What `/proc` says about a process: its CPU time (every thread's `schedstat`), its
//! anonymous resident memory (`RssAnon`) and thread count. Read for the spawned server (the
//! server's CPU % and memory figures) and for this process (the client's CPU %).

use std::time::Instant;

use anyhow::{bail, Context};

/// CPU time of every thread of `/proc/<which>/task` in ns (the first field of each
/// `schedstat`); a thread that ended meanwhile is lost (small).
fn tasks_cpu_ns(which: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{which}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU time process `pid` has used so far, all threads.
pub fn cpu_ns(pid: u32) -> u64 {
    tasks_cpu_ns(&pid.to_string())
}

/// CPU time this process has used so far, all threads.
pub fn own_cpu_ns() -> u64 {
    tasks_cpu_ns("self")
}

/// `RssAnon` in bytes and the number of threads of `pid`, from one read of its status.
pub fn rss_anon_and_threads(pid: u32) -> anyhow::Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let Some(line) = status.lines().find_map(|l| l.strip_prefix(name)) else {
            bail!("no {name} in {path}");
        };
        line.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("bad line {name} {line:?}"))
    };
    Ok((field("RssAnon:")? * 1024, field("Threads:")?))
}

/// CPU use of this process and of the server over a stretch of wall time.
pub struct CpuMeter {
    started: Instant,
    server: Option<u32>,
    client_ns: u64,
    server_ns: u64,
}

impl CpuMeter {
    /// Starts measuring; `server` is the server's pid when the bench can see it.
    pub fn start(server: Option<u32>) -> CpuMeter {
        CpuMeter {
            started: Instant::now(),
            server,
            client_ns: own_cpu_ns(),
            server_ns: server.map_or(0, cpu_ns),
        }
    }

    /// (client, server) CPU in percent of one core since [`CpuMeter::start`]; the server's is
    /// `None` for a server that is not this tool's child.
    pub fn percent(&self) -> (f64, Option<f64>) {
        let wall = self.started.elapsed().as_nanos().max(1) as f64;
        let client = own_cpu_ns().saturating_sub(self.client_ns) as f64;
        let server = self
            .server
            .map(|pid| 100.0 * cpu_ns(pid).saturating_sub(self.server_ns) as f64 / wall);
        (100.0 * client / wall, server)
    }

    /// Pushes `client_cpu` and (when known) `server_cpu` figures in % of one core.
    pub fn figures(&self, figures: &mut Vec<crate::report::Figure>) {
        let (client, server) = self.percent();
        figures.push(crate::report::Figure::new("client_cpu", client, "%"));
        if let Some(server) = server {
            figures.push(crate::report::Figure::new("server_cpu", server, "%"));
        }
    }
}
