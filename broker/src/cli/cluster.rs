//! `strand cluster status`: asks a node `GET /v1/cluster/status` and prints its view of the
//! cluster: the members, and for each group its leader, term, log and applied indexes and
//! the followers' lag (`--json`: the server's JSON as it came). `strand cluster add ID=ADDR`
//! and `strand cluster remove ID` log in as an administrator of the node `--url` names (any
//! member: one that does not lead sends the change on to the leader) and change the members
//! (`POST` / `DELETE /v1/cluster/members`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use strand_broker::limits::{CLI_REQUEST_TIMEOUT_MS, CLI_RESPONSE_BYTES_MAX};

use super::client::Client;
use super::ConnectArgs;

/// `strand cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The node's HTTP URL, and for `add` and `remove` an administrator's credentials
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Members, each group's leader, term, applied index and lag, as one node sees them
    Status {
        /// Print the server's JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Add a node (started with --join) as a voter, once it caught up; any member sends it on
    /// to the leader
    Add {
        /// The node's id and the QUIC address the members reach it at: `ID=IP:PORT`
        #[arg(value_name = "ID=ADDR", value_parser = parse_member)]
        member: (u64, SocketAddr),
    },
    /// Remove a node (a voter or a learner); any member sends it on to the leader
    Remove {
        /// The node's id
        #[arg(value_name = "ID")]
        id: u64,
    },
}

/// Runs `strand cluster ...`.
pub fn run(args: &ClusterArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        ClusterCommand::Status { json } => status(&args.connect.url, *json),
        ClusterCommand::Add { member: (id, addr) } => {
            let client = Client::login(&args.connect)?;
            let body = json!({"node_id": id, "addr": addr.to_string()});
            let answer = client.post("/v1/cluster/members", &body)?;
            changed(answer, &format!("added node {id} at {addr}"))
        }
        ClusterCommand::Remove { id } => {
            let client = Client::login(&args.connect)?;
            let answer = client.delete(&format!("/v1/cluster/members/{id}"))?;
            changed(answer, &format!("removed node {id}"))
        }
    }
}

/// `ID=IP:PORT`.
fn parse_member(text: &str) -> Result<(u64, SocketAddr), String> {
    let (id, addr) = text
        .split_once('=')
        .ok_or_else(|| "expected ID=IP:PORT".to_string())?;
    let id = id
        .trim()
        .parse()
        .map_err(|_| format!("{id:?} is not a node id"))?;
    let addr = addr
        .trim()
        .parse()
        .map_err(|_| format!("{addr:?} is not IP:PORT"))?;
    Ok((id, addr))
}

/// Prints the members after a change, or fails with the server's error.
fn changed((status, body): (u16, Value), done: &str) -> anyhow::Result<ExitCode> {
    if status != 200 {
        let code = text(&body["error"]["code"]);
        let message = text(&body["error"]["message"]);
        bail!("HTTP {status} {code}: {message}");
    }
    let mut out = format!("{done}\nmembers:");
    for member in body["members"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            " {}={} ({})",
            member["id"],
            text(&member["addr"]),
            text(&member["role"])
        ));
    }
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn status(url: &str, json: bool) -> anyhow::Result<ExitCode> {
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
    if json {
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
        if member["role"] == "learner" {
            out.push_str(" (learner)");
        }
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
