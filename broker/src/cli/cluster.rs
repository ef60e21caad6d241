//! `strand cluster status`: asks a node `GET /v1/cluster/status` and prints its view of the
//! cluster: the members, and for each group its leader, term, log and applied indexes and
//! the followers' lag (`--json`: the server's JSON as it came).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use strand_broker::limits::{CLI_REQUEST_TIMEOUT_MS, CLI_RESPONSE_BYTES_MAX};

/// `strand cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Members, each group's leader, term, applied index and lag, as one node sees them
    Status {
        /// The node's HTTP URL
        #[arg(long, env = "STRAND_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Print the server's JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

/// Runs `strand cluster ...`.
pub fn run(args: &ClusterArgs) -> anyhow::Result<ExitCode> {
    let ClusterCommand::Status { url, json } = &args.command;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_millis(CLI_REQUEST_TIMEOUT_MS)))
        .build()
        .into();
    let address = format!("{}/v1/cluster/status", url.trim_end_matches('/'));
    let mut response = agent
        .get(&address)
        .call()
        .with_context(|| format!("cannot reach {address}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(CLI_RESPONSE_BYTES_MAX)
        .read_to_string()
        .context("reading the answer")?;
    if status == 404 {
        bail!("{url} is not a cluster member (started without --cluster)");
    }
    if status != 200 {
        bail!("{address} answered HTTP {status}: {body}");
    }
    let value: Value = serde_json::from_str(&body).context("the answer is not JSON")?;
    if *json {
        println!("{value}");
    } else {
        print!("{}", render(&value));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(status: &Value) -> String {
    let mut out = format!("node {}\nmembers:", status["node_id"]);
    for member in status["members"].as_array().into_iter().flatten() {
        out.push_str(&format!(" {}={}", member["id"], text(&member["addr"])));
    }
    out.push_str("\ngroup  role       leader  term  last_log  applied  lag\n");
    for group in status["groups"].as_array().into_iter().flatten() {
        let lag = match group["lag"].as_object() {
            Some(lags) => lags
                .iter()
                .map(|(node, lag)| format!("{node}:{}", or_dash(lag)))
                .collect::<Vec<_>>()
                .join(","),
            None => "-".to_string(),
        };
        out.push_str(&format!(
            "{:<6} {:<10} {:<7} {:<5} {:<9} {:<8} {}\n",
            text(&group["group"]),
            text(&group["role"]),
            or_dash(&group["leader"]),
            text(&group["term"]),
            or_dash(&group["last_log_index"]),
            or_dash(&group["applied_index"]),
            lag
        ));
    }
    out
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

fn or_dash(value: &Value) -> String {
    if value.is_null() {
        "-".to_string()
    } else {
        text(value)
    }
}
