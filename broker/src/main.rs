//! The `strand` command line: `serve` runs the server (logging to stderr, the ready line on
//! stdout, SIGTERM/SIGINT for a clean stop); `sql`, `user`, `subscribe`, `produce` and
//! `consume` are clients of a running server (`cli/`). The server itself lives in the `strand_broker` library.

mod cli;

/// mimalloc instead of glibc's malloc: the server allocates and frees a frame-sized buffer
/// per fetch and produce (megabytes) from many threads, which glibc served with fresh pages
/// (page faults, zeroing) and contended arenas. Measured in the topics bench: 1 KiB consume
/// about 25 % faster, produce about 15 % (BENCHMARKS.md). `serve` names it to
/// `sys::set_heap_allocator` (the `allocator` label of `strand_heap_in_use_bytes`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing_subscriber::EnvFilter;

use strand_broker::config::{self, ServeArgs, ServeConfig};
use strand_broker::limits::SHUTDOWN_GRACE_MS;
use strand_broker::server::{ReadyInfo, Server};
use strand_broker::users::{check_password, AdminBootstrap};

/// Strand: a realtime SQL broker.
#[derive(Debug, Parser)]
#[command(name = "strand", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant (`serve`'s flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server
    Serve(ServeArgs),
    /// Run SQL on a server: -c "...", a script on stdin, or an interactive prompt
    Sql(cli::SqlArgs),
    /// Manage users on a server (sent as SQL statements)
    User(cli::UserArgs),
    /// Subscribe to a SELECT: its rows, then its changes, as JSON lines on stdout
    Subscribe(cli::SubscribeArgs),
    /// Produce each stdin line as one message to a topic (QUIC)
    Produce(cli::ProduceArgs),
    /// Print a topic's messages as JSON lines, optionally as a consumer-group member (QUIC)
    Consume(cli::ConsumeArgs),
    /// Check a stopped server's data directory; keep every intact record of damaged segments
    /// and move the damaged bytes aside (`--dry-run` only reports)
    Repair(cli::RepairArgs),
    /// A cluster's members and each group's leader, as one node sees them
    Cluster(cli::ClusterArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Serve(args) => serve(args),
        Command::Sql(args) => cli::run_sql(args),
        Command::User(args) => cli::run_user(args),
        Command::Subscribe(args) => cli::run_subscribe(args),
        Command::Produce(args) => cli::run_produce(args),
        Command::Consume(args) => cli::run_consume(args),
        Command::Repair(args) => cli::run_repair(args),
        Command::Cluster(args) => cli::run_cluster(args),
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("strand: {error:#}");
        ExitCode::FAILURE
    })
}

fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    // `/metrics` labels its heap figure with the allocator installed above.
    strand_broker::sys::set_heap_allocator(strand_broker::sys::HeapAllocator::Mimalloc);
    let config = config::load(args, |name| std::env::var(name).ok())?;
    init_logging(&config)?;
    let admin_password = std::env::var("STRAND_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    if let Some(password) = &admin_password {
        check_password(password).context("STRAND_ADMIN_PASSWORD")?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let data_dir = config.data_dir.clone();
    let outcome = runtime.block_on(serve_until_signal(config, admin_password));
    runtime.shutdown_timeout(Duration::from_millis(SHUTDOWN_GRACE_MS));
    outcome.map_err(|error| with_repair_hint(error, &data_dir))?;
    Ok(ExitCode::SUCCESS)
}

/// A start refused because stored records are damaged (the catalog, users or group offsets
/// cannot be read whole) says how to repair: the error names the file and byte.
fn with_repair_hint(error: anyhow::Error, data_dir: &std::path::Path) -> anyhow::Error {
    let damaged = error.chain().any(|cause| {
        let text = cause.to_string();
        text.contains("corrupt record in segment") || text.contains("has an unreadable header")
    });
    if !damaged {
        return error;
    }
    error.context(format!(
        "refusing to start: the data directory holds damaged records (the file and byte follow). \
         Nothing was cut. Stop here, back up the data directory, then run `strand repair \
         --data-dir {}` (it keeps every intact record and moves the damaged bytes aside as \
         *.log.damaged); see docs/operations.md",
        data_dir.display()
    ))
}

async fn serve_until_signal(
    config: ServeConfig,
    admin_password: Option<String>,
) -> anyhow::Result<()> {
    // Handlers are installed before the ready line, so a SIGTERM sent right after it is
    // never met by the default action (death by signal, exit code 143).
    let stop = StopSignals::install()?;
    let (server, admin) = Server::start(&config, admin_password.as_deref()).await?;
    announce_admin(admin, admin_password.is_some())?;
    print_ready_line(server.ready())?;
    tracing::info!(http = %server.ready().http, quic = %server.ready().quic, "serving");
    server.run(stop.wait()).await?;
    Ok(())
}

/// SIGTERM and SIGINT, listened for from the moment they are installed.
struct StopSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            terminate: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => tracing::info!("SIGTERM received"),
            _ = self.interrupt.recv() => tracing::info!("SIGINT received"),
        }
    }
}

/// The generated admin password goes to stderr exactly once, outside the log stream, so it
/// is never repeated by a later start or kept by a log collector's structured fields.
fn announce_admin(admin: AdminBootstrap, password_was_given: bool) -> anyhow::Result<()> {
    match admin {
        AdminBootstrap::CreatedWithGeneratedPassword(password) => {
            let rule = "=".repeat(72);
            let mut stderr = std::io::stderr().lock();
            writeln!(
                stderr,
                "{rule}\nSTRAND ADMIN PASSWORD (shown once, never again): created user 'admin' \
                 with password\n\n    {password}\n\nSet STRAND_ADMIN_PASSWORD before the first \
                 start to choose it instead.\n{rule}"
            )?;
            stderr.flush()?;
        }
        AdminBootstrap::CreatedWithGivenPassword => {
            tracing::info!("created user 'admin' with the password from STRAND_ADMIN_PASSWORD");
        }
        AdminBootstrap::AlreadyInitialized if password_was_given => {
            tracing::info!("users exist; STRAND_ADMIN_PASSWORD is only used on the first start");
        }
        AdminBootstrap::AlreadyInitialized => {}
    }
    Ok(())
}

/// The one line scripts and tests wait for, flushed at once.
fn print_ready_line(ready: &ReadyInfo) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", ready.json_line()).context("writing the ready line")?;
    stdout.flush().context("flushing the ready line")?;
    Ok(())
}

/// Logs go to stderr. The filter is `--log-level` / `STRAND_LOG_LEVEL` / the file's
/// `log_level`, else `RUST_LOG`, else `info`.
fn init_logging(config: &ServeConfig) -> anyhow::Result<()> {
    let filter = match &config.log_level {
        Some(level) => EnvFilter::try_new(level).context("invalid log level")?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}
