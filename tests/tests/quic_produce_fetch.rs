//! Topics over real QUIC: per-partition order, fetch from earliest / after a `_seq` / latest,
//! a long-polling fetch woken by a produce, an idempotent retry written once (also after a
//! restart), and grants: a user may produce to or fetch from a topic only when granted.
//!
//! The long poll's wake is bounded in time (issue 16: it used to wait up to 10 s for the
//! answer, so a server that polled for new records every few seconds passed); see
//! [`WAKE_BOUND`].

use std::path::Path;
use std::time::{Duration, Instant};

use strand_tests::{bearer, sql_ok, ServerOptions, StrandServer};
use strand_wire::quic::client::Client;
use strand_wire::quic::{
    codes, BatchSequence, Fetch, Frame, Idempotence, Message, PartitionIndex, Partitioning,
    ProduceAck, ProduceRecord, ProduceTopic, ProducerId, ReadFrom, Records, Seq,
};

/// How soon a waiting long-poll fetch must be answered after the produce is sent. A server
/// woken by the commit answers within milliseconds (tens under load; the bound leaves a slow,
/// busy 2-core CI machine a wide margin). A server that polls instead answers at its next poll:
/// one polling every `P` >= 2 s misses this bound on each wake with probability >= 1/2 (the
/// produce falls at a random point of its period; at a fixed point, e.g. a timer started with
/// the fetch, it misses every time), so it survives the [`WAKE_PAUSES`] wakes with
/// probability at most 2^-8.
const WAKE_BOUND: Duration = Duration::from_secs(1);
/// How long each fetch waits before its produce (ms): uneven, so the produces fall at
/// different phases of any polling period.
const WAKE_PAUSES: [u64; 8] = [237, 311, 209, 431, 249, 363, 271, 293];

fn produce(
    topic: &str,
    partition: u32,
    values: &[&str],
    idempotence: Option<(u64, u64)>,
) -> Message {
    Message::ProduceTopic(ProduceTopic {
        topic: topic.to_string(),
        partitioning: Partitioning::Explicit(PartitionIndex(partition)),
        idempotence: idempotence.map(|(producer, batch)| Idempotence {
            producer: ProducerId(producer),
            batch: BatchSequence(batch),
        }),
        records: values
            .iter()
            .map(|v| ProduceRecord {
                key: Default::default(),
                value: v.as_bytes().to_vec().into(),
            })
            .collect(),
    })
}

fn fetch(topic: &str, partition: u32, from: ReadFrom, wait_ms: u32) -> Message {
    Message::Fetch(Fetch {
        topic: topic.to_string(),
        partition: PartitionIndex(partition),
        from,
        records_max: 100,
        bytes_max: 1 << 20,
        wait_ms,
    })
}

fn ack(frames: Vec<Frame>) -> ProduceAck {
    match frames.as_slice() {
        [Frame {
            message: Message::ProduceAck(ack),
            ..
        }] => *ack,
        other => panic!("expected one produce_ack, got {other:?}"),
    }
}

fn records(frames: Vec<Frame>) -> Records {
    match frames.as_slice() {
        [Frame {
            message: Message::FetchResponse(records),
            ..
        }] => records.clone(),
        other => panic!("expected one fetch_response, got {other:?}"),
    }
}

fn error_code(frames: &[Frame]) -> &str {
    match frames {
        [Frame {
            message: Message::Error(error),
            ..
        }] => &error.code,
        other => panic!("expected one error frame, got {other:?}"),
    }
}

fn values(records: &Records) -> Vec<String> {
    records
        .records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect()
}

