//! Join and time-window subscriptions on a cluster (issue 22): a join reads several partitions as of one
//! `_seq`, and on a cluster those partitions may be replicated by different data groups,
//! which each member applies in their own order. A join that read one table up to a `_seq`
//! while a record of another table below it had not been applied yet would never meet that
//! record (its next read starts above it). Members read joins up to their settled tick
//! (`broker/src/cluster/ticks.rs`) instead.
//!
//! Three real members. `app.items` (USER) and `app.owners` (SHARED) are made to land in two
//! different data groups (a table's partition id names its incarnation, so the test creates
//! `app.items` again until it does). Writers, through every member, insert owners and items
//! with the same ids in step, one client each, so that owner k and item k are in flight
//! together in their two groups. Join subscribers on a follower and on the
//! leader (INNER JOIN: item k is in the result once owner k is) keep a copy of the result;
//! the follower's moves to the other follower halfway and resumes by `_seq`. Checked: every
//! message's `_seq` is above the one before it, each change applies to the copy (no
//! duplicate insert, no update or delete of a row not held), and at the end every copy is
//! exactly every written item with its owner's name.
//!
//! A table in the owners' group is written in large batches meanwhile, so that group commits
//! later than the items' group: instrumented, members applied hundreds of table records below
//! a `_seq` they had already applied. This test also passed before members had replicated
//! ticks (the local tick then came out behind the records applied, by luck of timing, not by
//! design), so it is the end-to-end check of joins on a cluster; the mechanism is checked
//! by `cluster/ticks.rs`'s and `state_machine/tests/groups.rs`'s unit tests.
//!
//! The second test subscribes to a two-second time window on a follower: the row written
//! enters, then leaves about two seconds later with no write after it, because the follower's
//! clock moves with the ticks it applies (it would stay put without them).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use strand_broker::cluster::groups::GroupMap;
use strand_broker::limits::CLUSTER_DATA_GROUPS;
use strand_tests::cluster::caught_up;
use strand_tests::cluster_tables::{run_until_acknowledged, HttpMembers};
use strand_tests::local_cluster::LocalCluster;
use strand_tests::ws::{apply_change, expect_batch, row_id, row_seq, subscribe_message};
use strand_tests::ws::{Change, WsClient};
use strand_tests::{bearer, sql_ok, StrandServer, ADMIN_PASSWORD};
use strand_wire::{ChangeType, Row, ServerMessage};

const JOIN: &str = "SELECT i.id, i.qty, o.name FROM app.items i JOIN app.owners o ON o.id = i.id";
const ITEMS_DDL: &str =
    "CREATE TABLE app.items (id BIGINT PRIMARY KEY, qty BIGINT) WITH (TYPE = 'USER')";
const OWNERS_DDL: &str =
    "CREATE TABLE app.owners (id BIGINT PRIMARY KEY, name TEXT) WITH (TYPE = 'SHARED')";
const BULK_DDL: &str =
    "CREATE TABLE app.bulk (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'SHARED')";
/// Rows per statement of the bulk writer, and the bytes of each row's body.
const BULK_ROWS: i64 = 200;
const BULK_BODY_BYTES: usize = 2_000;
const WRITERS: i64 = 8;
const WRITING: Duration = Duration::from_secs(8);

/// The data group of each partition of table `table` (newest incarnation) on the member
/// whose data directory is `data_dir`. The map is the server's (`server/applied.rs`): table
/// partitions start `t/`, topic partitions `tp/`.
fn groups_of(data_dir: &Path, table: &str) -> Vec<u32> {
    let map = GroupMap::new(CLUSTER_DATA_GROUPS, vec!["t/", "tp/"]);
    let tables = find_dir(data_dir, "partitions")
        .expect("a partitions directory")
        .join("t");
    let newest = std::fs::read_dir(&tables)
        .expect("table partitions")
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let incarnation: u64 = name.strip_prefix(&format!("{table}."))?.parse().ok()?;
            Some((incarnation, name))
        })
        .max()
        .map(|(_, name)| name)
        .expect("the table has partitions");
    leaf_dirs(&tables.join(&newest))
        .iter()
        .map(|leaf| {
            let inner = leaf.strip_prefix(&tables).expect("under t/");
            map.group_of(&format!("t/{}", inner.to_string_lossy()))
        })
        .collect()
}

