//! `strand consume --group G --count N` commits exactly what it printed: with 6 messages
//! waiting, a run with `--count 3` prints 3, the next run of the group prints the other 3, and
//! a third prints none.
//!
//! Regression (issue 16, defect 3). The bug: the member committed the last `_seq` of every
//! record it had fetched, not of every record it had printed, so a run that stopped at
//! `--count 3` with 6 records fetched committed all 6. Impact: the group lost messages it never
//! showed anyone (the next run printed 0 of the 3 left). The fix: the consumer reads at most
//! the records still to print, so what it fetches, prints and commits is the same set (the
//! offset committed per partition is the `_seq` of the last message printed from it).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use serde_json::Value;
use strand_tests::{bearer, sql_ok, strand_binary, ServerOptions, StrandServer};
use strand_wire::quic::{Message, PartitionIndex, Partitioning, ProduceRecord, ProduceTopic};

/// One run of `strand consume --group workers --count 3`, ending after 2 s without a message;
/// the `(partition, _seq)` of each line it printed.
fn consume_three(server: &StrandServer) -> Vec<(u64, u64)> {
    let ca = server.data_dir.join("tls/cert.pem");
    let mut command = Command::new(strand_binary());
    command
        .args(["consume", "--server", &server.quic.to_string()])
        .args(["--user", "admin", "--password", "pw", "--ca-cert"])
        .arg(&ca)
        .args(["--topic", "app.jobs", "--group", "workers"])
        .args(["--count", "3", "--timeout-ms", "2000"])
        .stdin(Stdio::null());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("STRAND_")) {
        command.env_remove(name);
    }
    let output = command.output().expect("run strand consume");
    assert!(
        output.status.success(),
        "consume failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let json: Value = serde_json::from_str(line).expect("stdout line is JSON");
            let partition = json["partition"].as_u64().expect("partition");
            let seq = json["_seq"].as_str().expect("_seq").parse().expect("_seq");
            (partition, seq)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counted_run_commits_only_the_messages_it_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(
        &dir.path().join("data"),
        &ServerOptions::with_admin_password("pw"),
    );
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app; CREATE TOPIC app.jobs WITH (PARTITIONS = 2)",
        &[],
    );
    // 4 messages in partition 0 and 2 in partition 1: the first run stops inside partition 0,
    // with partition 1 fetched (or fetchable) but not printed.
    let client = server.quic_client("admin", "pw").await;
    let mut produced = BTreeSet::new();
    for (partition, count) in [(0u32, 4), (1, 2)] {
        let request = ProduceTopic {
            topic: "app.jobs".into(),
            partitioning: Partitioning::Explicit(PartitionIndex(partition)),
            idempotence: None,
            records: (0..count)
                .map(|n| ProduceRecord {
                    key: Default::default(),
                    value: format!("p{partition}-{n}").into_bytes().into(),
                })
                .collect(),
        };
        let frames = client
            .request(Message::ProduceTopic(request))
            .await
            .expect("produce");
        let Some(Message::ProduceAck(ack)) = frames.into_iter().next().map(|f| f.message) else {
            panic!("produce_ack expected");
        };
        assert_eq!(ack.count, count);
        let fetched = strand_wire::quic::Fetch {
            topic: "app.jobs".into(),
            partition: PartitionIndex(partition),
            from: strand_wire::quic::ReadFrom::Earliest,
            records_max: 100,
            bytes_max: 1 << 20,
            wait_ms: 0,
        };
        let frames = client
            .request(Message::Fetch(fetched))
            .await
            .expect("fetch");
        let Some(Message::FetchResponse(records)) = frames.into_iter().next().map(|f| f.message)
        else {
            panic!("fetch_response expected");
        };
        for record in &records.records {
            produced.insert((u64::from(partition), record.seq.0));
        }
    }
    client.close().await;
    assert_eq!(produced.len(), 6);

    let first = consume_three(&server);
    assert_eq!(first.len(), 3, "the first run prints 3: {first:?}");
    let second = consume_three(&server);
    assert_eq!(
        second.len(),
        3,
        "the second run prints the 3 the first did not (it printed {first:?})"
    );
    let third = consume_three(&server);
    assert!(third.is_empty(), "nothing is left: {third:?}");

    let printed: BTreeSet<(u64, u64)> = first.iter().chain(&second).copied().collect();
    assert_eq!(
        printed.len(),
        6,
        "no message printed twice: {first:?} {second:?}"
    );
    assert_eq!(printed, produced, "every message printed once");
}
