//! One run of the tool: the context every workload gets ([`Bench`]), the dispatch of the
//! subcommand (or of every workload for `all`), and the report written at the end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::cli::{defaults, Cli, Command};
use crate::machine::{DiskProbe, Machine};
use crate::progress::Progress;
use crate::report::{self, Failure, Measurement, Report};
use crate::target::Targets;
use crate::workloads;

/// Seconds each disk probe runs (full runs; a quick run takes a tenth).
const DISK_PROBE_SECONDS: f64 = 5.0;

/// What a workload gets: where the servers are, the report to add to, the progress bars and
/// an async runtime for its clients.
pub struct Bench {
    pub targets: Targets,
    pub report: Report,
    pub quick: bool,
    pub progress: Progress,
    pub runtime: tokio::runtime::Runtime,
    /// Holds the scratch directory until the run ends.
    _scratch: tempfile::TempDir,
}

impl Bench {
    /// Adds a measurement (and says so above the progress bars).
    pub fn push(&mut self, measurement: Measurement) {
        self.progress.println(format!("done: {}", measurement.key));
        self.report.results.push(measurement);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.report.notes.push(note.into());
    }

    /// The disk probe of this run, measured on first use (workloads that compare durable
    /// figures with the disk call it).
    pub fn disk(&mut self) -> anyhow::Result<DiskProbe> {
        if let Some(disk) = &self.report.machine.disk {
            return Ok(disk.clone());
        }
        let seconds = if self.quick {
            DISK_PROBE_SECONDS / 10.0
        } else {
            DISK_PROBE_SECONDS
        };
        let _bar = self.progress.timed(
            "disk probe",
            std::time::Duration::from_secs_f64(seconds * 2.0),
        );
        let disk = DiskProbe::measure(self.targets.scratch(), seconds)?;
        self.report.machine.disk = Some(disk.clone());
        Ok(disk)
    }

    /// Runs one workload; a failure is recorded in the report and the run goes on.
    fn attempt(&mut self, name: &str, work: impl FnOnce(&mut Bench) -> anyhow::Result<()>) {
        if let Err(error) = work(self) {
            self.progress.println(format!("FAILED: {name}: {error:#}"));
            self.report.failures.push(Failure {
                workload: name.to_string(),
                error: format!("{error:#}"),
            });
        }
    }
}