fn find_dir(under: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(under).ok()?.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if entry.file_name() == name {
            return Some(path);
        }
        if let Some(found) = find_dir(&path, name) {
            return Some(found);
        }
    }
    None
}

/// The directories under `dir` with no directory inside: the partitions.
fn leaf_dirs(dir: &Path) -> Vec<PathBuf> {
    let inner: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("a partition directory")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    if inner.is_empty() {
        return vec![dir.to_path_buf()];
    }
    inner.iter().flat_map(|path| leaf_dirs(path)).collect()
}

/// Creates `table` with `ddl` and writes `first_row` into it, again (dropped first, so a new
/// incarnation and partition ids) until its partitions' data groups are `wanted`; returns
/// them.
fn create_until(
    node: &StrandServer,
    auth: &str,
    table: &str,
    [ddl, first_row]: [&str; 2],
    wanted: impl Fn(&[u32]) -> bool,
) -> Vec<u32> {
    for attempt in 0..10 {
        if attempt > 0 {
            sql_ok(node, auth, &format!("DROP TABLE {table}"), &[]);
        }
        sql_ok(node, auth, ddl, &[]);
        sql_ok(node, auth, first_row, &[]);
        let groups = groups_of(&node.data_dir, table);
        if wanted(&groups) {
            return groups;
        }
    }
    panic!("{table} never landed in the data groups wanted");
}

/// A join subscriber's copy of the result and what it checked.
struct JoinCopy {
    client: WsClient,
    rows: BTreeMap<i64, Row>,
    last_seq: u64,
    messages: usize,
}

impl JoinCopy {
    /// Subscribes to `sql` on `at` (from `from`, if given): the client and the ack's `_seq`.
    fn open(at: SocketAddr, auth: &str, sql: &str, from: Option<u64>) -> (WsClient, u64) {
        let mut client = WsClient::try_connect_to(at, Some(auth)).expect("connect");
        match client.next_within(Duration::from_secs(10)) {
            Ok(ServerMessage::AuthSuccess { .. }) => {}
            other => panic!("no auth_success from {at}: {other:?}"),
        }
        client.send(&subscribe_message("join", sql, Some(10_000), from));
        match client.next_within(Duration::from_secs(20)) {
            Ok(ServerMessage::SubscriptionAck {
                snapshot_end_seq, ..
            }) => (client, snapshot_end_seq.0),
            other => panic!("subscribing at {at} from {from:?}: {other:?}"),
        }
    }

    fn subscribe(at: SocketAddr, auth: &str) -> JoinCopy {
        let (mut client, end) = JoinCopy::open(at, auth, JOIN, None);
        let (rows, control) = expect_batch(&mut client, "join");
        assert!(!control.has_more, "one snapshot batch");
        let rows = rows.into_iter().map(|row| (row_id(&row), row)).collect();
        JoinCopy {
            client,
            rows,
            last_seq: end,
            messages: 0,
        }
    }

    /// Subscribes again on `at` from the last `_seq` this copy holds.
    fn resume_on(&mut self, at: SocketAddr, auth: &str) {
        let (client, _) = JoinCopy::open(at, auth, JOIN, Some(self.last_seq));
        self.client = client;
    }

