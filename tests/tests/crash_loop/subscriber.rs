//! The resuming WebSocket subscriber of the crash loop: it holds a copy of `app.rows` built
//! from one snapshot and then changes only, across every crash (each restart resumes from the
//! last `_seq` it received), and after each restart its copy must equal the table.

use std::collections::BTreeMap;
use std::thread::JoinHandle;

use strand_tests::ws::{
    apply_change, row_seq, snapshot, subscribe_message, Change, WsClient, WsEnd,
};
use strand_tests::StrandServer;
use strand_wire::{ChangeType, Row, ServerMessage};

const ID: &str = "rows";
const QUERY: &str = "SELECT id, label FROM app.rows";

#[derive(Default)]
pub struct Subscriber {
    /// The copy: rows by id, with their `_seq`.
    pub state: BTreeMap<i64, Row>,
    /// The last `_seq` received (the snapshot's boundary before any change); `None` before
    /// the first subscription.
    pub last: Option<u64>,
    /// Changes applied, over all cycles.
    pub changes: u64,
    /// Changes applied while catching up after a restart (replayed by a resume).
    pub replayed: u64,
    pub resumes: u64,
}

impl Subscriber {
    /// Subscribes (a snapshot the first time, then a resume from the last `_seq`) and takes
    /// changes until the copy holds the last `_seq` of `expected` (the table as a SELECT reads
    /// it, no writer running); the copy must then equal it. Returns the connection, subscribed.
    pub fn catch_up(
        &mut self,
        server: &StrandServer,
        admin: &str,
        expected: &BTreeMap<i64, Row>,
        context: &str,
    ) -> WsClient {
        let mut client = WsClient::connect(server, Some(admin));
        match client.recv() {
            ServerMessage::AuthSuccess { .. } => {}
            other => panic!("{context}: expected auth_success, got {other:?}"),
        }
        match self.last {
            None => {
                let (end, state) = snapshot(&mut client, ID, QUERY);
                self.state = state;
                self.last = Some(end);
            }
            Some(last) => {
                self.resumes += 1;
                client.send(&subscribe_message(ID, QUERY, None, Some(last)));
                match client.recv() {
                    ServerMessage::SubscriptionAck {
                        snapshot_end_seq, ..
                    } => assert_eq!(
                        snapshot_end_seq.0, last,
                        "{context}: a resume's boundary is its from_seq_id"
                    ),
                    other => panic!("{context}: expected subscription_ack, got {other:?}"),
                }
            }
        }
        let target = expected.values().map(row_seq).max().unwrap_or(0);
        while self.last.unwrap_or(0) < target {
            match client.next() {
                Ok(message) => {
                    let applied = self.apply(message, context);
                    self.replayed += applied;
                }
                Err(end) => panic!(
                    "{context}: the resumed subscription ended at _seq {:?} before the table's \
                     last _seq {target}: {end:?}",
                    self.last
                ),
            }
        }
        assert!(
            self.state == *expected,
            "{context}: the subscriber's copy differs from the table: missing {:?}, extra {:?}, \
             different {:?}",
            keys_only_in(expected, &self.state),
            keys_only_in(&self.state, expected),
            expected
                .iter()
                .filter(|(id, row)| self.state.get(id).is_some_and(|held| held != *row))
                .map(|(id, _)| id)
                .collect::<Vec<_>>()
        );
        client
    }

    /// Takes changes on `client` until the connection ends (the server is killed), or, with
    /// `leave_after`, until it has that many and disconnects (so that the resume after the
    /// restart has more to replay); returns the subscriber for the next cycle.
    pub fn follow(
        mut self,
        mut client: WsClient,
        leave_after: Option<u64>,
        context: String,
    ) -> JoinHandle<Subscriber> {
        std::thread::spawn(move || {
            let mut taken = 0;
            loop {
                if leave_after.is_some_and(|limit| taken >= limit) {
                    client.close();
                    return self;
                }
                match client.next() {
                    Ok(message) => {
                        taken += self.apply(message, &context);
                    }
                    // Killed (a reset or a cut), or nothing for long: the cycle is over.
                    Err(WsEnd::Closed(_) | WsEnd::Failed(_) | WsEnd::TimedOut) => return self,
                }
            }
        })
    }

    /// Applies a `change` message (each row checked against the copy, `_seq`s strictly
    /// increasing across messages and resumes); returns the rows applied.
    fn apply(&mut self, message: ServerMessage, context: &str) -> u64 {
        let ServerMessage::Change {
            subscription_id,
            change_type,
            rows,
            old_rows,
            ..
        } = message
        else {
            panic!("{context}: expected a change, got {message:?}");
        };
        assert_eq!(subscription_id, ID, "{context}");
        assert_eq!(
            old_rows.is_some(),
            change_type == ChangeType::Update,
            "{context}: old_rows exactly on updates"
        );
        let mut old_rows = old_rows.map(Vec::into_iter);
        let mut applied = 0;
        for row in rows {
            let seq = row_seq(&row);
            let last = self.last.unwrap_or(0);
            assert!(
                seq > last,
                "{context}: change at _seq {seq} after {last} (a duplicate or out of order)"
            );
            let old = old_rows.as_mut().and_then(Iterator::next);
            apply_change(
                &mut self.state,
                &Change {
                    kind: change_type,
                    row,
                    old,
                },
            );
            self.last = Some(seq);
            self.changes += 1;
            applied += 1;
        }
        applied
    }
}

fn keys_only_in(a: &BTreeMap<i64, Row>, b: &BTreeMap<i64, Row>) -> Vec<i64> {
    a.keys().filter(|id| !b.contains_key(id)).copied().collect()
}
