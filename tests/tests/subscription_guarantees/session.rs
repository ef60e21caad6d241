//! One simulated subscriber of `subscription_guarantees`: it connects, subscribes (fresh
//! snapshot or resume), applies changes to its [`View`] and checks the view against the
//! observer's history. Anything the server does that SPEC section 5 or docs/realtime.md rules
//! out fails the test with the seed, the query, the last `_seq` and the recent messages.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use strand_tests::ws::{WsClient, WsEnd, WS_RECV_TIMEOUT};
use strand_wire::{
    codes, BatchStatus, ClientMessage, SeqText, ServerMessage, SubscribeOptions, Subscription,
};

use crate::model::{diff, Applied, History, Query, Rng, View};
use crate::{lock, Shared};

const SUBSCRIPTION: &str = "s";
/// How long a check waits for the observer to catch up with the subscriber.
const OBSERVER_WAIT: Duration = Duration::from_secs(30);
/// Messages kept for a failure report.
const LOG_LEN: usize = 60;

enum Got {
    Message(ServerMessage),
    Quiet,
    SlowConsumer,
}

pub struct Session<'a> {
    pub shared: &'a Shared,
    name: String,
    query: Query,
    sql: String,
    batch_size: u32,
    pub view: View,
    client: Option<WsClient>,
    log: VecDeque<String>,
}

