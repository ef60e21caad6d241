//! The connection's subscription steps: `subscribe` (compile, register, then the snapshot's
//! first batch or a resume), `next_batch`, and the hand-over to the catch-up task.

use super::*;
use crate::realtime::TableDdl;

impl Connection {
    pub(super) async fn subscribe(&mut self, request: SubscribeRequest) {
        let SubscribeRequest {
            id,
            sql,
            batch_size,
            from_seq,
            bigint,
            params,
            as_of,
        } = request;
        let Some(session) = self.session.clone() else {
            return;
        };
        // Compiling is brief (a parse, a plan, a cached partition); on the connection's
        // thread it costs no hand-off and no blocking-pool thread per concurrent subscribe.
        let compiled = self
            .state
            .engine
            .subscription(&session, &sql, bigint, &params);
        let target = match compiled {
            Ok(target) => target,
            Err(error) => return self.refuse(&id, &error).await,
        };
        let live = Arc::new(LiveSubscription::new(
            target.realtime.next_key(),
            id.clone(),
            target.plan.clone(),
            target.partition.clone(),
            self.outbox.clone(),
            self.ended.clone(),
            &target.joined,
        ));
        target.realtime.register(&target.table_prefix, &live);
        for prefix in &target.joined_prefixes {
            target.realtime.register(prefix, &live);
        }
        self.realtime.get_or_insert_with(|| target.realtime.clone());
        let schema = target.plan.schema();
        let mut keyed = None;
        let floor = from_seq.or(as_of);
        if let Some(refusal) = floor.and_then(|from| resume_across_ddl(&id, from, &target)) {
            self.protocol.subscription_ended(&id);
            return self.reply(refusal).await;
        }
        // Taken before the floors are checked and the snapshot is read (see `hold`).
        let log = target.partition.partition();
        let hold = match floor {
            Some(from) => log.hold_reads_after(from),
            None => log.hold_reads_from_now().0,
        };
        let mut entry = ActiveSubscription {
            live,
            snapshot: None,
            hold: None,
        };
        let boundary = match from_seq {
            Some(from) if from >= target.lowest_resumable_seq() => from,
            Some(_) if target.plan.keeps_view() => {
                // A top-K window, live groups, a time-relative result or a join are rebuilt
                // as of the resume point, which needs the exact history (of every table of a
                // join): without it, a fresh snapshot.
                self.protocol.subscription_ended(&id);
                let lowest = target.lowest_resumable_seq();
                return self.reply(resume_too_old(&id, lowest)).await;
            }
            Some(from) => {
                // The exact history is gone: the newest state of each changed key, if that
                // is still there.
                let (partition, plan) = (target.partition.clone(), target.plan.clone());
                let opened = tokio::task::spawn_blocking(move || {
                    KeyedCatchUp::open(&partition, &plan, from)
                })
                .await;
                match opened {
                    Ok(Ok(KeyedOpen::Ready(catch_up))) => {
                        let boundary = catch_up.boundary();
                        // The keyed part reads one snapshot; the exact part starts here.
                        hold.advance(boundary);
                        keyed = Some(catch_up);
                        boundary
                    }
                    Ok(Ok(KeyedOpen::TooOld { lowest })) => {
                        self.protocol.subscription_ended(&id);
                        return self.reply(resume_too_old(&id, lowest)).await;
                    }
                    Ok(Err(error)) => return self.refuse(&id, &ApiError::internal(&error)).await,
                    Err(error) => return self.refuse(&id, &ApiError::internal(&error)).await,
                }
            }
            None => {
                // Opening reads no rows (the batches do); it waits only while a writer holds
                // the partition, and then not on the connection's thread.
                let (partition, plan) = (target.partition.clone(), target.plan.clone());
                if let Some(as_of) = as_of {
                    // AS OF reads the versions as of that `_seq` and replays what followed:
                    // both need the exact history from there.
                    let lowest = target.lowest_resumable_seq();
                    if as_of < lowest {
                        self.protocol.subscription_ended(&id);
                        return self.reply(resume_too_old(&id, lowest)).await;
                    }
                }
                let opened = match SnapshotCursor::open_now(&partition, &plan, as_of) {
                    Some(cursor) => Ok(cursor),
                    None => {
                        tokio::task::spawn_blocking(move || {
                            SnapshotCursor::open(&partition, &plan, as_of)
                        })
                        .await
                    }
                };
                match opened {
                    Ok(mut cursor) => {
                        cursor.raise_boundary(target.columns_changed().unwrap_or(Seq::ZERO));
                        let boundary = cursor.boundary();
                        entry.snapshot = Some(Box::new((cursor, batch_size)));
                        boundary
                    }
                    Err(error) => return self.refuse(&id, &ApiError::internal(&error)).await,
                }
            }
        };
        entry.hold = Some(hold);
        self.state.http.metrics.subscription_added();
        let ack = ServerMessage::SubscriptionAck {
            subscription_id: id.to_string(),
            schema,
            snapshot_end_seq: SeqText(boundary.0),
            resume: keyed.as_ref().map(|_| ResumeMode::Keyed),
        };
        // Refused only if DDL ended it meanwhile (its error is queued) or the connection is
        // closing.
        let _ = entry.live.push_when_room(ack.encode()).await;
        let resuming = entry.snapshot.is_none();
        self.protocol.attach(&id, entry);
        if resuming {
            self.start_catch_up(&id, boundary, keyed);
        } else {
            self.next_batch(&id).await;
        }
    }

