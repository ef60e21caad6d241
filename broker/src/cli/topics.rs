//! `strand produce` and `strand consume`: topics over QUIC (docs/topics.md, "The CLI").
//!
//! `produce` sends each stdin line as one message, in batches (one QUIC request each, with an
//! idempotent producer id so a batch is never written twice), and prints the acked `_seq`
//! ranges at the end. `consume` prints one JSON line per message; with `--group` it is a
//! group member and commits what it printed after each batch (at least once: a batch printed
//! but not committed when the member dies is printed again by the next owner). With `--count`
//! it never reads more than it has left to print, so it commits exactly the messages it
//! printed (per partition, the `_seq` of the last one). Group events (assignment, commits) go
//! to stderr, one line each, for people and tests.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use strand_broker::limits::{
    CLI_CONSUME_POLL_MS, CLI_PRODUCE_BATCH_BYTES_MAX, CLI_PRODUCE_BATCH_RECORDS_MAX,
};
use strand_wire::quic::client::Client;
use strand_wire::quic::consumer::{single_answer, ConsumerConfig, GroupConsumer, PartitionReader};
use strand_wire::quic::{
    BatchSequence, Idempotence, Message, Partitioning, ProduceRecord, ProduceTopic, ProducerId,
    ReadFrom, Records, Seq, Sql,
};

/// How to reach a server over QUIC.
#[derive(Debug, Clone, clap::Args)]
pub struct QuicConnectArgs {
    /// QUIC address of the server
    #[arg(long, env = "STRAND_SERVER", default_value = "127.0.0.1:7100")]
    pub server: SocketAddr,
    /// User name
    #[arg(long, env = "STRAND_USER", default_value = "admin")]
    pub user: String,
    /// Password of --user
    #[arg(long, env = "STRAND_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// The server's certificate (PEM) to trust
    #[arg(long, env = "STRAND_CA_CERT", default_value = "./data/tls/cert.pem")]
    pub ca_cert: PathBuf,
}

impl QuicConnectArgs {
    async fn connect(&self) -> anyhow::Result<Client> {
        let password = self
            .password
            .clone()
            .ok_or_else(|| anyhow!("no password: pass --password or set STRAND_PASSWORD"))?;
        Client::connect_password(self.server, &self.ca_cert, &self.user, &password)
            .await
            .with_context(|| format!("connecting to {} over QUIC", self.server))
    }
}

/// `strand produce`.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connect: QuicConnectArgs,
    /// The topic, `namespace.topic`
    #[arg(long)]
    pub topic: String,
    /// Each line is a JSON object; this field's value is the message key (partition by key)
    #[arg(long, value_name = "F")]
    pub key_field: Option<String>,
}

/// `strand consume`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Output: one JSON object per line on stdout, e.g.
  {\"partition\":0,\"_seq\":\"7212\",\"key\":\"k1\",\"value\":\"hello\"}
key and value are text when they are UTF-8, else key_base64/value_base64.
With --group, stderr gets `assigned ...` and `committed ...` lines.")]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connect: QuicConnectArgs,
    /// The topic, `namespace.topic`
    #[arg(long)]
    pub topic: String,
    /// Consume as a member of this group and commit what is printed
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Where to start (with --group: in partitions the group never committed)
    #[arg(long, value_name = "earliest|latest|SEQ", default_value = "earliest")]
    pub from: String,
    /// Exit 0 after N messages
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Exit 0 when no message arrives for MS milliseconds
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// With --group: the group's session timeout
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub session_timeout_ms: u32,
}

