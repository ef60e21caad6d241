//! `strand repair --data-dir DIR`: check every segment of a stopped server's data directory
//! and repair the damaged ones: every intact record is kept, each damaged segment is copied
//! whole to `<segment>.log.damaged` first, and the partitions repaired get their resume floors
//! raised (see `strand_log::recovery::repair`). `--dry-run` only reports. Takes the data
//! directory's lock, so it refuses to run beside a server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use strand_broker::server::LOG_DIR;
use strand_broker::sys::DataDirLock;
use strand_log::recovery::repair::{partition_dirs, repair_partition, PartitionRepair};

/// Directory of the partitions inside the log store (`<data-dir>/log/partitions`).
const PARTITIONS_DIR: &str = "partitions";

/// `strand repair`.
#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    /// Data directory of the stopped server
    #[arg(long, env = "STRAND_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Only report what is damaged; change nothing (exit code 1 when something is)
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: &RepairArgs) -> anyhow::Result<ExitCode> {
    let data_dir = &args.data_dir;
    anyhow::ensure!(
        data_dir.is_dir(),
        "no data directory at {}",
        data_dir.display()
    );
    let _lock = DataDirLock::acquire(data_dir)
        .context("strand repair needs the server stopped (the data directory is locked)")?;
    let root = data_dir.join(LOG_DIR).join(PARTITIONS_DIR);
    if !root.is_dir() {
        println!("no partitions under {}: nothing to check", root.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut checked = 0usize;
    let mut damaged = 0usize;
    for dir in partition_dirs(&root)? {
        checked += 1;
        let report = repair_partition(&dir, !args.dry_run)
            .with_context(|| format!("repairing {}", dir.display()))?;
        damaged += report.segments.len();
        print_report(&root, &dir, &report, args.dry_run);
    }
    let verb = if args.dry_run {
        "need repair"
    } else {
        "repaired"
    };
    println!("checked {checked} partitions: {damaged} damaged segments {verb}");
    Ok(match (args.dry_run, damaged) {
        (true, n) if n > 0 => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

fn print_report(root: &Path, dir: &Path, report: &PartitionRepair, dry_run: bool) {
    let partition = dir.strip_prefix(root).unwrap_or(dir).display();
    for segment in &report.segments {
        let name = segment
            .segment
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        let ranges: Vec<String> = segment
            .damaged
            .iter()
            .map(|d| format!("bytes {}..{} ({})", d.start, d.end, d.error.reason()))
            .collect();
        let header = if segment.bad_header {
            "; header rewritten"
        } else {
            ""
        };
        let aside = match &segment.moved_aside {
            Some(path) => format!("; original kept as {}", path.display()),
            None if dry_run => "; dry run, nothing changed".to_string(),
            None => String::new(),
        };
        println!(
            "partition {partition} segment {name}: damaged {}{header}; {} intact records kept, {} damaged bytes moved aside{aside}",
            ranges.join(", "),
            segment.kept_records,
            segment.damaged_bytes,
        );
    }
    if let Some(seq) = report.floors_raised_to {
        println!("partition {partition}: resume floors raised to _seq {seq} (older resumes get a fresh snapshot)");
    }
}