    pub(super) async fn refuse(&mut self, id: &str, error: &ApiError) {
        self.protocol.subscription_ended(id);
        let message = match &error.position {
            Some(p) => format!("{} (line {}, column {})", error.message, p.line, p.column),
            None => error.message.clone(),
        };
        let refusal = ServerMessage::error(Some(id), error.code.as_str(), message);
        self.reply(refusal).await;
    }

    /// Send the next snapshot batch; after the last, start the catch-up.
    pub(super) async fn next_batch(&mut self, id: &str) {
        let Some(entry) = self.protocol.subscription_mut(id) else {
            return;
        };
        let Some((mut cursor, batch_size)) = entry.snapshot.take().map(|b| *b) else {
            let text = format!("subscription '{id}' has no snapshot batch pending");
            let error = ServerMessage::error(Some(id), codes::NO_PENDING_BATCH, text);
            return self.reply(error).await;
        };
        let live = entry.live.clone();
        let read = tokio::task::spawn_blocking(move || {
            let batch = cursor.next_batch(&live, batch_size);
            (cursor, batch)
        })
        .await;
        let (cursor, rows, batch_num, has_more) = match read {
            Ok((cursor, Ok(batch))) => {
                self.state.http.metrics.snapshot_rows_scanned(batch.scanned);
                (cursor, batch.rows, batch.number, batch.has_more)
            }
            Ok((cursor, Err(HistoryError::AsOf(AsOfError::Removed(_))))) => {
                // History after the boundary was compacted away while the snapshot was
                // paged: its catch-up could not be exact either.
                self.unsubscribe(id);
                let lowest = cursor.partition().partition().lowest_resumable_seq();
                return self.reply(resume_too_old(id, lowest)).await;
            }
            Ok((_, Err(HistoryError::Damaged(error)))) => return self.fail(id, &error).await,
            // `data_corrupt` when the records it needs are damaged.
            Ok((_, Err(HistoryError::Log(error)))) => {
                return self.fail(id, &ApiError::from_log(&error)).await
            }
            Ok((_, Err(error))) => return self.fail(id, &ApiError::internal(&error)).await,
            Err(error) => return self.fail(id, &ApiError::internal(&error)).await,
        };
        let boundary = cursor.boundary();
        let Some(entry) = self.protocol.subscription_mut(id) else {
            return;
        };
        if has_more {
            entry.snapshot = Some(Box::new((cursor, batch_size)));
        }
        let live = entry.live.clone();
        let status = if has_more {
            BatchStatus::Loading
        } else {
            BatchStatus::Ready
        };
        let batch = ServerMessage::InitialDataBatch {
            subscription_id: id.to_owned(),
            rows,
            batch_control: BatchControl {
                batch_num,
                status,
                has_more,
                snapshot_end_seq: SeqText(boundary.0),
            },
        };
        if live.push_when_room(batch.encode()).await.is_err() {
            return;
        }
        if !has_more {
            self.start_catch_up(id, boundary, None);
        }
    }