/// Runs the command line's workload(s) and writes the report; the exit code says whether
/// every workload ran.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Render(args) = &cli.command {
        return render(&cli, &args.report);
    }
    let scratch_root = cli
        .target
        .scratch
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&scratch_root)
        .with_context(|| format!("create {}", scratch_root.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix("strand-bench-")
        .tempdir_in(&scratch_root)?;
    let started = Instant::now();
    let report = Report {
        tool: "strand-bench".to_string(),
        format: report::FORMAT_VERSION,
        version: env!("CARGO_PKG_VERSION").to_string(),
        command: command_line(),
        started_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        elapsed_s: 0.0,
        machine: Machine::probe(scratch.path()),
        results: Vec::new(),
        ratios: Vec::new(),
        goals: Vec::new(),
        failures: Vec::new(),
        notes: Vec::new(),
    };
    let json_to_stdout = cli.output.json.as_deref() == Some(std::path::Path::new("-"));
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut bench = Bench {
        targets: Targets::new(cli.target.clone(), scratch.path().to_path_buf()),
        report,
        quick: cli.output.quick,
        progress: Progress::new(interactive && !cli.output.no_progress),
        runtime: tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        _scratch: scratch,
    };
    dispatch(&mut bench, &cli.command);
    bench.report.elapsed_s = started.elapsed().as_secs_f64();
    bench.report.compute_ratios();
    bench.report.goals = crate::workloads::goals::evaluate(&bench.report);
    write_outputs(&bench.report, &cli, json_to_stdout)?;
    Ok(if bench.report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn dispatch(bench: &mut Bench, command: &Command) {
    let name = command.name();
    match command {
        Command::Produce(args) => bench.attempt(name, |b| workloads::produce::run(b, args)),
        Command::Consume(args) => bench.attempt(name, |b| workloads::consume::run(b, args)),
        Command::E2e(args) => bench.attempt(name, |b| workloads::e2e::run(b, args)),
        Command::Subscribe(args) => bench.attempt(name, |b| workloads::subscribe::run(b, args)),
        Command::Fanout(args) => bench.attempt(name, |b| workloads::fanout::run(b, args)),
        Command::Snapshot(args) => bench.attempt(name, |b| workloads::snapshot::run(b, args)),
        Command::Resume(args) => bench.attempt(name, |b| workloads::resume::run(b, args)),
        Command::SqlInsert(args) => bench.attempt(name, |b| workloads::sql_insert::run(b, args)),
        Command::Restart(args) => bench.attempt(name, |b| workloads::restart::run(b, args)),
        Command::LiveSql(args) => bench.attempt(name, |b| workloads::live_sql::run(b, args)),
        Command::Cluster(args) => bench.attempt(name, |b| workloads::cluster::run(b, args)),
        // Handled before a run starts.
        Command::Render(_) => {}
        Command::UnderAttack(args) => {
            bench.attempt(name, |b| workloads::under_attack::run(b, args));
        }
        Command::All => {
            let every = [
                Command::Produce(defaults()),
                Command::Consume(defaults()),
                Command::E2e(defaults()),
                Command::Subscribe(defaults()),
                Command::Fanout(defaults()),
                Command::Snapshot(defaults()),
                Command::Resume(defaults()),
                Command::SqlInsert(defaults()),
                Command::Restart(defaults()),
                Command::UnderAttack(defaults()),
                Command::LiveSql(defaults()),
                Command::Cluster(defaults()),
            ];
            for command in &every {
                dispatch(bench, command);
            }
        }
    }
}

/// `render`: a saved report's outputs again, with the ratios and goals of this build.
fn render(cli: &Cli, path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let json = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let mut report: Report = serde_json::from_slice(&json)
        .with_context(|| format!("{} is not a report", path.display()))?;
    report.compute_ratios();
    report.goals = crate::workloads::goals::evaluate(&report);
    let json_to_stdout = cli.output.json.as_deref() == Some(std::path::Path::new("-"));
    write_outputs(&report, cli, json_to_stdout)?;
    Ok(ExitCode::SUCCESS)
}

fn write_outputs(report: &Report, cli: &Cli, json_to_stdout: bool) -> anyhow::Result<()> {
    let text = report::text::render(report);
    if json_to_stdout {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    if let Some(path) = &cli.output.json {
        let json = serde_json::to_string_pretty(report)?;
        if json_to_stdout {
            println!("{json}");
        } else {
            std::fs::write(path, json).with_context(|| format!("write {}", path.display()))?;
        }
    }
    if let Some(path) = &cli.output.html {
        std::fs::write(path, report::html::render(report))
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &cli.output.markdown {
        let link = cli
            .output
            .html
            .as_ref()
            .map(|p: &PathBuf| p.display().to_string());
        let existing = std::fs::read_to_string(path).ok();
        let markdown = report::markdown::render(report, existing.as_deref(), link.as_deref());
        std::fs::write(path, markdown).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// `strand-bench <args>` as typed (the password is never among them: it comes from the
/// environment or is replaced).
fn command_line() -> String {
    let mut words = Vec::new();
    let mut hide_next = false;
    for arg in std::env::args() {
        if hide_next {
            words.push("***".to_string());
            hide_next = false;
        } else if arg == "--password" {
            words.push(arg);
            hide_next = true;
        } else if arg.starts_with("--password=") {
            words.push("--password=***".to_string());
        } else {
            words.push(arg);
        }
    }
    if let Some(first) = words.first_mut() {
        *first = "strand-bench".to_string();
    }
    words.join(" ")
}
