//! Waiting for a commit without a thread: [`strand_log::AppendTicket::committed`] is a future
//! that resolves once the batch's commit round completed. The log has no async runtime, so the
//! futures here are polled by a small `block_on` of this file: the polling thread parks until a
//! waker unparks it, under an overall deadline, so a waiter nobody wakes fails the test instead
//! of hanging it.
//!
//! What it shows, and why it matters (an HTTP shard awaits its INSERTs' commits this way):
//! - rounds wanted only by futures are led by the queue's `strand-log-commit` thread, never by
//!   the polling thread, and batches awaited together share one fdatasync;
//! - a future dropped before it resolved leaves its batch queued: it still commits, without
//!   anyone polling, and the partition goes on working;
//! - futures and blocking waiters (`AppendTicket::wait`) mix: whichever leads a round, the
//!   others of it are woken, and a future that starts waiting while a blocking appender leads
//!   is woken when that round completes and its own round is led;
//! - a round that hits a full disk tells each future of it `StorageFull` (also with a blocking
//!   waiter in the same round), and the partition stays writable.
//!
//! The fdatasyncs go through a wrapper of `FaultyStorage` that records which thread synced and
//! can hold a sync until the test releases it, so "while a round is under way" is a fact here,
//! not a sleep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "async_commit_wait/harness.rs"]
mod harness;

use harness::*;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Waker};

use strand_log::{AppendTicket, Committed, LogError, NewRecord, Seq, SeqRange};

// ---------------------------------------------------------------------------------------------
// 1. Many futures from one thread

/// 64 batches submitted from this thread, awaited together: each future resolves with its
/// batch's range, everything is readable in `_seq` order, the round was led (and its
/// fdatasync done) by the commit thread while this thread only polled, and the 64 batches
/// shared one fdatasync.
#[test]
fn batches_awaited_together_share_a_sync_led_by_the_commit_thread() {
    const BATCHES: usize = 64;
    let mut fixture = Fixture::open();
    fixture.faults.sync_delay_ms.store(50, Ordering::SeqCst);
    let mut ranges = Vec::new();
    let mut futures: Vec<Committed> = Vec::new();
    for b in 0..BATCHES {
        let (ticket, _) = fixture.submit(&format!("b{b}"), 1 + b % 3);
        ranges.push(ticket.range());
        futures.push(ticket.committed());
    }
    assert!(
        ranges.windows(2).all(|w| w[0].last < w[1].first),
        "batches submitted in order get increasing, disjoint ranges"
    );
    // Nothing is visible before its round: only the warm-up record.
    assert_eq!(fixture.read_all().len(), 1);

    let awaited = await_all(futures);
    let results: Vec<SeqRange> = awaited.outputs.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        results, ranges,
        "each future resolves with its batch's range"
    );
    assert!(
        awaited.first_poll_pending[0],
        "the first poll led the round on the polling thread instead of leaving it pending"
    );
    fixture.assert_readable();

    let syncs = fixture.faults.file_syncs.load(Ordering::SeqCst);
    assert!(
        syncs >= 1,
        "{BATCHES} batches under fsync=always were committed without an fdatasync"
    );
    assert!(
        syncs <= 3,
        "{BATCHES} batches awaited together took {syncs} fdatasyncs; expected them shared"
    );
    assert_all_on_commit_thread("fdatasyncs", &fixture.gate.syncers());
    assert_all_on_commit_thread("wakes", &awaited.waker.woken_by());
    fixture.assert_still_writable();
}

