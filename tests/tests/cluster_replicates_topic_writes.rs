//! Topic writes on a three-node cluster survive the leader's death. A topic created on the
//! leader (one replicated catalog record) exists on every member under the same partitions.
//! Three idempotent producers write over QUIC, each to whichever member leads (a member that
//! does not answers `not_leader`; one that cannot reach a majority answers `unavailable`; both
//! mean "not acknowledged, send again"), while the leader is killed with SIGKILL and
//! restarted, several times. Afterwards every member holds the same records at the same
//! `_seq`s, and every acknowledged message is there exactly once, at the `_seq` its ack named.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strand_tests::cluster::{agreed_leader, caught_up, free_quic_addrs, member_options};
use strand_tests::{bearer, sql_ok, StrandServer, ADMIN_PASSWORD};
use strand_wire::quic::client::Client;
use strand_wire::quic::{
    BatchSequence, Fetch, Frame, Idempotence, Message, PartitionIndex, Partitioning, ProduceRecord,
    ProduceTopic, ProducerId, ReadFrom, Seq,
};

const TOPIC: &str = "app.events";
const PARTITIONS: u32 = 2;
const PRODUCERS: u64 = 3;
const KILLS: usize = 3;

/// What one producer got acknowledged: value -> (partition, `_seq`).
type Acks = BTreeMap<String, (u32, u64)>;