    /// `next_batch` without an id: the one subscription with a batch pending is meant.
    pub(super) async fn next_batch_unnamed(&mut self) {
        let pending = self.protocol.filter_ids(|entry| entry.snapshot.is_some());
        match pending.as_slice() {
            [id] => self.next_batch(&id.clone()).await,
            [] => {
                let text = "no subscription on this connection has a snapshot batch pending";
                let error = ServerMessage::error(None, codes::NO_PENDING_BATCH, text);
                self.reply(error).await;
            }
            several => {
                let mut ids: Vec<&str> = several.iter().map(|id| &**id).collect();
                ids.sort_unstable();
                let text = format!(
                    "several subscriptions have a snapshot batch pending ({}); name one with \
                     subscription_id",
                    ids.join(", ")
                );
                let error = ServerMessage::error(None, codes::INVALID_MESSAGE, text);
                self.reply(error).await;
            }
        }
    }

    /// Bring subscription `id` from `after` to the live feed (first sending `keyed`, a keyed
    /// resume's changes, if any).
    fn start_catch_up(&mut self, id: &str, after: Seq, keyed: Option<KeyedCatchUp>) {
        let Some(realtime) = self.realtime.clone() else {
            return;
        };
        let Some(entry) = self.protocol.subscription_mut(id) else {
            return;
        };
        // Usually nothing was written since the boundary: join the feed now, without a task
        // (an idle subscription then leaves no task's memory behind). Not a resumed top-K or
        // grouping subscription: its view is filled by the catch-up.
        let view_ready = entry
            .live
            .view
            .as_ref()
            .is_none_or(|view| view.lock().as_of().is_some());
        let hold = entry.hold.take();
        if keyed.is_none() && view_ready && realtime.join(&entry.live, after).is_ok() {
            return;
        }
        let task = CatchUp {
            live: entry.live.clone(),
            realtime,
            keyed,
            hold,
        };
        tokio::spawn(task.run(after));
    }
}

/// The refusal of a resume from `from` when DDL since makes changes unable to bring the
/// client's copy up to date: `from` is from a table of the same name that was dropped (between
/// the name's first creation and this table's: `table_dropped`), or from this table before
/// columns were added to a `SELECT *` subscription (`schema_changed`: the copy lacks them);
/// for a join, of any of its tables. `lowest_seq` says from where a resume would be served;
/// the client takes a fresh snapshot. A `from` older than any table of the name (e.g. `1`,
/// "everything") replays the whole history, which needs no earlier copy.
fn resume_across_ddl(id: &str, from: Seq, target: &SubscriptionTarget) -> Option<ServerMessage> {
    target
        .ddl
        .iter()
        .find_map(|table| ddl_refusal(id, from, table))
}

fn ddl_refusal(id: &str, from: Seq, table: &TableDdl) -> Option<ServerMessage> {
    let (code, floor, what) = if from < table.name_first_created {
        return None;
    } else if from < table.created {
        let what = "was dropped and created again";
        (codes::TABLE_DROPPED, table.created, what)
    } else {
        let changed = table.columns_changed.filter(|changed| from < *changed)?;
        (codes::SCHEMA_CHANGED, changed, "has new columns")
    };
    Some(ServerMessage::Error {
        subscription_id: Some(id.to_owned()),
        code: code.to_owned(),
        message: format!(
            "table {} {what} since this _seq; subscribe without from_seq_id for a fresh \
             snapshot",
            table.name
        ),
        lowest_seq: Some(SeqText(floor.0)),
    })
}
