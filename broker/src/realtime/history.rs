//! Reading a subscription's changes from the log: the changes after a `_seq` ([`replay`]),
//! each with the version it replaced ([`VersionPair`]). It reads a [`ReadSnapshot`], so it
//! holds no lock a writer waits for. The snapshot itself is `snapshot.rs`.

use serde_json::{Map, Value as Json};
use strand_log::{LogError, ReadFrom, ReadSnapshot, RecordView, Seq};
use strand_sql_view::RowView;
use strand_wire::{encode_change, ChangeType};

use super::change::{classify, ChangeKind};
use super::live_view::LiveView;
use super::plan::SubscriptionPlan;
use crate::error::ApiError;
use crate::tables::versions::{AsOfError, KeyedPartition};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("a stored row does not decode: {0}")]
    Row(String),
    /// A `SELECT *` subscription met a row written with more columns than it was compiled
    /// for: it must end with `schema_changed` rather than send rows without the new column.
    #[error("the table has new columns")]
    SchemaChanged,
    /// A snapshot could not tell a key's version as of its boundary.
    #[error(transparent)]
    AsOf(#[from] AsOfError),
    /// A point snapshot's key may have its newest version in damaged records
    /// (`data_corrupt`): refused, never answered with an older version.
    #[error(transparent)]
    Damaged(ApiError),
    /// Reading as of this `_seq` needs history compaction or retention has removed since the
    /// reader last looked (below the partition's resumable floor, the argument): the client
    /// resumes from a fresh snapshot.
    #[error("the history as of this _seq is no longer retained (resumable from {0})")]
    TooOld(Seq),
    /// A cluster member has not applied every table up to this `_seq` yet (the client
    /// came from a member further ahead): it may resume again, here shortly or elsewhere.
    #[error("this member has not applied every table up to _seq {0} yet; resume again")]
    NotApplied(Seq),
}

/// An indexed snapshot of `partition` to read it as of `as_of`, checked against the resumable
/// floor after it was taken. Compaction raises the floor before it removes a version, so a
/// snapshot taken while `as_of` is at or above the floor holds every version live at `as_of`;
/// below it, a version live then may be gone and a scan would silently miss its row.
pub(super) fn snapshot_as_of(
    partition: &KeyedPartition,
    as_of: Seq,
) -> Result<ReadSnapshot, HistoryError> {
    let snapshot = partition.indexed_snapshot();
    let lowest = partition.partition().lowest_resumable_seq();
    if as_of < lowest {
        return Err(HistoryError::TooOld(lowest));
    }
    Ok(snapshot)
}

/// A version of a row: its stored fields and `_seq`.
pub struct Version<'s> {
    pub row: RowView<'s>,
    pub seq: Seq,
    /// The stored row, for a top-K window that keeps it.
    pub payload: &'s [u8],
}

/// The version a record replaced (if live) and the one it wrote (if not a delete).
pub struct VersionPair<'s> {
    pub old: Option<Version<'s>>,
    pub new: Option<Version<'s>>,
    pub seq: Seq,
}

impl<'s> VersionPair<'s> {
    /// Read `record`'s previous version from `snapshot`. A previous version that is no longer
    /// in the log was removed by retention (a STREAM row past its TTL): it counts as gone, so
    /// the write is an insert. Readers that resume check the lowest resumable `_seq` first.
    pub fn of(snapshot: &'s ReadSnapshot, record: &RecordView<'s>) -> Result<Self, HistoryError> {
        let new = if record.flags.is_tombstone() {
            None
        } else {
            Some(Version {
                row: decode(record.payload)?,
                seq: record.seq,
                payload: record.payload,
            })
        };
        let old = match record.previous_version {
            Seq::ZERO => None,
            previous => match record_at(snapshot, previous)? {
                Some(old) if old.flags.is_tombstone() => None,
                Some(old) => Some(Version {
                    row: decode(old.payload)?,
                    seq: old.seq,
                    payload: old.payload,
                }),
                None => None,
            },
        };
        Ok(VersionPair {
            old,
            new,
            seq: record.seq,
        })
    }