/// Batches submitted while the commit thread is in a round's fdatasync go to the next
/// round, which the commit thread leads too (its own round's completion does not end its
/// work while futures wait); waves polled only after the thread went idle start it again.
#[test]
fn the_commit_thread_leads_round_after_round_while_futures_wait() {
    let mut fixture = Fixture::open();
    let unparker = Unparker::new();
    let waker = Waker::from(unparker.clone());
    let mut cx = Context::from_waker(&waker);

    // Wave 1 starts a round and is held in its fdatasync.
    fixture.gate.arm();
    let (ticket, _) = fixture.submit("wave1", 2);
    let mut wave1 = vec![ticket.committed()];
    assert!(Pin::new(&mut wave1[0]).poll(&mut cx).is_pending());
    assert_eq!(fixture.gate.wait_entered(1).as_deref(), Some(COMMIT_THREAD));

    // Wave 2 is submitted and polled while that round syncs: it cannot be in it.
    let mut wave2 = Vec::new();
    for b in 0..8 {
        let (ticket, _) = fixture.submit(&format!("wave2-{b}"), 1);
        let mut future = ticket.committed();
        assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
        wave2.push(future);
    }
    assert_eq!(
        fixture.read_all().len(),
        1,
        "nothing published before the sync"
    );
    fixture.gate.release();
    let mut all = wave1;
    all.extend(wave2);
    let first = await_all_with(all, &unparker, true);
    for result in &first.outputs {
        result.as_ref().unwrap();
    }
    fixture.assert_readable();
    let syncers = fixture.gate.syncers();
    assert_eq!(
        syncers.len(),
        2,
        "wave 1's round, then one round for all of wave 2: {:?}",
        names(&syncers)
    );
    assert_all_on_commit_thread("fdatasyncs", &syncers);

    // Later waves, each after the thread went idle, each awaited on its own.
    for wave in 3..6 {
        let futures: Vec<Committed> = (0..4)
            .map(|b| fixture.submit(&format!("wave{wave}-{b}"), 1).0.committed())
            .collect();
        let awaited = await_all(futures);
        assert!(awaited.outputs.iter().all(Result::is_ok));
        assert!(awaited.first_poll_pending[0]);
    }
    assert_all_on_commit_thread("fdatasyncs", &fixture.gate.syncers());
    fixture.assert_still_writable();
}

// ---------------------------------------------------------------------------------------------
// 2. Dropped futures

/// A future dropped before it resolved, never polled: the drop does not lead the round on
/// the dropping thread (the commit thread does), and the batch becomes visible.
#[test]
fn a_future_dropped_unpolled_still_commits_its_batch() {
    let mut fixture = Fixture::open();
    fixture.gate.arm();
    let (ticket, batch) = fixture.submit("dropped", 3);
    drop(ticket.committed());
    // Had the drop led the round here, this thread would be held in the gate, not here.
    assert_eq!(fixture.gate.wait_entered(1).as_deref(), Some(COMMIT_THREAD));
    assert_eq!(fixture.read_all().len(), 1, "not published before its sync");
    fixture.gate.release();
    wait_until_visible(&fixture.partition, batch[2].0);
    fixture.assert_readable();
    fixture.assert_still_writable();
}

/// A future polled once (so its waker is queued), then dropped before its round completed;
/// and one whose round completed before it was dropped without being polled again.
#[test]
fn a_future_dropped_after_a_poll_still_commits_its_batch() {
    let mut fixture = Fixture::open();
    fixture.gate.arm();
    let (ticket, first) = fixture.submit("polled-then-dropped", 2);
    let mut future = ticket.committed();
    assert!(poll_once(&mut future).is_pending());
    assert_eq!(fixture.gate.wait_entered(1).as_deref(), Some(COMMIT_THREAD));
    drop(future);
    fixture.gate.release();
    wait_until_visible(&fixture.partition, first[1].0);

    let (ticket, second) = fixture.submit("completed-then-dropped", 1);
    let mut future = ticket.committed();
    assert!(poll_once(&mut future).is_pending());
    wait_until_visible(&fixture.partition, second[0].0);
    drop(future);

    // Several dropped in one round beside one that is awaited: the awaited one is told Ok.
    let mut dropped = Vec::new();
    for b in 0..5 {
        dropped.push(fixture.submit(&format!("dropped-{b}"), 1).0.committed());
    }
    let (ticket, kept) = fixture.submit("kept", 1);
    drop(dropped);
    assert_eq!(block_on(ticket.committed()).unwrap().first, kept[0].0);
    fixture.assert_readable();
    fixture.assert_still_writable();
}

// ---------------------------------------------------------------------------------------------
// 3. Futures and blocking waiters together

/// Spawn a thread named `name` that waits for `ticket` with the blocking `wait`.
fn wait_blocking(
    name: &str,
    ticket: AppendTicket,
) -> std::thread::JoinHandle<Result<SeqRange, LogError>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || ticket.wait())
        .unwrap()
}

