//! The crash-and-fault loop: the real server is SIGKILLed again and again over one data
//! directory while every kind of client works at once: HTTP writers INSERT rows, QUIC
//! producers write to a topic, a WebSocket subscriber follows the table and a consumer group
//! member reads the topic and commits. Each cycle starts the server (one start in five is
//! killed again at once, right after its ready line), checks everything, runs the clients for a
//! random short time and kills the server. After each restart:
//! - every row whose INSERT was answered 200 is there once, with its exact contents, and no
//!   row is there that was never sent (`http`);
//! - every message whose produce was acknowledged is in the topic exactly once, at the
//!   acknowledged partition and `_seq`, and nothing is there that was never sent (`quic`);
//! - the subscriber resumes from the last `_seq` it received and its copy, built from one
//!   snapshot and then changes only (each checked: no duplicate, no out-of-order `_seq`, no
//!   insert of a row held, ...), equals the table (no gap) (`subscriber`);
//! - the consumer group resumes each partition after its last acknowledged commit, without
//!   skipping a message it was not given, and nothing it was given is gone after the crash;
//!   at the end a member reads every acknowledged message (`quic::GroupLedger`).
//!
//! The server runs with its default fsync policy (`always`): the default must be the durable
//! one.
//!
//! `STRAND_CRASH_CYCLES` sets the number of kills (default 20); `STRAND_CRASH_SEED` replays a
//! seed's kill moments (thread timing still varies). Long run:
//! `STRAND_CRASH_CYCLES=100 cargo test -p strand-tests --release --test crash_loop_loses_no_acknowledged_write -- --nocapture`

#[path = "crash_loop/http.rs"]
mod http;
#[path = "crash_loop/quic.rs"]
mod quic;
#[path = "crash_loop/subscriber.rs"]
mod subscriber;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use strand_tests::{bearer, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};
use subscriber::Subscriber;

const DEFAULT_CYCLES: u64 = 20;
/// How long the clients run before the kill: a random moment in this range (ms), so kills
/// land at every phase of the writes (mid-request, mid-fsync, mid-commit).
const RUN_MS: (u64, u64) = (200, 1_200);

/// One restart in this many is killed again right after its ready line, before any check.
const KILL_AT_START_ONE_IN: u64 = 5;
/// When the subscriber leaves a cycle early, it does so after at most this many changes.
const LEAVE_AFTER_MAX: u64 = 300;

/// A small xorshift generator; the seed is printed so that a failing run can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {text:?}")),
    )
}

/// Everything the clients were acknowledged, and what the subscriber and the group hold.
#[derive(Default)]
struct World {
    rows: http::Ledger,
    messages: quic::ProduceLedger,
    group: quic::GroupLedger,
    subscriber: Subscriber,
    /// Acknowledged writes (rows and messages) checked after a restart, summed over cycles.
    checks: u64,
    /// Servers killed right after their ready line.
    kills_at_start: u64,
}