    /// Applies the changes that arrive within `budget`; returns how many.
    fn follow(&mut self, budget: Duration) -> usize {
        let deadline = Instant::now() + budget;
        let mut applied = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return applied;
            }
            let message = match self.client.next_within(left) {
                Ok(message) => message,
                Err(_) => return applied,
            };
            let ServerMessage::Change {
                change_type,
                mut rows,
                old_rows,
                ..
            } = message
            else {
                panic!("expected a join change, got {message:?}");
            };
            assert_eq!(rows.len(), 1, "one item per write here");
            let row = rows.remove(0);
            let seq = row_seq(&row);
            assert!(
                seq > self.last_seq,
                "a change at _seq {seq} after one at {}: out of order or repeated",
                self.last_seq
            );
            self.last_seq = seq;
            let change = Change {
                kind: change_type,
                row,
                old: old_rows.and_then(|mut old| old.pop()),
            };
            apply_change(&mut self.rows, &change);
            self.messages += 1;
            applied += 1;
        }
    }

    /// Follows until the copy holds every id of `expected` or `timeout` passes.
    fn converge(&mut self, expected: &BTreeMap<i64, i64>, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.rows.len() < expected.len() && Instant::now() < deadline {
            self.follow(Duration::from_millis(500));
        }
        self.follow(Duration::from_millis(500));
    }

    fn check(&self, who: &str, expected: &BTreeMap<i64, i64>) {
        let missing: Vec<&i64> = expected
            .keys()
            .filter(|id| !self.rows.contains_key(id))
            .collect();
        assert!(
            missing.is_empty(),
            "{who}: {} joined row(s) never arrived (first {:?}) of {}",
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>(),
            expected.len()
        );
        assert_eq!(self.rows.len(), expected.len(), "{who}: rows no item has");
        for (id, row) in &self.rows {
            assert_eq!(
                row["qty"].as_i64(),
                expected.get(id).copied(),
                "{who}: {row:?}"
            );
            assert_eq!(row["name"].as_str(), Some("owner"), "{who}: {row:?}");
        }
    }
}