/// What a future that starts waiting while a blocking waiter leads is checked against.
#[derive(Clone, Copy, PartialEq)]
enum Late {
    /// It is awaited: it must be woken with `Ok`.
    Awaited,
    /// It is dropped: its batch must still commit.
    Dropped,
}

/// A blocking waiter leads a round (held in its fdatasync); futures submitted and polled (or
/// dropped) meanwhile are in the next round. Once the blocking round completes, the
/// futures' round must still be led: the blocking waiter returns without leading it, and no
/// other appender comes. `commit_thread_started`: a future was awaited on the partition
/// before (its commit thread runs); else the queue has never had an async waiter.
fn late_futures_of_a_blocking_round(commit_thread_started: bool, late: Late) {
    let mut fixture = Fixture::open();
    if commit_thread_started {
        let (ticket, _) = fixture.submit("start-the-commit-thread", 1);
        block_on(ticket.committed()).unwrap();
        fixture.gate.clear_syncers();
    }
    fixture.gate.arm();
    let (ticket, blocking_batch) = fixture.submit("blocking", 1);
    let blocking = wait_blocking("blocking-waiter", ticket);
    assert_eq!(
        fixture.gate.wait_entered(1).as_deref(),
        Some("blocking-waiter"),
        "the blocking waiter leads its round"
    );
    let unparker = Unparker::new();
    let waker = Waker::from(unparker.clone());
    let mut futures = Vec::new();
    let mut last = Seq::ZERO;
    for b in 0..4 {
        let (ticket, batch) = fixture.submit(&format!("async-{b}"), 1);
        last = batch[0].0;
        let mut future = ticket.committed();
        match late {
            Late::Awaited => {
                let polled = Pin::new(&mut future).poll(&mut Context::from_waker(&waker));
                assert!(polled.is_pending());
                futures.push(future);
            }
            Late::Dropped => drop(future),
        }
    }
    fixture.gate.release();
    assert_eq!(blocking.join().unwrap().unwrap().first, blocking_batch[0].0);
    match late {
        Late::Awaited => {
            let awaited = await_all_with(futures, &unparker, true);
            for result in &awaited.outputs {
                result.as_ref().unwrap();
            }
        }
        Late::Dropped => wait_until_visible(&fixture.partition, last),
    }
    fixture.assert_readable();
    // Two rounds: the blocking waiter's, then the futures', not led by the polling thread.
    let syncers = fixture.gate.syncers();
    let this_thread = std::thread::current().name().map(str::to_string);
    assert_eq!(syncers.len(), 2, "{:?}", names(&syncers));
    assert_eq!(syncers[0].as_deref(), Some("blocking-waiter"));
    assert_ne!(
        syncers[1], this_thread,
        "the polling thread led the futures' round"
    );
    fixture.assert_still_writable();
}

#[test]
fn futures_that_start_waiting_while_a_blocking_waiter_leads_are_woken() {
    late_futures_of_a_blocking_round(true, Late::Awaited);
}

#[test]
fn futures_dropped_while_a_blocking_waiter_leads_still_commit() {
    late_futures_of_a_blocking_round(true, Late::Dropped);
}

/// As above, on a queue that never had an async waiter, so no commit thread runs yet when the
/// futures are first polled: the thread is started on first use, and a first use while a
/// blocking appender leads must still end with the futures' round led (by a thread started
/// then or later), not left until some other appender comes.
#[test]
fn the_first_futures_of_a_queue_are_woken_when_they_start_waiting_during_a_blocking_round() {
    late_futures_of_a_blocking_round(false, Late::Awaited);
}

#[test]
fn the_first_futures_of_a_queue_dropped_during_a_blocking_round_still_commit() {
    late_futures_of_a_blocking_round(false, Late::Dropped);
}

