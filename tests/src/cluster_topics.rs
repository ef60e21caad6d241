//! Topic traffic for the cluster tests: idempotent producers that resend each batch to the
//! next member until one acknowledges it, readers that resume by `_seq` on whichever member
//! answers, and a reader of a member's whole topic. What they record is what the history
//! checks compare with the members' logs afterwards.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strand_wire::quic::client::Client;
use strand_wire::quic::{
    BatchSequence, Fetch, Frame, Idempotence, Message, PartitionIndex, Partitioning, ProduceRecord,
    ProduceTopic, ProducerId, ReadFrom, Seq,
};

use crate::{StrandServer, ADMIN_PASSWORD};

/// What one producer got acknowledged, in the order it was: (value, partition, `_seq`).
pub type Acks = Vec<(String, u32, u64)>;

/// Where clients reach each member (QUIC address, its certificate); replaced on a restart.
pub type Members = Arc<Mutex<Vec<(SocketAddr, PathBuf)>>>;

/// The members' client addresses and certificates.
pub fn members_of(nodes: &[&StrandServer]) -> Members {
    let members = nodes
        .iter()
        .map(|n| (n.quic, n.data_dir.join("tls/cert.pem")))
        .collect();
    Arc::new(Mutex::new(members))
}

/// Batch `batch` of idempotent producer `producer`: one record `value` to `partition`.
pub fn produce(topic: &str, partition: u32, producer: u64, batch: u64, value: &str) -> Message {
    Message::ProduceTopic(ProduceTopic {
        topic: topic.to_string(),
        partitioning: Partitioning::Explicit(PartitionIndex(partition)),
        idempotence: Some(Idempotence {
            producer: ProducerId(producer),
            batch: BatchSequence(batch),
        }),
        records: vec![ProduceRecord {
            key: Default::default(),
            value: value.as_bytes().to_vec().into(),
        }],
    })
}

async fn connect(members: &Members, target: usize) -> Option<Client> {
    let (addr, ca) = {
        let members = members.lock().expect("members");
        members[target % members.len()].clone()
    };
    let connect = Client::connect_password(addr, &ca, "admin", ADMIN_PASSWORD);
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(client)) => Some(client),
        _ => None,
    }
}

