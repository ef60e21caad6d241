//! The client commands of the `strand` binary: `strand sql` (one-shot `-c`, a script on
//! stdin, or a REPL), `strand user` (thin wrappers that send user statements as SQL) and
//! `strand subscribe` (a realtime subscription over WebSocket, printed as JSON lines), and
//! `strand produce` / `strand consume` (topics over QUIC), and `strand cluster status`. They talk to a running server;
//! none of this runs inside the server.

mod client;
mod cluster;
mod repair;
mod repl;
mod statements;
mod subscribe;
mod table;
mod topics;
mod user;

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context;

use client::{Client, Reply};
use strand_broker::limits::CLI_SCRIPT_BYTES_MAX;

pub use cluster::{run as run_cluster, ClusterArgs};
pub use repair::{run as run_repair, RepairArgs};
pub use subscribe::{run as run_subscribe, SubscribeArgs};
pub use topics::{run_consume, run_produce, ConsumeArgs, ProduceArgs};
pub use user::{run as run_user, UserArgs};

/// How to reach and log in to a server (accepted before or after a subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Server URL
    #[arg(
        long,
        global = true,
        env = "STRAND_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// User name to log in as
    #[arg(long, global = true, env = "STRAND_USER", default_value = "admin")]
    pub user: String,
    /// Password of --user
    #[arg(long, global = true, env = "STRAND_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

impl ConnectArgs {
    /// The password of `--user`, which every command needs.
    pub fn password(&self) -> anyhow::Result<String> {
        self.password
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no password: pass --password or set STRAND_PASSWORD"))
    }
}

/// `strand sql`.
#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Run these statements and exit (several may be separated by `;`)
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    pub command: Option<String>,
    /// Print the server's JSON answers instead of tables
    #[arg(long)]
    pub json: bool,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

/// `strand sql`: `-c`, else a REPL on a terminal, else the whole of stdin as a script.
pub fn run_sql(args: &SqlArgs) -> anyhow::Result<ExitCode> {
    let output = if args.json {
        Output::Json
    } else {
        Output::Table
    };
    let client = Client::login(&args.connect)?;
    if let Some(sql) = &args.command {
        return Ok(exit_code(run_and_print(&client, sql, output)?));
    }
    if std::io::stdin().is_terminal() {
        return repl::run(&client, output);
    }
    let mut script = String::new();
    std::io::stdin()
        .take(CLI_SCRIPT_BYTES_MAX)
        .read_to_string(&mut script)
        .context("reading stdin")?;
    for statement in statements::split_script(&script) {
        if !run_and_print(&client, &statement, output)? {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Send `sql`, print the results (stdout) or the error (stderr); whether it succeeded.
pub fn run_and_print(client: &Client, sql: &str, output: Output) -> anyhow::Result<bool> {
    match (client.execute(sql)?, output) {
        (Reply::Success(_, raw), Output::Json) | (Reply::Failure(_, raw), Output::Json) => {
            let ok = raw.get("status").and_then(|s| s.as_str()) == Some("success");
            println!("{}", serde_json::to_string_pretty(&raw)?);
            Ok(ok)
        }
        (Reply::Success(success, _), Output::Table) => {
            for result in &success.results {
                print!("{}", table::render_result(result));
            }
            Ok(true)
        }
        (Reply::Failure(error, _), Output::Table) => {
            eprintln!("{}", table::render_error(&error.error));
            Ok(false)
        }
    }
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
