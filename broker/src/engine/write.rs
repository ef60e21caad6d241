//! INSERT, UPDATE and DELETE: each statement becomes one durable batch of row versions in the
//! caller's partition (a delete is a tombstone). An INSERT fails whole, writing nothing, when a
//! live row already has one of its primary keys.

use serde_json::{Map, Value as Json};
use strand_log::Seq;
use strand_sql_view::ast::{Delete, Expr, ExprKind, Insert, TableRef, Update};
use strand_sql_view::Privilege;
use strand_sql_view::{encode_key, encode_row, DeletePlan, InsertPlan, UpdatePlan, Value};
use strand_sql_view::{Name, TableName};

use super::errors::{self, DUPLICATE_KEY};
use super::query::for_each_live_row;
use super::{Caller, Engine, EngineResult};
use crate::catalog::CatalogTable;
use crate::error::{ApiError, ErrorCode};
use crate::sql::StatementResult;
use crate::tables::versions::{KeyVersion, KeyedPartition, PartitionWriter, RowWrite};
use crate::tables::{partition_id, RowOwner};

/// A row version to write: its key (empty without a primary key) and stored bytes.
pub(super) struct Encoded {
    key: Vec<u8>,
    row: Option<Vec<u8>>,
}

/// An INSERT compiled for its caller: the table, whose rows it writes, and the rows.
pub(super) struct EncodedInsert<'c> {
    pub table: CatalogTable,
    pub owner: RowOwner<'c>,
    pub rows: Vec<Encoded>,
}

/// An INSERT's check: no live row of `table` has one of its keys.
pub(super) fn no_live_duplicate(
    table: &CatalogTable,
    rows: &[Encoded],
    lookup: &dyn Fn(&[u8]) -> Option<KeyVersion>,
) -> Result<(), ApiError> {
    for write in rows {
        if !write.key.is_empty() && lookup(&write.key).is_some_and(|v| !v.deleted) {
            return Err(ApiError::new(
                ErrorCode::Sql(DUPLICATE_KEY),
                format!(
                    "a row with this primary key already exists in {}",
                    table.def.name()
                ),
            ));
        }
    }
    Ok(())
}

impl Engine {
    pub(super) fn insert(
        &self,
        caller: &Caller,
        insert: &Insert,
        params: &[Value],
    ) -> EngineResult {
        let seqs = self.insert_rows(caller, insert, params)?;
        Ok(affected(seqs.len(), "inserted"))
    }

