//! The sessions `subscription_guarantees` keeps until the writers stop, and their liveness
//! check then ([`finish_all`]): a session that stopped receiving, or receives more than it is
//! owed, fails here instead of passing as a quiet subscriber.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::model::Rng;
use crate::session::Session;
use crate::{lock, CLIENT_THREADS};

/// History sessions kept until the writers stop: a uniform sample of the histories (every
/// history has its own liveness check at its end; keeping all of them would make the end
/// replay the whole run to each). Up to PARKED_CONNECTED_MAX of them stay connected
/// (unread), the others wait disconnected and resume.
const PARKED_MAX: usize = 48;
const PARKED_CONNECTED_MAX: usize = 16;
/// How long the sessions must stay quiet once they have every change they were owed.
const FINAL_QUIET: Duration = Duration::from_millis(200);

/// Sessions kept for the liveness check after the writers stop: the DDL canaries, and a
/// uniform sample of the histories' sessions (reservoir sampling).
#[derive(Default)]
pub struct Parked<'a> {
    canaries: Mutex<Vec<Session<'a>>>,
    sample: Mutex<Sample<'a>>,
}

#[derive(Default)]
struct Sample<'a> {
    /// (connected, session)
    sessions: Vec<(bool, Session<'a>)>,
    offered: u64,
}

impl<'a> Parked<'a> {
    /// Keep a DDL canary, connected.
    pub fn keep_connected(&self, mut session: Session<'a>) {
        session.left_unread = true;
        lock(&self.canaries).push(session);
    }

    /// Maybe keep a history's `session` (connected if `connected` and there is room); one
    /// not kept, or replaced, is dropped.
    pub fn park(&self, mut session: Session<'a>, connected: bool, rng: &mut Rng) {
        let mut sample = lock(&self.sample);
        sample.offered += 1;
        let slot = match sample.sessions.len() < PARKED_MAX {
            true => sample.sessions.len(),
            false => rng.below(sample.offered) as usize,
        };
        if slot >= PARKED_MAX {
            return;
        }
        let room = sample.sessions.iter().filter(|(c, _)| *c).count() < PARKED_CONNECTED_MAX;
        let connected = connected && (room || sample.sessions.get(slot).is_some_and(|s| s.0));
        if !connected {
            session.disconnect();
        }
        session.left_unread = connected;
        match sample.sessions.get_mut(slot) {
            Some(kept) => *kept = (connected, session),
            None => sample.sessions.push((connected, session)),
        }
    }

    fn take(&self) -> Vec<Session<'a>> {
        let mut sessions = std::mem::take(&mut *lock(&self.canaries));
        let sample = std::mem::take(&mut lock(&self.sample).sessions);
        sessions.extend(sample.into_iter().map(|(_, session)| session));
        sessions
    }
}

/// Liveness after the writers stopped: every parked session takes what it is owed (in
/// parallel), then, after a pause, each must have received nothing more and hold the query's
/// result at the last committed `_seq`.
pub fn finish_all(parked: &Parked<'_>, items_last: u64, events_last: u64) {
    let mut sessions = parked.take();
    // Time-relative sessions first (popped from the end): they wait for time to pass.
    sessions.sort_by_key(Session::is_clock);
    let queue = Mutex::new(sessions);
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..CLIENT_THREADS {
            scope.spawn(|| loop {
                let Some(mut session) = lock(&queue).pop() else {
                    return;
                };
                session.finish(items_last, events_last);
                lock(&done).push(session);
            });
        }
    });
    std::thread::sleep(FINAL_QUIET);
    for mut session in done.into_inner().unwrap_or_else(PoisonError::into_inner) {
        session.verify_quiet(items_last, events_last);
    }
}