fn produce(partition: u32, producer: u64, batch: u64, value: &str) -> Message {
    Message::ProduceTopic(ProduceTopic {
        topic: TOPIC.to_string(),
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

/// Writes batches 1, 2, ... of `producer` until `stop`, each resent (to the next member) until
/// one acknowledges it.
async fn write_until_stopped(
    producer: u64,
    members: Arc<Mutex<Vec<(std::net::SocketAddr, std::path::PathBuf)>>>,
    stop: Arc<AtomicBool>,
) -> Acks {
    let mut acks = Acks::new();
    let mut target = usize::try_from(producer).unwrap();
    let mut client: Option<Client> = None;
    let mut batch = 1;
    while !stop.load(Ordering::Relaxed) {
        let value = format!("p{producer}-b{batch}");
        let partition = u32::try_from(batch % u64::from(PARTITIONS)).unwrap();
        if client.is_none() {
            let (addr, ca) = members.lock().unwrap()[target % 3].clone();
            let connect = Client::connect_password(addr, &ca, "admin", ADMIN_PASSWORD);
            match tokio::time::timeout(Duration::from_secs(2), connect).await {
                Ok(Ok(connected)) => client = Some(connected),
                _ => {
                    target += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let request = produce(partition, producer, batch, &value);
        let sent = client.as_ref().unwrap().request(request);
        let answer = tokio::time::timeout(Duration::from_secs(5), sent).await;
        match answer {
            Ok(Ok(frames)) => match frames.as_slice() {
                [Frame {
                    message: Message::ProduceAck(ack),
                    ..
                }] => {
                    assert_eq!(ack.count, 1);
                    acks.insert(value, (ack.partition.0, ack.first.0));
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

/// Every record of the topic on `node`: partition -> [(`_seq`, value)].
async fn read_all(node: &StrandServer) -> BTreeMap<u32, Vec<(u64, String)>> {
    let client = node.quic_client("admin", ADMIN_PASSWORD).await;
    let mut all = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let mut records = Vec::new();
        let mut from = ReadFrom::Earliest;
        loop {
            let fetch = Message::Fetch(Fetch {
                topic: TOPIC.to_string(),
                partition: PartitionIndex(partition),
                from,
                records_max: 1000,
                bytes_max: 1 << 20,
                wait_ms: 0,
            });
            let frames = client.request(fetch).await.unwrap();
            let Message::FetchResponse(batch) = &frames[0].message else {
                panic!("expected records, got {frames:?}");
            };
            if batch.records.is_empty() {
                break;
            }
            for record in &batch.records {
                records.push((
                    record.seq.0,
                    String::from_utf8(record.value.to_vec()).unwrap(),
                ));
            }
            from = ReadFrom::After(Seq(records.last().unwrap().0));
        }
        all.insert(partition, records);
    }
    all
}

#[test]
fn acknowledged_topic_writes_survive_leader_kills_on_every_member() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the replication test's cluster secret").unwrap();
    let quic = free_quic_addrs(3);
    let start = |id: usize| {
        StrandServer::start(
            dirs[id - 1].path(),
            &member_options(id, &quic, secret.path()),
        )
    };
    let mut nodes: Vec<Option<StrandServer>> = (1..=3).map(|id| Some(start(id))).collect();
    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    let (leader, _) = agreed_leader(&all);
    let leader_node = all[usize::try_from(leader).unwrap() - 1];
    let auth = bearer(leader_node, "admin", ADMIN_PASSWORD);
    sql_ok(leader_node, &auth, "CREATE NAMESPACE app", &[]);
    let ddl = format!("CREATE TOPIC {TOPIC} WITH (PARTITIONS = {PARTITIONS})");
    sql_ok(leader_node, &auth, &ddl, &[]);
    // The catalog record reached every member: each one knows the topic.
    caught_up(&all);
    for node in &all {
        let auth = bearer(node, "admin", ADMIN_PASSWORD);
        sql_ok(node, &auth, &format!("DESCRIBE {TOPIC}"), &[]);
    }

    let members: Vec<_> = all
        .iter()
        .map(|n| (n.quic, n.data_dir.join("tls/cert.pem")))
        .collect();
    let members = Arc::new(Mutex::new(members));
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let writers: Vec<_> = (1..=PRODUCERS)
        .map(|producer| runtime.spawn(write_until_stopped(producer, members.clone(), stop.clone())))
        .collect();

    let mut kills = Vec::new();
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(1500));
        let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
        let (leader, term) = agreed_leader(&all);
        let at = usize::try_from(leader).unwrap() - 1;
        nodes[at].take().unwrap().stop_with(libc::SIGKILL);
        let killed_at = Instant::now();
        let survivors: Vec<&StrandServer> = nodes.iter().flatten().collect();
        let (successor, later) = agreed_leader(&survivors);
        assert!(
            successor != leader && later > term,
            "{successor}@{later} after {leader}@{term}"
        );
        let failover = killed_at.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        // A restarted member keeps its certificate (same data directory) and address.
        nodes[at] = Some(start(at + 1));
        kills.push((leader, successor, failover));
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let acks: Vec<Acks> = writers
        .into_iter()
        .map(|w| runtime.block_on(w).unwrap())
        .collect();
    let acknowledged: usize = acks.iter().map(BTreeMap::len).sum();
    assert!(acknowledged > 0, "no write was acknowledged at all");

    let all: Vec<&StrandServer> = nodes.iter().flatten().collect();
    caught_up(&all);
    let logs: Vec<_> = all.iter().map(|n| runtime.block_on(read_all(n))).collect();
    for (i, log) in logs.iter().enumerate().skip(1) {
        assert_eq!(
            log,
            &logs[0],
            "member {} holds other records than member 1",
            i + 1
        );
    }
    let mut stored: BTreeMap<&str, Vec<(u32, u64)>> = BTreeMap::new();
    for (partition, records) in &logs[0] {
        let seqs: Vec<u64> = records.iter().map(|r| r.0).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "_seqs increase per partition"
        );
        for (seq, value) in records {
            stored.entry(value).or_default().push((*partition, *seq));
        }
    }
    for producer_acks in &acks {
        for (value, at) in producer_acks {
            assert_eq!(
                stored.get(value.as_str()),
                Some(&vec![*at]),
                "acknowledged {value} must be stored once, where its ack said"
            );
        }
    }
    // A resent batch is stored once however often it was sent (idempotent producers).
    for (value, places) in &stored {
        assert_eq!(places.len(), 1, "{value} is stored {} times", places.len());
    }
    // Nothing was stored that was never sent: every value is some producer's batch.
    let sent: BTreeSet<&str> = stored.keys().copied().collect();
    assert!(sent.iter().all(|v| v.starts_with('p') && v.contains("-b")));
    eprintln!("acknowledged {acknowledged} writes across {KILLS} leader kills: {kills:?}");
}