#[test]
fn join_subscriptions_on_every_member_meet_each_row_of_two_data_groups() {
    let cluster = LocalCluster::start(3, "the cluster join test's secret");
    let (leader, _) = cluster.leader();
    let node = cluster.node(leader);
    let auth = bearer(node, "admin", ADMIN_PASSWORD);
    sql_ok(node, &auth, "CREATE NAMESPACE app", &[]);
    sql_ok(node, &auth, OWNERS_DDL, &[]);
    sql_ok(
        node,
        &auth,
        "INSERT INTO app.owners VALUES (0, 'owner')",
        &[],
    );
    let owners = groups_of(&node.data_dir, "app.owners");
    let first_item = "INSERT INTO app.items VALUES (0, 0)";
    let items = create_until(node, &auth, "app.items", [ITEMS_DDL, first_item], |items| {
        items.iter().all(|group| !owners.contains(group))
    });
    // A table in the owners' group, written in large batches while the test runs: that
    // group's entries then commit later than the items' group's, so owner k is often
    // applied after item k although its `_seq` is lower, the order a join must not trip on.
    let first_bulk = "INSERT INTO app.bulk VALUES (0, 'x')";
    create_until(node, &auth, "app.bulk", [BULK_DDL, first_bulk], |bulk| {
        bulk == owners
    });
    eprintln!("items in data group(s) {items:?}, owners and bulk in {owners:?}");
    caught_up(&cluster.live());

    let followers: Vec<usize> = (0..3).filter(|at| *at != leader).collect();
    let http = |at: usize| cluster.node(at).http;
    let mut on_follower = JoinCopy::subscribe(http(followers[0]), &auth);
    let mut on_leader = JoinCopy::subscribe(http(leader), &auth);

    let members: HttpMembers = Arc::new(Mutex::new((0..3).map(http).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    // Owners and items are written by separate clients in step, so owner k and item k are
    // proposed at about the same moment, to two groups, in either order.
    let statements = [
        "INSERT INTO app.owners VALUES ($1, 'owner')",
        "INSERT INTO app.items VALUES ($1, $1)",
    ];
    let writers: Vec<_> = (0..WRITERS)
        .flat_map(|writer| {
            let pace = Arc::new(Barrier::new(2));
            statements.map(|statement| (writer, statement, pace.clone()))
        })
        .map(|(writer, statement, pace)| {
            let (members, stop, auth) = (members.clone(), stop.clone(), auth.clone());
            std::thread::spawn(move || {
                let mut written = BTreeMap::new();
                let mut id = 1 + writer;
                loop {
                    // Both clients of the pair start id k together; both see one `stop`.
                    pace.wait();
                    let done = stop.load(Ordering::Relaxed);
                    pace.wait();
                    if done {
                        return (statement, written);
                    }
                    run_until_acknowledged(&members, &auth, statement, id);
                    written.insert(id, id);
                    id += WRITERS;
                }
            })
        })
        .collect();

    let bulk = {
        let (members, stop, auth) = (members.clone(), stop.clone(), auth.clone());
        std::thread::spawn(move || {
            let body = "b".repeat(BULK_BODY_BYTES);
            let mut next = 1i64;
            while !stop.load(Ordering::Relaxed) {
                let values: Vec<String> = (next..next + BULK_ROWS)
                    .map(|id| format!("({id}, '{body}')"))
                    .collect();
                let statement = format!("INSERT INTO app.bulk VALUES {}", values.join(", "));
                run_until_acknowledged(&members, &auth, &statement, 0);
                next += BULK_ROWS;
            }
        })
    };

    let started = Instant::now();
    let mut resumed = false;
    while started.elapsed() < WRITING {
        on_follower.follow(Duration::from_millis(200));
        on_leader.follow(Duration::from_millis(200));
        if !resumed && started.elapsed() > WRITING / 2 {
            on_follower.resume_on(http(followers[1]), &auth);
            resumed = true;
        }
    }
    stop.store(true, Ordering::Relaxed);
    bulk.join().expect("the bulk writer");
    let (mut owners_written, mut items_written) = (BTreeMap::new(), BTreeMap::new());
    for writer in writers {
        let (statement, written) = writer.join().expect("a writer");
        match statement.contains("owners") {
            true => owners_written.extend(written),
            false => items_written.extend(written),
        }
    }
    // The join: every item whose owner was written too (and item 0 with owner 0); the pairs
    // stop together, so that is every item written.
    let mut expected: BTreeMap<i64, i64> = items_written
        .into_iter()
        .filter(|(id, _)| owners_written.contains_key(id))
        .collect();
    expected.insert(0, 0);
    assert!(expected.len() > 20, "too few writes: {}", expected.len());

    on_follower.converge(&expected, Duration::from_secs(30));
    on_leader.converge(&expected, Duration::from_secs(30));
    on_follower.check("the follower's subscriber", &expected);
    on_leader.check("the leader's subscriber", &expected);
    eprintln!(
        "{} items joined; {} messages on the follower (resumed once), {} on the leader",
        expected.len(),
        on_follower.messages,
        on_leader.messages
    );
}

/// A time-window subscription on a follower moves with the member's settled tick: a row
/// enters when written and leaves once it is older than the window, with no write after it
/// (only the data groups' ticks move the member's clock on).
#[test]
fn a_time_window_on_a_follower_lets_rows_leave_as_time_passes() {
    let cluster = LocalCluster::start(3, "the cluster time window test's secret");
    let (leader, _) = cluster.leader();
    let node = cluster.node(leader);
    let auth = bearer(node, "admin", ADMIN_PASSWORD);
    sql_ok(node, &auth, "CREATE NAMESPACE app", &[]);
    let ddl = "CREATE TABLE app.events (id BIGINT PRIMARY KEY, at TIMESTAMP) \
               WITH (TYPE = 'SHARED')";
    sql_ok(node, &auth, ddl, &[]);
    caught_up(&cluster.live());
    let follower = (0..3).find(|at| *at != leader).expect("a follower");
    let window = "SELECT id FROM app.events WHERE at > now() - INTERVAL '2 seconds'";
    let (mut client, _) = JoinCopy::open(cluster.node(follower).http, &auth, window, None);
    let (rows, _) = expect_batch(&mut client, "join");
    assert!(rows.is_empty(), "{rows:?}");
    let written = Instant::now();
    sql_ok(node, &auth, "INSERT INTO app.events VALUES (1, now())", &[]);
    let entered = client.next_within(Duration::from_secs(10));
    assert!(
        matches!(&entered, Ok(ServerMessage::Change { change_type, .. }) if *change_type == ChangeType::Insert),
        "the row enters: {entered:?}"
    );
    let left = client.next_within(Duration::from_secs(15));
    let after = written.elapsed();
    assert!(
        matches!(&left, Ok(ServerMessage::Change { change_type, .. }) if *change_type == ChangeType::Delete),
        "the row leaves: {left:?}"
    );
    assert!(
        after >= Duration::from_secs(2),
        "left after {after:?}, inside its window"
    );
    eprintln!("the row left the window {after:?} after it was written");
}
