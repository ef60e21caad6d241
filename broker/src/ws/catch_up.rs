//! [`CatchUp`]: the task that brings a subscription from its snapshot boundary or resume point
//! up to the live feed: first, for a keyed resume, the newest state of every key changed since
//! the cursor (`realtime/keyed.rs`); then the exact changes after the boundary, read from the
//! log in pieces, each queued (waiting for room) before the next is read; then it joins the
//! partition's feed at the point it has read to, reading more first if the feed is ahead.
//!
//! Each piece reads one log snapshot and checks the lowest resumable `_seq` after taking it:
//! retention and compaction raise that floor before they remove anything, so a piece never
//! reads across removed history unnoticed. Compaction waits for the catch-up's
//! [`ReadHold`] (taken before the subscription's first read), so only retention, or a
//! resume from history compacted before the hold, meets the floor. Below the floor the subscription ends with
//! `resume_too_old`; a read failure ends it with `subscription_interrupted` (never a gap).

use std::sync::Arc;
use std::time::Duration;

use strand_log::{ReadHold, Seq};
use strand_wire::{codes, SeqText, ServerMessage};

use crate::limits::{LIVE_JOIN_SETTLE_WAIT_MS, REPLAY_CHUNK_BYTES};
use crate::realtime::{
    applied_through, replay, schema_changed, HistoryError, KeyedCatchUp, LiveSubscription,
    Realtime, Replayed,
};

pub(super) struct CatchUp {
    pub live: Arc<LiveSubscription>,
    pub realtime: Arc<Realtime>,
    /// A keyed resume's changes, sent before the exact ones.
    pub keyed: Option<KeyedCatchUp>,
    /// Keeps compaction from removing what the next piece reads (moved along with `upto`;
    /// dropped once the subscription joined the feed, whose own hold takes over).
    pub hold: Option<ReadHold>,
}

/// What one piece of the exact replay read.
enum Piece {
    Read(Replayed, Vec<String>),
    TooOld(Seq),
}

impl CatchUp {
    pub async fn run(mut self, mut upto: Seq) {
        if let Some(keyed) = self.keyed.take() {
            if !self.send_keyed(keyed).await {
                return;
            }
        }
        loop {
            loop {
                if !self.live.is_active() {
                    return;
                }
                let live = self.live.clone();
                let read = tokio::task::spawn_blocking(move || {
                    let partition = &live.partition;
                    let snapshot = partition.snapshot();
                    let view_floor = live
                        .view
                        .as_ref()
                        .map_or(Seq::ZERO, |view| view.lock().resume_floor());
                    let lowest = partition.partition().lowest_resumable_seq().max(view_floor);
                    if upto < lowest {
                        return Ok(Piece::TooOld(lowest));
                    }
                    // A resumed top-K subscription's window starts as of the resume point.
                    let mut window = live.view.as_ref().map(|window| window.lock());
                    if let Some(window) = window.as_deref_mut() {
                        if window.as_of().is_none() {
                            // A view holds its table(s) as of `upto`: on a cluster member,
                            // only once it applied every record up to there.
                            let wait = Duration::from_millis(LIVE_JOIN_SETTLE_WAIT_MS);
                            if !applied_through(partition, upto, wait) {
                                return Err(HistoryError::NotApplied(upto));
                            }
                            match window.fill(upto) {
                                Err(HistoryError::TooOld(lowest)) => {
                                    return Ok(Piece::TooOld(lowest))
                                }
                                other => other?,
                            };
                        }
                    }
                    let mut messages = Vec::new();
                    let budget = REPLAY_CHUNK_BYTES;
                    let (plan, id) = (&live.plan, &live.id);
                    let replayed = replay(
                        &snapshot,
                        plan,
                        window.as_deref_mut(),
                        id,
                        upto,
                        budget,
                        |_, text| messages.push(text),
                    )?;
                    Ok::<_, HistoryError>(Piece::Read(replayed, messages))
                })
                .await;
                let (replayed, messages) = match read {
                    Ok(Ok(Piece::Read(replayed, messages))) => (replayed, messages),
                    Ok(Ok(Piece::TooOld(lowest))) => {
                        return self.give_up(resume_too_old(&self.live.id, lowest))
                    }
                    Ok(Err(HistoryError::SchemaChanged)) => {
                        return self.give_up(schema_changed(&self.live.id, &self.live.plan))
                    }
                    Ok(Err(error)) => return self.give_up(interrupted(&self.live.id, &error)),
                    Err(error) => return self.give_up(interrupted(&self.live.id, &error)),
                };
                for text in messages {
                    if self.live.push_when_room(text).await.is_err() {
                        return;
                    }
                }
                upto = replayed.upto;
                if let Some(hold) = &self.hold {
                    hold.advance(upto);
                }
                if replayed.done {
                    break;
                }
            }
            match self.realtime.join(&self.live, upto) {
                Ok(()) => return,
                // The feed offered newer records before we joined: read those first.
                Err(_position) => continue,
            }
        }
    }

    /// Send a keyed resume's changes, chunk by chunk; false if the subscription ended.
    async fn send_keyed(&self, mut keyed: KeyedCatchUp) -> bool {
        loop {
            if !self.live.is_active() {
                return false;
            }
            let plan = self.live.plan.clone();
            let id = self.live.id.clone();
            let read = tokio::task::spawn_blocking(move || {
                let chunk = keyed.next_chunk(&plan, &id, REPLAY_CHUNK_BYTES);
                (keyed, chunk)
            })
            .await;
            let (returned, messages) = match read {
                Ok((returned, Ok(messages))) => (returned, messages),
                Ok((_, Err(HistoryError::SchemaChanged))) => {
                    self.give_up(schema_changed(&self.live.id, &self.live.plan));
                    return false;
                }
                Ok((_, Err(error))) => {
                    self.give_up(interrupted(&self.live.id, &error));
                    return false;
                }
                Err(error) => {
                    self.give_up(interrupted(&self.live.id, &error));
                    return false;
                }
            };
            keyed = returned;
            for text in messages {
                if self.live.push_when_room(text).await.is_err() {
                    return false;
                }
            }
            if keyed.is_done() {
                return true;
            }
        }
    }

    /// End the subscription with `message`; its connection forgets it.
    fn give_up(&self, message: ServerMessage) {
        self.live.end_with(&message);
    }
}

pub(super) fn resume_too_old(id: &str, lowest: Seq) -> ServerMessage {
    ServerMessage::Error {
        subscription_id: Some(id.to_owned()),
        code: codes::RESUME_TOO_OLD.to_owned(),
        message: format!(
            "the history after this _seq is no longer retained; resume from {lowest} or later, \
             or subscribe without from_seq_id for a fresh snapshot"
        ),
        lowest_seq: Some(SeqText(lowest.0)),
    }
}

/// The catch-up could not read the log: the same error the live feed gives (never a gap).
pub(super) fn interrupted(id: &str, error: &dyn std::fmt::Display) -> ServerMessage {
    tracing::error!(subscription = id, %error, "catch-up cannot read the log");
    ServerMessage::error(
        Some(id),
        codes::SUBSCRIPTION_INTERRUPTED,
        format!(
            "the server could not read this subscription's changes ({error}); resume from the \
             last _seq received, or subscribe again"
        ),
    )
}