async fn connect(server: &StrandServer, ca: &Path, user: &str, password: &str) -> Client {
    Client::connect_password(server.quic, ca, user, password)
        .await
        .expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_fetch_over_quic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions::with_admin_password("pw");
    let server = StrandServer::start(&dir.path().join("data"), &options);
    let admin_http = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin_http,
        "CREATE NAMESPACE app;
         CREATE TOPIC app.events WITH (PARTITIONS = 2);
         CREATE USER 'carol' WITH PASSWORD 'carol-pw' ROLE user;
         CREATE USER 'dave' WITH PASSWORD 'dave-pw' ROLE user;
         GRANT INSERT, SELECT ON app.events TO 'carol'",
        &[],
    );
    let ca = server.data_dir.join("tls/cert.pem");
    let admin = connect(&server, &ca, "admin", "pw").await;

    // Order within a partition; fetch from earliest, after a `_seq`, and limits.
    let first = ack(admin
        .request(produce("app.events", 1, &["a", "b"], None))
        .await
        .expect("ack"));
    let second = ack(admin
        .request(produce("app.events", 1, &["c"], None))
        .await
        .expect("ack"));
    assert_eq!(
        (first.partition, first.count, second.count),
        (PartitionIndex(1), 2, 1)
    );
    assert!(first.last < second.first);
    let all = records(
        admin
            .request(fetch("app.events", 1, ReadFrom::Earliest, 0))
            .await
            .expect("fetch"),
    );
    assert_eq!(values(&all), ["a", "b", "c"]);
    assert_eq!(all.high_seq, second.last);
    let seqs: Vec<Seq> = all.records.iter().map(|r| r.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing {seqs:?}"
    );
    let after = records(
        admin
            .request(fetch("app.events", 1, ReadFrom::After(first.first), 0))
            .await
            .expect("fetch"),
    );
    assert_eq!(values(&after), ["b", "c"]);
    let other = records(
        admin
            .request(fetch("app.events", 0, ReadFrom::Earliest, 0))
            .await
            .expect("fetch"),
    );
    assert!(other.records.is_empty(), "partition 0 got nothing");
    let none = admin
        .request(fetch("app.events", 5, ReadFrom::Earliest, 0))
        .await
        .expect("answer");
    assert_eq!(error_code(&none), codes::UNKNOWN_PARTITION);
    let missing = admin
        .request(fetch("app.nope", 0, ReadFrom::Earliest, 0))
        .await
        .expect("answer");
    assert_eq!(error_code(&missing), codes::UNKNOWN_TOPIC);

    // Latest with a long poll: woken by the next produce, which it returns, at once (woken by
    // the commit, not found by a poll: WAKE_BOUND).
    let reader = std::sync::Arc::new(connect(&server, &ca, "admin", "pw").await);
    let mut wakes = Vec::new();
    for (n, pause) in WAKE_PAUSES.iter().enumerate() {
        let waiting = {
            let reader = reader.clone();
            tokio::spawn(async move {
                reader
                    .request(fetch("app.events", 1, ReadFrom::Latest, 10_000))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(*pause)).await;
        let value = format!("d{n}");
        let sent = Instant::now();
        admin
            .request(produce("app.events", 1, &[&value], None))
            .await
            .expect("ack");
        let woken = records(waiting.await.expect("joined").expect("fetch"));
        wakes.push(sent.elapsed());
        assert_eq!(values(&woken), [value]);
    }
    assert!(
        wakes.iter().all(|wake| *wake < WAKE_BOUND),
        "a long poll is woken by the commit, not by polling: answers came {wakes:?} after the \
         produce (bound {WAKE_BOUND:?})"
    );

    // An idempotent retry is written once.
    let batch = Some((42, 1));
    let original = ack(admin
        .request(produce("app.events", 0, &["x", "y"], batch))
        .await
        .expect("ack"));
    let retry = ack(admin
        .request(produce("app.events", 0, &["x", "y"], batch))
        .await
        .expect("ack"));
    assert!(retry.duplicate && !original.duplicate);
    assert_eq!((retry.first, retry.last), (original.first, original.last));

    // Grants: carol may, dave may not.
    let carol = connect(&server, &ca, "carol", "carol-pw").await;
    ack(carol
        .request(produce("app.events", 0, &["from carol"], None))
        .await
        .expect("ack"));
    let dave = connect(&server, &ca, "dave", "dave-pw").await;
    let refused = dave
        .request(produce("app.events", 0, &["no"], None))
        .await
        .expect("answer");
    assert_eq!(error_code(&refused), codes::FORBIDDEN);
    let refused = dave
        .request(fetch("app.events", 0, ReadFrom::Earliest, 0))
        .await
        .expect("answer");
    assert_eq!(error_code(&refused), codes::FORBIDDEN);

    // After a restart: the retry is still answered with its original range, written once.
    drop((admin, carol, dave, reader));
    assert_eq!(server.terminate().code(), Some(0));
    let server = StrandServer::start(&dir.path().join("data"), &options);
    let admin = connect(&server, &ca, "admin", "pw").await;
    let again = ack(admin
        .request(produce("app.events", 0, &["x", "y"], batch))
        .await
        .expect("ack"));
    assert!(again.duplicate);
    assert_eq!((again.first, again.last), (original.first, original.last));
    let partition0 = records(
        admin
            .request(fetch("app.events", 0, ReadFrom::Earliest, 0))
            .await
            .expect("fetch"),
    );
    assert_eq!(values(&partition0), ["x", "y", "from carol"]);
}