pub fn run_produce(args: &ProduceArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(produce(args))?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_consume(args: &ConsumeArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(consume(args))?;
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The acked range of one partition, summed over batches.
#[derive(Default)]
struct Acked {
    first: Option<u64>,
    last: u64,
    count: u64,
}

async fn produce(args: &ProduceArgs) -> anyhow::Result<()> {
    let client = args.connect.connect().await?;
    let producer = ProducerId(random_producer_id());
    let mut batch_seq = 0u64;
    let mut acked: BTreeMap<u32, Acked> = BTreeMap::new();
    let mut batch: Vec<ProduceRecord> = Vec::new();
    let mut batch_bytes = 0usize;
    let stdin = std::io::stdin();
    for (number, line) in stdin.lock().lines().enumerate() {
        let line = line.context("reading stdin")?;
        let key = match &args.key_field {
            Some(field) => key_of(&line, field).with_context(|| format!("line {}", number + 1))?,
            None => Vec::new(),
        };
        batch_bytes += key.len() + line.len();
        batch.push(ProduceRecord {
            key: key.into(),
            value: line.into_bytes().into(),
        });
        if batch.len() >= CLI_PRODUCE_BATCH_RECORDS_MAX
            || batch_bytes >= CLI_PRODUCE_BATCH_BYTES_MAX
        {
            batch_seq += 1;
            send_batch(&client, args, producer, batch_seq, &mut batch, &mut acked).await?;
            batch_bytes = 0;
        }
    }
    if !batch.is_empty() {
        batch_seq += 1;
        send_batch(&client, args, producer, batch_seq, &mut batch, &mut acked).await?;
    }
    let partitions: Vec<Value> = acked
        .iter()
        .map(|(partition, range)| {
            json!({
                "partition": partition,
                "first_seq": range.first.map(|s| s.to_string()),
                "last_seq": range.last.to_string(),
                "count": range.count,
            })
        })
        .collect();
    let total: u64 = acked.values().map(|range| range.count).sum();
    println!("{}", json!({ "produced": total, "partitions": partitions }));
    client.close().await;
    Ok(())
}

async fn send_batch(
    client: &Client,
    args: &ProduceArgs,
    producer: ProducerId,
    batch_seq: u64,
    batch: &mut Vec<ProduceRecord>,
    acked: &mut BTreeMap<u32, Acked>,
) -> anyhow::Result<()> {
    let request = ProduceTopic {
        topic: args.topic.clone(),
        partitioning: Partitioning::ByKeyHash,
        idempotence: Some(Idempotence {
            producer,
            batch: BatchSequence(batch_seq),
        }),
        records: std::mem::take(batch),
    };
    let frames = client.request(Message::ProduceTopic(request)).await?;
    if frames.is_empty() {
        bail!("the server answered nothing to a produce");
    }
    for frame in frames {
        match frame.message {
            Message::ProduceAck(ack) => {
                let range = acked.entry(ack.partition.0).or_default();
                range.first.get_or_insert(ack.first.0);
                range.last = ack.last.0;
                range.count += u64::from(ack.count);
            }
            Message::Error(error) => bail!("produce refused: {} ({})", error.message, error.code),
            other => bail!("unexpected answer to a produce: {}", other.name()),
        }
    }
    Ok(())
}

/// The key of a JSON line: the field's string as is, any other JSON value as its text.
fn key_of(line: &str, field: &str) -> anyhow::Result<Vec<u8>> {
    let object: Map<String, Value> =
        serde_json::from_str(line).context("with --key-field, each line is a JSON object")?;
    match object.get(field) {
        Some(Value::String(text)) => Ok(text.clone().into_bytes()),
        Some(Value::Null) | None => Ok(Vec::new()),
        Some(other) => Ok(other.to_string().into_bytes()),
    }
}

async fn consume(args: &ConsumeArgs) -> anyhow::Result<()> {
    let start = parse_from(&args.from)?;
    let client = Arc::new(args.connect.connect().await?);
    let mut out = std::io::stdout().lock();
    let mut printed = 0u64;
    let mut last_message = Instant::now();
    let poll = Duration::from_millis(CLI_CONSUME_POLL_MS);
    let done = |printed: u64, last: Instant| {
        args.count.is_some_and(|count| printed >= count)
            || args
                .timeout_ms
                .is_some_and(|ms| last.elapsed() >= Duration::from_millis(ms))
    };
    if let Some(group) = &args.group {
        let mut config = ConsumerConfig::new(group, &args.topic);
        config.session_timeout_ms = args.session_timeout_ms;
        config.start = start;
        let mut consumer = GroupConsumer::join(client.clone(), config).await?;
        while !done(printed, last_message) {
            // Never more than is still to print: the group commits what `poll` returned.
            let found = consumer
                .poll_at_most(poll, remaining(args.count, printed))
                .await?;
            if let Some(assignment) = consumer.take_assignment_change() {
                let partitions: Vec<u32> = assignment.partitions.iter().map(|p| p.0).collect();
                eprintln!(
                    "assigned member={} generation={} partitions={partitions:?}",
                    assignment.member.0, assignment.generation.0
                );
            }
            if found.is_empty() {
                continue;
            }
            last_message = Instant::now();
            printed += print_records(&mut out, &found)?;
            if consumer.commit().await? {
                for records in &found {
                    if let Some(last) = records.records.last() {
                        eprintln!(
                            "committed partition={} _seq={}",
                            records.partition.0, last.seq.0
                        );
                    }
                }
            }
        }
        consumer.commit().await?;
        consumer.leave().await?;
    } else {
        let partitions = topic_partitions(&client, &args.topic).await?;
        let mut reader = PartitionReader::new(client.clone(), &args.topic, 1_000, 1 << 20);
        for partition in 0..partitions {
            reader.read_from(partition, start);
        }
        let wait_ms = u32::try_from(poll.as_millis()).unwrap_or(u32::MAX);
        while !done(printed, last_message) {
            let found = reader
                .poll_at_most(wait_ms, remaining(args.count, printed))
                .await?;
            if !found.is_empty() {
                last_message = Instant::now();
                printed += print_records(&mut out, &found)?;
            }
        }
    }
    drop(out);
    if let Ok(client) = Arc::try_unwrap(client) {
        client.close().await;
    }
    Ok(())
}

/// How many records a poll may return: what `--count` leaves to print (all without it).
fn remaining(count: Option<u64>, printed: u64) -> usize {
    count.map_or(usize::MAX, |count| {
        usize::try_from(count.saturating_sub(printed)).unwrap_or(usize::MAX)
    })
}

/// Prints every record as a JSON line; returns how many.
fn print_records(out: &mut impl Write, found: &[Records]) -> anyhow::Result<u64> {
    let mut printed = 0u64;
    for records in found {
        for record in &records.records {
            let mut line = Map::new();
            line.insert("partition".into(), Value::from(records.partition.0));
            line.insert("_seq".into(), Value::from(record.seq.0.to_string()));
            put_bytes(&mut line, "key", &record.key);
            put_bytes(&mut line, "value", &record.value);
            writeln!(out, "{}", Value::Object(line)).context("writing stdout")?;
            printed += 1;
        }
    }
    out.flush().context("writing stdout")?;
    Ok(printed)
}

fn put_bytes(line: &mut Map<String, Value>, field: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => line.insert(field.to_string(), Value::from(text)),
        Err(_) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            line.insert(format!("{field}_base64"), Value::from(encoded))
        }
    };
}