#[test]
fn crash_loop_loses_no_acknowledged_write() {
    let cycles = env_number("STRAND_CRASH_CYCLES").unwrap_or(DEFAULT_CYCLES);
    let seed = env_number("STRAND_CRASH_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64
    }) | 1;
    eprintln!("crash loop: {cycles} cycles, seed {seed} (STRAND_CRASH_SEED replays it)");
    let mut random = Random(seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions::with_admin_password(ADMIN_PASSWORD);
    let started = Instant::now();
    let mut world = World::default();
    for cycle in 0..=cycles {
        let context = format!("seed {seed}, cycle {cycle}");
        if cycle > 0 && random.below(KILL_AT_START_ONE_IN) == 0 {
            // Killed again as soon as it is up: whatever a start does (recovery, ...) must
            // survive a crash too.
            let server = StrandServer::start(dir.path(), &options);
            assert_eq!(
                server.stop_with(libc::SIGKILL).signal(),
                Some(libc::SIGKILL)
            );
            world.kills_at_start += 1;
        }
        let server = StrandServer::start(dir.path(), &options);
        let admin = bearer(&server, "admin", ADMIN_PASSWORD);
        if cycle == 0 {
            let ddl = format!("CREATE NAMESPACE app; {}; {}", http::DDL, quic::DDL);
            sql_ok(&server, &admin, &ddl, &[]);
        }
        let client = Arc::new(runtime.block_on(server.quic_client("admin", ADMIN_PASSWORD)));
        let (stored, contents) =
            check_after_restart(&server, &admin, &client, &runtime, &mut world, &context);
        let live = world
            .subscriber
            .catch_up(&server, &admin, &stored, &context);
        if cycle == cycles {
            runtime.block_on(world.group.drain(
                client.clone(),
                &world.messages,
                &contents,
                &context,
            ));
            drop(live);
            assert_eq!(server.terminate().code(), Some(0), "{context}");
            break;
        }

        let stop = Arc::new(AtomicBool::new(false));
        let consumer = runtime.spawn(quic::consume_until_stopped(client.clone(), stop.clone()));
        let producers: Vec<_> = (0..quic::PRODUCERS)
            .map(|producer| {
                let task =
                    quic::produce_until_stopped(client.clone(), producer, cycle, stop.clone());
                runtime.spawn(task)
            })
            .collect();
        // One cycle in three the subscriber leaves early, after a random number of changes.
        let leave_after = (random.below(3) == 0).then(|| random.below(LEAVE_AFTER_MAX));
        let follower =
            std::mem::take(&mut world.subscriber).follow(live, leave_after, context.clone());
        let writers = http::start_writers(server.http, &admin, cycle, &stop);
        std::thread::sleep(Duration::from_millis(
            RUN_MS.0 + random.below(RUN_MS.1 - RUN_MS.0),
        ));
        let status = server.stop_with(libc::SIGKILL);
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{context}: {status:?}"
        );
        stop.store(true, Ordering::Relaxed);
        // Requests in flight on the dead connection fail now instead of at its idle timeout.
        client.connection().close(0u32.into(), b"server killed");

        world.rows.absorb(http::join_writers(writers));
        for producer in producers {
            world
                .messages
                .absorb(runtime.block_on(producer).expect("producer task"));
        }
        let consumption = runtime.block_on(consumer).expect("consumer task");
        world.group.absorb(consumption, &contents, &context);
        world.subscriber = follower.join().expect("subscriber thread");
        assert!(
            world.rows.unexpected.is_empty(),
            "{context}: {:?}",
            world.rows.unexpected
        );
        assert!(
            world.messages.unexpected.is_empty(),
            "{context}: {:?}",
            world.messages.unexpected
        );
    }

    let elapsed = started.elapsed();
    eprintln!(
        "crash loop: {cycles} cycles ({} more kills right after a start) in {:.1} s; acknowledged: {} rows ({} sent), {} messages \
         ({} sent); {} acknowledged writes checked over all restarts, 0 lost; subscriber: {} \
         changes ({} replayed by {} resumes); group: {} messages delivered, {} commits, {} \
         resume points checked",
        world.kills_at_start,
        elapsed.as_secs_f64(),
        world.rows.acknowledged.len(),
        world.rows.sent.len(),
        world.messages.acknowledged.len(),
        world.messages.sent.len(),
        world.checks,
        world.subscriber.changes,
        world.subscriber.replayed,
        world.subscriber.resumes,
        world.group.delivered.len(),
        world.group.commits,
        world.group.resumes_checked,
    );
    // The run proved something only if every kind of client got through.
    let floor = cycles.min(20);
    assert!(
        world.rows.acknowledged.len() as u64 >= floor,
        "seed {seed}: too few rows acknowledged"
    );
    assert!(
        world.messages.acknowledged.len() as u64 >= floor,
        "seed {seed}: too few messages acknowledged"
    );
    assert!(
        world.subscriber.changes > 0 && world.subscriber.resumes > 0,
        "seed {seed}: the subscriber never followed"
    );
    assert!(
        world.group.commits > 0,
        "seed {seed}: the group never committed"
    );
}

/// The checks after a restart, before any client writes: rows and messages (the subscriber
/// and the group are checked by their own calls). Returns the table's rows and the topic's
/// contents.
fn check_after_restart(
    server: &StrandServer,
    admin: &str,
    client: &strand_wire::quic::client::Client,
    runtime: &tokio::runtime::Runtime,
    world: &mut World,
    context: &str,
) -> (BTreeMap<i64, strand_wire::Row>, quic::Contents) {
    let stored = http::stored_rows(server, admin);
    let ids: BTreeSet<i64> = stored.keys().copied().collect();
    let lost: Vec<_> = world.rows.acknowledged.difference(&ids).collect();
    assert!(
        lost.is_empty(),
        "{context}: acknowledged rows lost: {lost:?}"
    );
    let phantom: Vec<_> = ids.difference(&world.rows.sent).collect();
    assert!(
        phantom.is_empty(),
        "{context}: rows never sent: {phantom:?}"
    );

    let contents = runtime.block_on(quic::topic_contents(client));
    world.messages.verify(&contents, context);
    world.group.verify_durable(&contents, context);
    world.checks += (world.rows.acknowledged.len() + world.messages.acknowledged.len()) as u64;
    (stored, contents)
}