impl<'a> Session<'a> {
    pub fn new(shared: &'a Shared, name: String, query: Query, batch_size: u32) -> Session<'a> {
        Session {
            shared,
            name,
            sql: query.sql(),
            query,
            batch_size,
            view: View::default(),
            client: None,
            log: VecDeque::new(),
        }
    }

    pub fn fail(&self, what: &str) -> ! {
        let log: Vec<&str> = self.log.iter().map(String::as_str).collect();
        panic!(
            "{}: {what}\n  seed {} (STRAND_GUARANTEE_SEED replays it)\n  query: {}\n  \
             batch_size {}\n  last _seq received: {}\n  recent events, oldest first:\n    {}",
            self.name,
            self.shared.seed,
            self.sql,
            self.batch_size,
            self.view.last,
            log.join("\n    ")
        )
    }

    fn note(&mut self, text: String) {
        if self.log.len() == LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back(text);
    }

    /// The next message within `timeout`; a server `error` or an unexpected end fails.
    fn next(&mut self, client: &mut WsClient, timeout: Duration) -> Got {
        match client.next_within(timeout) {
            Ok(message) => {
                let mut text = message.encode();
                text.truncate(600);
                self.note(format!("got {text}"));
                match &message {
                    ServerMessage::Error { code, .. } if code == codes::SLOW_CONSUMER => {
                        Got::SlowConsumer
                    }
                    ServerMessage::Error { .. } => self.fail("the server sent an error"),
                    _ => Got::Message(message),
                }
            }
            Err(WsEnd::TimedOut) => Got::Quiet,
            Err(WsEnd::Closed(Some((_, reason)))) if reason == codes::SLOW_CONSUMER => {
                self.note("closed: slow_consumer".into());
                Got::SlowConsumer
            }
            Err(end) => self.fail(&format!("the connection ended: {end:?}")),
        }
    }

    /// The next message of a protocol step (ack, batch): `None` if dropped as slow consumer.
    fn expect(&mut self, client: &mut WsClient, what: &str) -> Option<ServerMessage> {
        match self.next(client, WS_RECV_TIMEOUT) {
            Got::Message(message) => Some(message),
            Got::Quiet => self.fail(&format!("no {what} within {WS_RECV_TIMEOUT:?}")),
            Got::SlowConsumer => None,
        }
    }

    /// A new authenticated connection with the subscription sent.
    fn subscribe(&mut self, from: Option<u64>) -> WsClient {
        self.note(format!("connect and subscribe, from_seq_id {from:?}"));
        let mut client = WsClient::try_connect(&self.shared.server, Some(&self.shared.admin))
            .unwrap_or_else(|e| self.fail(&format!("WebSocket upgrade failed: {e}")));
        match self.expect(&mut client, "auth_success") {
            Some(ServerMessage::AuthSuccess { .. }) => {}
            _ => self.fail("expected auth_success"),
        }
        client.send(&ClientMessage::Subscribe {
            subscription: Subscription {
                id: SUBSCRIPTION.into(),
                sql: self.sql.clone(),
                options: SubscribeOptions {
                    batch_size: Some(self.batch_size),
                    from_seq_id: from.map(SeqText),
                },
            },
        });
        client
    }

    /// `subscription_ack` with the query's schema; its `snapshot_end_seq`.
    fn ack(&mut self, client: &mut WsClient) -> Option<u64> {
        let message = self.expect(client, "subscription_ack")?;
        let ServerMessage::SubscriptionAck {
            subscription_id,
            schema,
            snapshot_end_seq,
        } = message
        else {
            self.fail("expected subscription_ack")
        };
        let names: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
        if subscription_id != SUBSCRIPTION || names != self.query.schema() {
            self.fail(&format!("ack schema should be {:?}", self.query.schema()));
        }
        Some(snapshot_end_seq.0)
    }

    /// Subscribe without `from_seq_id` and load the snapshot, pausing now and then between
    /// batches while the writers run. False if dropped as slow consumer.
    fn snapshot(&mut self, rng: &mut Rng) -> bool {
        self.client = None;
        self.view = View::default();
        let mut client = self.subscribe(None);
        let Some(boundary) = self.ack(&mut client) else {
            return false;
        };
        for batch_num in 0.. {
            let Some(message) = self.expect(&mut client, "initial_data_batch") else {
                return false;
            };
            let ServerMessage::InitialDataBatch {
                subscription_id,
                rows,
                batch_control: control,
            } = message
            else {
                self.fail(&format!("expected initial_data_batch {batch_num}"))
            };
            let ready = control.status == BatchStatus::Ready;
            if subscription_id != SUBSCRIPTION
                || control.batch_num != batch_num
                || control.snapshot_end_seq.0 != boundary
                || control.has_more == ready
                || rows.len() > self.batch_size as usize
            {
                self.fail(&format!(
                    "bad initial_data_batch {batch_num} (boundary {boundary})"
                ));
            }
            if let Err(e) = self.view.load(&rows, boundary) {
                self.fail(&e);
            }
            self.shared.stats.batches.fetch_add(1, Relaxed);
            if ready {
                break;
            }
            if rng.percent(30) {
                std::thread::sleep(Duration::from_millis(rng.below(30)));
            }
            if rng.percent(4) {
                self.note("abandon the snapshot: disconnect, subscribe again".into());
                drop(client);
                return self.snapshot(rng);
            }
            client.send(&ClientMessage::NextBatch {
                subscription_id: SUBSCRIPTION.into(),
            });
        }
        self.view.last = boundary;
        self.client = Some(client);
        true
    }

    /// Subscribe with `from_seq_id` = the last `_seq` received. False if dropped.
    fn resume(&mut self) -> bool {
        self.client = None;
        let from = self.view.last;
        let mut client = self.subscribe(Some(from));
        match self.ack(&mut client) {
            None => return false,
            Some(end) if end != from => self.fail(&format!(
                "resume ack's snapshot_end_seq {end} is not from_seq_id"
            )),
            Some(_) => {}
        }
        self.client = Some(client);
        true
    }

    pub fn connect_fresh(&mut self, rng: &mut Rng) {
        while !self.snapshot(rng) {
            self.shared.stats.slow_consumers.fetch_add(1, Relaxed);
        }
        self.shared.stats.snapshots.fetch_add(1, Relaxed);
    }

    pub fn connect_resume(&mut self) {
        while !self.resume() {
            self.shared.stats.slow_consumers.fetch_add(1, Relaxed);
        }
        self.shared.stats.resumes.fetch_add(1, Relaxed);
    }

    /// Drop the connection: abruptly, politely, or after unsubscribing.
    pub fn disconnect(&mut self, rng: &mut Rng) {
        let Some(mut client) = self.client.take() else {
            return;
        };
        match rng.below(3) {
            0 => {
                self.note("disconnect: drop".into());
                drop(client);
            }
            1 => {
                self.note("disconnect: close".into());
                client.close();
            }
            _ => {
                self.note("disconnect: unsubscribe, close".into());
                client.send(&ClientMessage::Unsubscribe {
                    subscription_id: SUBSCRIPTION.into(),
                });
                client.close();
            }
        }
    }

    /// Apply live changes for `duration` (or until none comes). False if the server dropped
    /// the connection as a slow consumer (the view stays valid up to its last `_seq`).
    pub fn pump(&mut self, duration: Duration, on_change: &mut dyn FnMut(Applied)) -> bool {
        let Some(mut client) = self.client.take() else {
            self.fail("pump without a connection")
        };
        let deadline = Instant::now() + duration;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.next(&mut client, left) {
                Got::Quiet => break,
                Got::SlowConsumer => return false,
                Got::Message(ServerMessage::Change {
                    subscription_id,
                    change_type,
                    rows,
                    old_rows,
                }) if subscription_id == SUBSCRIPTION => {
                    let applied = self
                        .view
                        .apply(change_type, &rows, old_rows.as_deref())
                        .unwrap_or_else(|e| self.fail(&e));
                    self.shared.stats.changes.fetch_add(1, Relaxed);
                    on_change(applied);
                }
                Got::Message(_) => self.fail("expected a change"),
            }
        }
        self.client = Some(client);
        true
    }

    /// The observer's history once it has reached `seq`.
    fn observed_up_to(&self, seq: u64) -> MutexGuard<'a, History> {
        let shared = self.shared;
        let deadline = Instant::now() + OBSERVER_WAIT;
        let mut history = lock(&shared.observed);
        while history.last_seq < seq {
            if shared.observer_dead.load(Relaxed) {
                drop(history);
                self.fail("the observer failed (see its panic)");
            }
            if Instant::now() > deadline {
                let last = history.last_seq;
                drop(history);
                self.fail(&format!("the observer is stuck at _seq {last}"));
            }
            let wait = shared
                .progressed
                .wait_timeout(history, Duration::from_millis(50));
            history = wait.unwrap_or_else(|e| e.into_inner()).0;
        }
        history
    }

    /// The view equals the query over the table as of the last `_seq` received.
    pub fn check(&mut self) {
        let at = self.view.last;
        let want = self.query.result(&self.observed_up_to(at).state_at(at));
        if let Some(difference) = diff(&self.view.rows, &want) {
            self.fail(&format!(
                "the result held differs from the query at _seq {at} \
                 (got vs the observer's history):\n{difference}"
            ));
        }
        self.shared.stats.checks.fetch_add(1, Relaxed);
    }
}