fn parse_from(text: &str) -> anyhow::Result<ReadFrom> {
    match text {
        "earliest" => Ok(ReadFrom::Earliest),
        "latest" => Ok(ReadFrom::Latest),
        seq => seq
            .parse::<u64>()
            .map(|seq| ReadFrom::After(Seq(seq)))
            .map_err(|_| anyhow!("--from is earliest, latest or a _seq, not {seq:?}")),
    }
}

/// The partition count of `topic`, from `SHOW TOPICS` over the same connection.
async fn topic_partitions(client: &Client, topic: &str) -> anyhow::Result<u32> {
    let request = Sql {
        sql: "SHOW TOPICS".to_string(),
        params_json: "[]".to_string(),
    };
    let Message::SqlResult(result) = single_answer(client, Message::Sql(request)).await? else {
        bail!("unexpected answer to SHOW TOPICS");
    };
    let body: Value = serde_json::from_str(&result.body_json).context("SHOW TOPICS answer")?;
    let rows = body["results"][0]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for row in rows {
        let name = format!(
            "{}.{}",
            row["namespace"].as_str().unwrap_or_default(),
            row["topic"].as_str().unwrap_or_default()
        );
        if name == topic {
            let partitions = row["partitions"].as_u64().unwrap_or(0);
            return u32::try_from(partitions).context("partition count");
        }
    }
    match body["error"]["message"].as_str() {
        Some(message) => bail!("SHOW TOPICS: {message}"),
        None => bail!("topic {topic} does not exist (or this user may not see it)"),
    }
}

fn random_producer_id() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
    }
    u64::from_le_bytes(bytes)
}
