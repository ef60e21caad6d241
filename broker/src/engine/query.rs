//! SELECT: compile once, pick the caller's partition, read a snapshot (point lookups when the
//! WHERE pins the primary key, a scan of the newest versions otherwise) and feed the rows to
//! the plan's collector. Reads take no lock a writer waits for.

use serde_json::{Map, Value as Json};
use strand_log::{ReadFrom, ReadSnapshot, RecordView, Seq};
use strand_sql_view::ast::Select;
use strand_sql_view::Privilege;
use strand_sql_view::{column_json, BigIntJson, SelectPlan, SystemColumns};
use strand_sql_view::{encode_key, RowView, TableDef, TableKind, Value};

use super::{errors, Caller, Engine, EngineResult};
use crate::error::{ApiError, ErrorCode};
use crate::limits::RESULT_ROWS_MAX;
use crate::sql::{Column, StatementResult};
use crate::tables::versions::{versions_as_of, KeyedPartition};

impl Engine {
    pub(super) fn select(
        &self,
        caller: &Caller,
        select: &Select,
        params: &[Value],
    ) -> EngineResult {
        let plan = SelectPlan::compile(select, &*self.catalog, params).map_err(errors::from_sql)?;
        if let Some(join) = plan.join() {
            let rows = self.select_join(caller, &plan, join)?;
            return finish_select(&plan, rows);
        }
        let table = self.table(plan.table().name())?;
        let owner = self.owner_of(caller, &table, Privilege::Select)?;
        let partition = self
            .tables
            .partition(&table, owner)
            .map_err(errors::from_versions)?;
        let mut collector = plan.collector();
        let mut offered = 0usize;
        let keys = plan.filter().key_values();
        for_each_live_row(&partition, &table.def, keys, Seq::MAX, |row, system| {
            collector.push(row, system).map_err(errors::from_sql)?;
            offered += 1;
            Ok(!collector.is_full())
        })?;
        let rows = collector.finish().map_err(errors::from_sql)?;
        tracing::debug!(user = %caller.user, table = %table.def.name(), offered, rows = rows.len(),
            "select");
        finish_select(&plan, rows)
    }
}

/// The result of a SELECT, refused when it is too large to send.
fn finish_select(plan: &SelectPlan, rows: Vec<Vec<Value>>) -> EngineResult {
    if rows.len() > RESULT_ROWS_MAX {
        let text = format!("the result has more than {RESULT_ROWS_MAX} rows; add a LIMIT");
        return Err(ApiError::new(ErrorCode::LimitExceeded, text));
    }
    Ok(result_of(plan, rows))
}

/// Call `visit` with every live (not deleted, not expired) row as of `as_of` (`Seq::MAX`: the
/// newest), or only those with one of `keys` as their primary key (a WHERE's
/// `Filter::key_values`), until it returns `Ok(false)`.
pub(super) fn for_each_live_row(
    partition: &KeyedPartition,
    table: &TableDef,
    keys: Option<Vec<Value>>,
    as_of: Seq,
    mut visit: impl FnMut(&RowView<'_>, SystemColumns) -> Result<bool, ApiError>,
) -> Result<(), ApiError> {
    let expired_before_ms = expiry_cutoff_ms(table);
    let mut offer = |record: RecordView<'_>| -> Result<bool, ApiError> {
        if record.flags.is_tombstone() || record.timestamp_unix_ms < expired_before_ms {
            return Ok(true);
        }
        let row = RowView::new(record.payload).map_err(|e| ApiError::internal(&e))?;
        let seq = i64::try_from(record.seq.0).unwrap_or(i64::MAX);
        visit(
            &row,
            SystemColumns {
                seq,
                deleted: false,
                now: 0,
            },
        )
    };
    let snapshot = partition.snapshot();
    let boundary = as_of.min(snapshot.last_seq());
    if let Some(keys) = keys {
        let mut versions = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(key) = encode_key(key.as_ref()) {
                let version = partition.version(&key);
                // A damaged partition: a key whose newest version may be in the damage is
                // refused, never answered with an older version or "no row".
                partition
                    .check_intact(version)
                    .map_err(ApiError::data_corrupt)?;
                versions.extend(version);
            }
        }
        // An index entry newer than the snapshot (or `as_of`) is a write still being committed
        // (or after `as_of`): the versions as of the boundary are then read by the scan below.
        if versions.iter().all(|v| v.seq <= boundary) {
            for version in versions.iter().filter(|v| !v.deleted) {
                if let Some(record) = record_at(&snapshot, version.seq)? {
                    if !offer(record)? {
                        return Ok(());
                    }
                }
            }
            return Ok(());
        }
    }
    let newest = versions_as_of(&snapshot, boundary).map_err(|e| ApiError::from_log(&e))?;
    for record in newest {
        if !offer(record)? {
            break;
        }
    }
    Ok(())
}

fn record_at(snapshot: &ReadSnapshot, seq: Seq) -> Result<Option<RecordView<'_>>, ApiError> {
    match snapshot.records(ReadFrom::Seq(seq)).next() {
        Some(Ok(record)) if record.seq == seq => Ok(Some(record)),
        Some(Err(error)) => Err(ApiError::from_log(&error)),
        _ => Ok(None),
    }
}

/// Rows of a STREAM table written before this Unix millisecond have expired.
fn expiry_cutoff_ms(table: &TableDef) -> u64 {
    match table.kind() {
        TableKind::Stream { ttl_seconds } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            now.saturating_sub(ttl_seconds.saturating_mul(1000))
        }
        _ => 0,
    }
}

fn result_of(plan: &SelectPlan, rows: Vec<Vec<Value>>) -> StatementResult {
    let columns: Vec<Column> = plan
        .columns()
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            data_type: c.data_type.to_string(),
        })
        .collect();
    let rows: Vec<Map<String, Json>> = rows
        .into_iter()
        .map(|values| {
            columns
                .iter()
                .zip(values)
                .map(|(column, value)| {
                    (
                        column.name.clone(),
                        column_json(&column.name, &value, BigIntJson::Number),
                    )
                })
                .collect()
        })
        .collect();
    StatementResult {
        columns,
        row_count: rows.len() as u64,
        rows,
        message: None,
    }
}