    /// What a subscription with `plan` receives for this write, if anything.
    pub fn change_for(&self, plan: &SubscriptionPlan) -> Option<ChangeKind> {
        classify(self.old.as_ref(), self.new.as_ref(), |v| {
            plan.matches(&v.row, v.seq)
        })
    }

    /// The `rows` and `old_rows` arrays of the change, as JSON text.
    pub fn rows_json(&self, plan: &SubscriptionPlan, kind: ChangeKind) -> (String, Option<String>) {
        let one = |object: Map<String, Json>| Json::Array(vec![Json::Object(object)]).to_string();
        match (kind, &self.old, &self.new) {
            (ChangeKind::Insert, _, Some(new)) => (one(plan.row_json(&new.row, new.seq)), None),
            (ChangeKind::Update, Some(old), Some(new)) => (
                one(plan.row_json(&new.row, new.seq)),
                Some(one(plan.row_json(&old.row, old.seq))),
            ),
            // A delete shows the row as last seen, stamped with the deleting change's `_seq`.
            (ChangeKind::Delete, Some(old), _) => (one(plan.row_json(&old.row, self.seq)), None),
            _ => ("[]".to_owned(), None),
        }
    }
}

pub fn change_type(kind: ChangeKind) -> ChangeType {
    match kind {
        ChangeKind::Insert => ChangeType::Insert,
        ChangeKind::Update => ChangeType::Update,
        ChangeKind::Delete => ChangeType::Delete,
    }
}

/// How far a [`replay`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// Every record up to here has been read.
    pub upto: Seq,
    /// Everything in the snapshot was read (else the byte budget ran out first).
    pub done: bool,
}

/// The changes after `after` in `snapshot` for subscription `id`, in `_seq` order, given to
/// `emit` as `(seq, message)`, until about `budget_bytes` of messages were emitted. A top-K
/// subscription's changes come from its `window`, filled as of `after`.
pub fn replay(
    snapshot: &ReadSnapshot,
    plan: &SubscriptionPlan,
    mut window: Option<&mut LiveView>,
    id: &str,
    after: Seq,
    budget_bytes: usize,
    mut emit: impl FnMut(Seq, String),
) -> Result<Replayed, HistoryError> {
    let mut emitted = 0usize;
    for record in snapshot.records(ReadFrom::After(after)) {
        let record = record?;
        let pair = VersionPair::of(snapshot, &record)?;
        if plan.outdated_by(&pair) {
            return Err(HistoryError::SchemaChanged);
        }
        let text = match window.as_deref_mut() {
            Some(window) => window
                .apply(&pair)?
                .map(|change| change.encode(id, pair.seq)),
            None => pair.change_for(plan).map(|kind| {
                let (rows, old_rows) = pair.rows_json(plan, kind);
                encode_change(id, change_type(kind), &rows, old_rows.as_deref())
            }),
        };
        if let Some(text) = text {
            emitted += text.len();
            emit(record.seq, text);
            if emitted >= budget_bytes {
                return Ok(Replayed {
                    upto: record.seq,
                    done: false,
                });
            }
        }
    }
    Ok(Replayed {
        upto: after.max(snapshot.last_seq()),
        done: true,
    })
}

pub(super) fn decode(payload: &[u8]) -> Result<RowView<'_>, HistoryError> {
    RowView::new(payload).map_err(|e| HistoryError::Row(e.to_string()))
}

pub(super) fn record_at<'s>(
    snapshot: &'s ReadSnapshot,
    seq: Seq,
) -> Result<Option<RecordView<'s>>, LogError> {
    match snapshot.records(ReadFrom::Seq(seq)).next() {
        Some(Ok(record)) if record.seq == seq => Ok(Some(record)),
        Some(Err(error)) => Err(error),
        _ => Ok(None),
    }
}