    /// Rows given as JSON objects (the QUIC `produce_table`), all naming the same columns,
    /// inserted as one batch exactly as `INSERT INTO table (columns) VALUES ...` would be.
    /// Returns the `_seq` of each row, in order.
    pub(super) fn insert_json_rows_as(
        &self,
        caller: &Caller,
        table: &str,
        rows: &[Map<String, Json>],
    ) -> Result<Vec<Seq>, ApiError> {
        let invalid = |text: String| ApiError::new(ErrorCode::InvalidRequest, text);
        let not_found =
            || ApiError::new(ErrorCode::NotFound, format!("table {table} does not exist"));
        let (namespace, name) = table.split_once('.').ok_or_else(not_found)?;
        let (Ok(namespace), Ok(name)) = (Name::new(namespace), Name::new(name)) else {
            return Err(not_found());
        };
        let first = rows
            .first()
            .ok_or_else(|| invalid("a produce_table batch needs at least one row".into()))?;
        let columns: Vec<&String> = first.keys().collect();
        let mut params = Vec::with_capacity(rows.len() * columns.len());
        let mut values = Vec::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            if row.len() != columns.len() {
                return Err(invalid(format!(
                    "row {index} names {} columns, row 0 names {}: every row of a batch names \
                     the same columns",
                    row.len(),
                    columns.len()
                )));
            }
            let mut exprs = Vec::with_capacity(columns.len());
            for column in &columns {
                let value = row.get(*column).ok_or_else(|| {
                    invalid(format!(
                        "row {index} has no column {column}: every row of a batch names the \
                         same columns"
                    ))
                })?;
                params.push(Value::from_json(value));
                exprs.push(Expr {
                    kind: ExprKind::Parameter(params.len()),
                    position: None,
                });
            }
            values.push(exprs);
        }
        let insert = Insert {
            table: TableRef {
                name: TableName {
                    namespace,
                    table: name,
                },
                position: None,
            },
            columns: Some(columns.iter().map(|c| ((*c).clone(), None)).collect()),
            rows: values,
        };
        self.insert_rows(caller, &insert, &params)
    }

    fn insert_rows(
        &self,
        caller: &Caller,
        insert: &Insert,
        params: &[Value],
    ) -> Result<Vec<Seq>, ApiError> {
        let EncodedInsert { table, owner, rows } = self.encode_insert(caller, insert, params)?;
        let partition = self
            .tables
            .partition(&table, owner)
            .map_err(errors::from_versions)?;
        let seqs = partition
            .apply(&as_writes(&rows), |lookup| {
                no_live_duplicate(&table, &rows, lookup)
            })
            .map_err(errors::from_versions)??;
        self.committed(&table, owner, &partition);
        self.metrics.add_rows_written(rows.len() as u64);
        Ok(seqs)
    }

    /// Compile an INSERT for `caller` and encode its rows (keys checked, nothing written).
    pub(super) fn encode_insert<'c>(
        &self,
        caller: &'c Caller,
        insert: &Insert,
        params: &[Value],
    ) -> Result<EncodedInsert<'c>, ApiError> {
        let mut plan =
            InsertPlan::compile(insert, &*self.catalog, params).map_err(errors::from_sql)?;
        let table = self.table(plan.table().name())?;
        let owner = self.owner_of(caller, &table, Privilege::Insert)?;
        if plan.ids_needed() > 0 {
            // A separate id per SNOWFLAKE_ID() default, from the generator `_seq` comes from:
            // the row's own `_seq` is issued only when the encoded row is appended.
            let ids = self
                .tables
                .issue_ids(plan.ids_needed())
                .map_err(|e| ApiError::internal(&e))?;
            let ids: Vec<i64> = ids.iter().map(|seq| seq.0 as i64).collect();
            plan.fill_ids(&ids);
        }
        let mut rows = Vec::with_capacity(plan.rows().len());
        for row in plan.rows() {
            let key = match plan.primary_key(row) {
                Some(value) => encode_key(value.as_ref()).ok_or_else(|| bad_key(value))?,
                None => Vec::new(),
            };
            let bytes = encode_row(row)
                .map_err(|e| ApiError::new(ErrorCode::InvalidValue, e.to_string()))?;
            rows.push(Encoded {
                key,
                row: Some(bytes),
            });
        }
        Ok(EncodedInsert { table, owner, rows })
    }

    pub(super) fn update(
        &self,
        caller: &Caller,
        update: &Update,
        params: &[Value],
    ) -> EngineResult {
        let plan = UpdatePlan::compile(update, &*self.catalog, params).map_err(errors::from_sql)?;
        let table = self.table(plan.table().name())?;
        let owner = self.owner_of(caller, &table, Privilege::Update)?;
        let partition = self
            .tables
            .partition(&table, owner)
            .map_err(errors::from_versions)?;
        let pk = table.def.primary_key();
        if pk.is_none() {
            let text = "UPDATE needs a table with a PRIMARY KEY (rows without one cannot be named)";
            return Err(ApiError::new(ErrorCode::Unsupported, text));
        }
        let writer = partition.writer().map_err(errors::from_versions)?;
        let mut encoded = Vec::new();
        for_each_live_row(
            &partition,
            &table.def,
            plan.filter().key_values(),
            Seq::MAX,
            |row, system| {
                if plan.matches(row, system).map_err(errors::from_sql)? {
                    let values = plan.apply(row, system).map_err(errors::from_sql)?;
                    let key = key_of(pk, &values)?;
                    let bytes = encode_row(&values).map_err(|e| ApiError::internal(&e))?;
                    encoded.push(Encoded {
                        key,
                        row: Some(bytes),
                    });
                }
                Ok(true)
            },
        )?;
        self.write_all(writer, &encoded)?;
        self.committed(&table, owner, &partition);
        Ok(affected(encoded.len(), "updated"))
    }

    pub(super) fn delete(
        &self,
        caller: &Caller,
        delete: &Delete,
        params: &[Value],
    ) -> EngineResult {
        let plan = DeletePlan::compile(delete, &*self.catalog, params).map_err(errors::from_sql)?;
        let table = self.table(plan.table().name())?;
        let owner = self.owner_of(caller, &table, Privilege::Delete)?;
        let partition = self
            .tables
            .partition(&table, owner)
            .map_err(errors::from_versions)?;
        let pk = table.def.primary_key();
        let writer = partition.writer().map_err(errors::from_versions)?;
        let mut encoded = Vec::new();
        for_each_live_row(
            &partition,
            &table.def,
            plan.filter().key_values(),
            Seq::MAX,
            |row, system| {
                if plan.matches(row, system).map_err(errors::from_sql)? {
                    let values = row.to_values(table.def.columns().len());
                    encoded.push(Encoded {
                        key: key_of(pk, &values)?,
                        row: None,
                    });
                }
                Ok(true)
            },
        )?;
        if pk.is_none() && !encoded.is_empty() {
            let text = "DELETE needs a table with a PRIMARY KEY (rows without one cannot be named)";
            return Err(ApiError::new(ErrorCode::Unsupported, text));
        }
        self.write_all(writer, &encoded)?;
        self.committed(&table, owner, &partition);
        Ok(affected(encoded.len(), "deleted"))
    }

    /// A statement's batch is durable in `partition` (see [`super::hooks::CommitHooks`]).
    fn committed(&self, table: &CatalogTable, owner: RowOwner<'_>, partition: &KeyedPartition) {
        match partition_id(table, owner) {
            Ok(id) => self.hooks.rows_written(table, id, partition),
            Err(error) => {
                // Not reachable for a partition that was just written; the feed still wakes.
                tracing::warn!(table = %table.def.name(), %error, "no partition id for a write");
                self.hooks.realtime.committed(partition);
            }
        }
    }

    /// Write an UPDATE's or DELETE's versions under the lock its scan was made under, so a
    /// concurrent statement cannot slip a version in between (no lost update).
    fn write_all(&self, writer: PartitionWriter<'_>, encoded: &[Encoded]) -> Result<(), ApiError> {
        writer
            .append_holding_lock(&as_writes(encoded))
            .map_err(errors::from_versions)?;
        self.metrics.add_rows_written(encoded.len() as u64);
        Ok(())
    }
}

pub(super) fn as_writes(encoded: &[Encoded]) -> Vec<RowWrite<'_>> {
    encoded
        .iter()
        .map(|e| match &e.row {
            Some(row) => RowWrite::Put { key: &e.key, row },
            None => RowWrite::Delete { key: &e.key },
        })
        .collect()
}

fn key_of(primary_key: Option<usize>, values: &[Value]) -> Result<Vec<u8>, ApiError> {
    match primary_key.and_then(|index| values.get(index)) {
        Some(value) => encode_key(value.as_ref()).ok_or_else(|| bad_key(value)),
        None => Ok(Vec::new()),
    }
}

fn bad_key(value: &Value) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidValue,
        format!("{value:?} cannot be a primary key"),
    )
}

pub(super) fn affected(rows: usize, what: &str) -> StatementResult {
    StatementResult {
        row_count: rows as u64,
        message: Some(format!("{rows} row(s) {what}")),
        ..StatementResult::default()
    }
}