/// The commit thread leads a round for futures (held in its fdatasync); blocking waiters
/// submit meanwhile and wait; batches of both kinds in one round, and a blocking waiter in
/// a round with futures, all resolve with their ranges.
#[test]
fn blocking_waiters_and_futures_in_the_same_rounds_all_resolve() {
    let mut fixture = Fixture::open();
    let unparker = Unparker::new();
    let waker = Waker::from(unparker.clone());
    let mut cx = Context::from_waker(&waker);

    fixture.gate.arm();
    let (ticket, _) = fixture.submit("first-async", 1);
    let mut expected_ranges = vec![ticket.range()];
    let mut futures = vec![ticket.committed()];
    assert!(Pin::new(&mut futures[0]).poll(&mut cx).is_pending());
    assert_eq!(fixture.gate.wait_entered(1).as_deref(), Some(COMMIT_THREAD));

    // The next round: blocking waiters and futures mixed, submitted while the first syncs.
    let mut blocking = Vec::new();
    for b in 0..6 {
        let (ticket, batch) = fixture.submit(&format!("mixed-{b}"), 1 + b % 2);
        if b % 2 == 0 {
            let waiter = wait_blocking(&format!("blocking-{b}"), ticket);
            blocking.push((waiter, batch[0].0));
        } else {
            expected_ranges.push(ticket.range());
            let mut future = ticket.committed();
            assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
            futures.push(future);
        }
    }
    fixture.gate.release();
    let awaited = await_all_with(futures, &unparker, true);
    let ranges: Vec<SeqRange> = awaited.outputs.into_iter().map(Result::unwrap).collect();
    assert_eq!(ranges, expected_ranges);
    for (waiter, first) in blocking {
        assert_eq!(waiter.join().unwrap().unwrap().first, first);
    }
    fixture.assert_readable();

    // Many threads of each kind at once, no gate: everything resolves, everything is there.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let partition = fixture.partition.clone();
            std::thread::spawn(move || {
                let mut committed = Vec::new();
                for i in 0..25 {
                    let key = format!("thread{t}-{i}");
                    let ticket = partition
                        .submit(&[NewRecord::new(key.as_bytes(), b"v")])
                        .unwrap();
                    let range = if t % 2 == 0 {
                        ticket.wait().unwrap()
                    } else {
                        block_on(ticket.committed()).unwrap()
                    };
                    committed.push((range.first, key.into_bytes(), b"v".to_vec()));
                }
                committed
            })
        })
        .collect();
    for thread in threads {
        fixture.expected.extend(thread.join().unwrap());
    }
    fixture.assert_readable();
    fixture.assert_still_writable();
}

// ---------------------------------------------------------------------------------------------
// 4. A full disk

/// A round whose fdatasync reports ENOSPC: every future of it gets `StorageFull`, and so
/// does a blocking waiter in the same round (each batch takes the round's failure once);
/// nothing of it is visible; the partition is not poisoned and takes appends again.
#[test]
fn futures_of_a_round_that_hit_a_full_disk_get_storage_full() {
    let mut fixture = Fixture::open();
    fixture.faults.full_sync.store(true, Ordering::SeqCst);
    let mut futures = Vec::new();
    let mut failed = Vec::new();
    for b in 0..3 {
        let (ticket, batch) = fixture.submit(&format!("full-{b}"), 2);
        futures.push(ticket.committed());
        failed.extend(batch);
    }
    let (ticket, batch) = fixture.submit("full-blocking", 1);
    failed.extend(batch);
    // A dropped one in the same round: its share of the failure is taken on its behalf.
    let (dropped, batch) = fixture.submit("full-dropped", 1);
    failed.extend(batch);
    fixture.forget(&failed);
    drop(dropped.committed());
    let blocking = wait_blocking("blocking-waiter", ticket);
    let awaited = await_all(futures);
    for result in &awaited.outputs {
        assert!(
            is_storage_full_error(result),
            "expected StorageFull, got {result:?}"
        );
    }
    let blocking = blocking.join().unwrap();
    assert!(
        is_storage_full_error(&blocking),
        "expected StorageFull for the blocking waiter, got {blocking:?}"
    );
    assert!(
        !fixture.partition.is_poisoned(),
        "a full disk must not poison"
    );
    fixture.assert_readable();

    // Room again: futures of the next rounds are told Ok.
    fixture.faults.full_sync.store(false, Ordering::SeqCst);
    let futures: Vec<Committed> = (0..3)
        .map(|b| fixture.submit(&format!("after-{b}"), 1).0.committed())
        .collect();
    assert!(await_all(futures).outputs.iter().all(Result::is_ok));
    fixture.assert_readable();
    fixture.assert_still_writable();
}