/// Starts producers `1..=producers` on `runtime`, each writing `topic` with
/// [`write_until_stopped`] until `stop` is set; each task answers its acknowledged writes.
pub fn spawn_producers(
    runtime: &tokio::runtime::Runtime,
    topic: &str,
    partitions: u32,
    producers: u64,
    members: &Members,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Acks>> {
    (1..=producers)
        .map(|p| {
            let writing = write_until_stopped(
                topic.to_string(),
                partitions,
                p,
                members.clone(),
                stop.clone(),
            );
            runtime.spawn(writing)
        })
        .collect()
}

/// Writes batches 1, 2, ... of `producer` (one message `p<producer>-b<batch>` each, over
/// `partitions` in turn) until `stop`, each resent to the next member until one acknowledges
/// it (`not_leader`, `unavailable`, a dead or silent member: not acknowledged, send again).
pub async fn write_until_stopped(
    topic: String,
    partitions: u32,
    producer: u64,
    members: Members,
    stop: Arc<AtomicBool>,
) -> Acks {
    let mut acks = Acks::new();
    let mut target = usize::try_from(producer).unwrap_or(0);
    let mut client: Option<Client> = None;
    let mut batch = 1;
    while !stop.load(Ordering::Relaxed) {
        let value = format!("p{producer}-b{batch}");
        let partition = u32::try_from(batch % u64::from(partitions)).unwrap_or(0);
        let Some(connected) = client.as_ref() else {
            client = connect(&members, target).await;
            if client.is_none() {
                target += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            continue;
        };
        let request = produce(&topic, partition, producer, batch, &value);
        let answer = tokio::time::timeout(Duration::from_secs(6), connected.request(request)).await;
        match answer {
            Ok(Ok(frames)) => match frames.as_slice() {
                [Frame {
                    message: Message::ProduceAck(ack),
                    ..
                }] => {
                    assert_eq!(ack.count, 1);
                    assert_eq!(ack.partition.0, partition);
                    acks.push((value, ack.partition.0, ack.first.0));
                    batch += 1;
                }
                [Frame {
                    message: Message::Error(error),
                    ..
                }] => {
                    assert!(
                        error.code == "not_leader" || error.code == "unavailable",
                        "unexpected refusal {error:?}"
                    );
                    client = None;
                    target += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => panic!("unexpected answer {other:?}"),
            },
            // The member died or the answer took too long: not acknowledged, send again.
            _ => {
                client = None;
                target += 1;
            }
        }
    }
    acks
}

/// Reads `partition` of `topic` from member after member, resuming after the last `_seq` it
/// got, until `stop`: what a consumer that loses its node and goes to another one sees.
pub async fn resume_across_members(
    topic: String,
    partition: u32,
    members: Members,
    stop: Arc<AtomicBool>,
) -> Vec<(u64, String)> {
    let mut seen: Vec<(u64, String)> = Vec::new();
    let mut target = 0;
    while !stop.load(Ordering::Relaxed) {
        target += 1;
        let Some(client) = connect(&members, target).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // A few reads on this member, then the next one.
        for _ in 0..5 {
            let from = seen
                .last()
                .map_or(ReadFrom::Earliest, |(seq, _)| ReadFrom::After(Seq(*seq)));
            let fetch = Message::Fetch(Fetch {
                topic: topic.clone(),
                partition: PartitionIndex(partition),
                from,
                records_max: 100,
                bytes_max: 1 << 20,
                wait_ms: 100,
            });
            let answer = tokio::time::timeout(Duration::from_secs(2), client.request(fetch)).await;
            let Ok(Ok(frames)) = answer else {
                break;
            };
            let Some(Message::FetchResponse(records)) = frames.first().map(|f| &f.message) else {
                break;
            };
            for record in &records.records {
                let value = String::from_utf8(record.value.to_vec()).expect("utf-8");
                seen.push((record.seq.0, value));
            }
        }
    }
    seen
}

/// Every record of `topic` on `node`: partition -> [(`_seq`, value)].
pub async fn read_all(
    node: &StrandServer,
    topic: &str,
    partitions: u32,
) -> BTreeMap<u32, Vec<(u64, String)>> {
    let client = node.quic_client("admin", ADMIN_PASSWORD).await;
    match read_all_with(&client, topic, partitions).await {
        Ok(all) => all,
        Err(e) => panic!("reading {topic} on {}: {e}", node.http),
    }
}

/// [`read_all`] over a connected `client`; a refused or failed fetch is an error.
pub async fn read_all_with(
    client: &Client,
    topic: &str,
    partitions: u32,
) -> Result<BTreeMap<u32, Vec<(u64, String)>>, String> {
    let mut all = BTreeMap::new();
    for partition in 0..partitions {
        let mut records: Vec<(u64, String)> = Vec::new();
        loop {
            let from = records
                .last()
                .map_or(ReadFrom::Earliest, |(seq, _)| ReadFrom::After(Seq(*seq)));
            let fetch = Message::Fetch(Fetch {
                topic: topic.to_string(),
                partition: PartitionIndex(partition),
                from,
                records_max: 1000,
                bytes_max: 1 << 20,
                wait_ms: 0,
            });
            let frames = client.request(fetch).await.map_err(|e| e.to_string())?;
            let Some(Message::FetchResponse(batch)) = frames.first().map(|f| &f.message) else {
                return Err(format!("expected records, got {frames:?}"));
            };
            if batch.records.is_empty() {
                break;
            }
            for record in &batch.records {
                let value = String::from_utf8_lossy(&record.value).into_owned();
                records.push((record.seq.0, value));
            }
        }
        all.insert(partition, records);
    }
    Ok(all)
}

/// A `_seq` with what it encodes (the Snowflake layout of SPEC.md: 41 bits of milliseconds
/// since 2024-01-01, 10 bits of node, 12 of sequence), to line a record up with the fault
/// log and the members' logs.
pub fn describe_seq(seq: u64) -> String {
    const STRAND_EPOCH_UNIX_MS: u64 = 1_704_067_200_000;
    let unix_ms = (seq >> 22) + STRAND_EPOCH_UNIX_MS;
    let node = (seq >> 12) & 0x3ff;
    format!("{seq} (unix ms {unix_ms}, node {node})")
}

/// Where `log` differs from `first`, partition by partition: lengths, the first index that
/// differs and the records around it.
pub fn describe_difference(
    first: &BTreeMap<u32, Vec<(u64, String)>>,
    log: &BTreeMap<u32, Vec<(u64, String)>>,
) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    for partition in first.keys().chain(log.keys()) {
        let a = first.get(partition).unwrap_or(&empty);
        let b = log.get(partition).unwrap_or(&empty);
        if a == b {
            continue;
        }
        let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let show = |records: &[(u64, String)]| -> Vec<String> {
            let from = at.saturating_sub(2);
            let to = (at + 3).min(records.len());
            records[from.min(to)..to]
                .iter()
                .map(|(seq, value)| format!("{value}@{}", describe_seq(*seq)))
                .collect()
        };
        out.push_str(&format!(
            "\npartition {partition}: {} records vs {}, first difference at index {at}:\n  first: {:?}\n  this:  {:?}",
            a.len(),
            b.len(),
            show(a),
            show(b)
        ));
    }
    out
}

/// Every value stored more than once in `log`, with each place it is stored.
pub fn duplicates(log: &BTreeMap<u32, Vec<(u64, String)>>) -> Vec<String> {
    let mut places: BTreeMap<&str, Vec<(u32, u64)>> = BTreeMap::new();
    for (partition, records) in log {
        for (seq, value) in records {
            places.entry(value).or_default().push((*partition, *seq));
        }
    }
    places
        .into_iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(value, at)| {
            let at: Vec<String> = at
                .iter()
                .map(|(p, seq)| format!("partition {p} at {}", describe_seq(*seq)))
                .collect();
            format!("{value} stored {} times: {}", at.len(), at.join("; "))
        })
        .collect()
}

/// The history checks over the members' final logs (`logs`, one per member) and what the
/// producers were acknowledged: every member holds the same records at the same `_seq`s,
/// `_seq`s increase per partition, every value is stored at most once, every acknowledged
/// one exactly where its ack said, and each producer's acknowledged batches of a partition
/// are stored in the order they were acknowledged.
pub fn check_history(logs: &[BTreeMap<u32, Vec<(u64, String)>>], acks: &[Acks]) {
    for (i, log) in logs.iter().enumerate().skip(1) {
        assert!(
            log == &logs[0],
            "member {} holds other records than the first:{}",
            i + 1,
            describe_difference(&logs[0], log)
        );
    }
    let twice = duplicates(&logs[0]);
    assert!(twice.is_empty(), "values stored twice: {twice:#?}");
    let mut stored: BTreeMap<&str, (u32, u64)> = BTreeMap::new();
    for (partition, records) in &logs[0] {
        assert!(
            records.windows(2).all(|w| w[0].0 < w[1].0),
            "_seqs increase in partition {partition}"
        );
        for (seq, value) in records {
            let before = stored.insert(value, (*partition, *seq));
            assert!(before.is_none(), "{value} is stored twice");
        }
    }
    for producer in acks {
        let mut last_per_partition: BTreeMap<u32, u64> = BTreeMap::new();
        for (value, partition, seq) in producer {
            assert_eq!(
                stored.get(value.as_str()),
                Some(&(*partition, *seq)),
                "acknowledged {value} must be stored once, where its ack said"
            );
            let last = last_per_partition.entry(*partition).or_insert(0);
            assert!(*seq > *last, "{value} is stored before an earlier batch");
            *last = *seq;
        }
    }
}
