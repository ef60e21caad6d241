//! Catalog types: validated names, table definitions, users, roles and privileges, and the
//! [`CatalogView`] trait through which plans look tables up.
//!
//! It owns the rules a definition must keep (a primary key for USER and SHARED tables, no
//! duplicate or reserved column names, ...). It does not own where the catalog lives or how
//! it is persisted: the broker implements [`CatalogView`] over its own store.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

mod default;

pub use default::ColumnDefault;

use crate::error::{code, Result, SqlError};
use crate::limits;
use crate::value::DataType;

/// Name of the system column holding a row version's `_seq` (BIGINT).
pub const SEQ_COLUMN: &str = "_seq";
/// Name of the system column telling whether a row version is a delete tombstone (BOOLEAN).
pub const DELETED_COLUMN: &str = "_deleted";

/// An identifier: a namespace, table, column or topic name. ASCII letters, digits and `_`,
/// not starting with a digit, at most [`limits::NAME_BYTES_MAX`] bytes (names become file
/// names in the broker). Unquoted SQL identifiers arrive here folded to lower case.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// Validates a name (`invalid_name` otherwise).
    pub fn new(text: &str) -> Result<Name> {
        let mut chars = text.chars();
        let valid_start = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_start || !valid_rest || text.len() > limits::NAME_BYTES_MAX {
            return Err(SqlError::new(
                code::INVALID_NAME,
                format!(
                    "invalid name '{text}': use letters, digits and _, not starting with a \
                     digit, at most {} bytes",
                    limits::NAME_BYTES_MAX
                ),
                None,
            ));
        }
        Ok(Name(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = SqlError;
    fn try_from(text: String) -> Result<Name> {
        Name::new(&text)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A table, always qualified by its namespace: `ns.table`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TableName {
    /// The namespace.
    pub namespace: Name,
    /// The table within the namespace.
    pub table: Name,
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.table)
    }
}

/// A topic, always qualified by its namespace: `ns.topic`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TopicName {
    /// The namespace.
    pub namespace: Name,
    /// The topic within the namespace.
    pub topic: Name,
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.topic)
    }
}

/// The three table types (docs/sql.md, "Tables").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TableKind {
    /// Every row belongs to one user; one partition per (table, user).
    User,
    /// Rows visible to every user allowed to read the table.
    Shared,
    /// Like USER, rows expire after `ttl_seconds`.
    Stream {
        /// Time to live of a row version, in seconds (at least 1).
        ttl_seconds: u64,
    },
}

impl TableKind {
    /// `USER`, `SHARED` or `STREAM`.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::User => "USER",
            TableKind::Shared => "SHARED",
            TableKind::Stream { .. } => "STREAM",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnDef {
    /// The column name.
    pub name: Name,
    /// The column type.
    pub data_type: DataType,
    /// Whether NULL is refused (always true for the primary key).
    pub not_null: bool,
    /// What an INSERT that omits the column writes (absent from catalogs written before
    /// defaults existed, which therefore still load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ColumnDefault>,
}

/// A validated table definition. Columns keep their order: stored rows hold one field per
/// column in this order, and `ALTER TABLE ADD COLUMN` only appends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "TableDefParts")]
pub struct TableDef {
    name: TableName,
    kind: TableKind,
    columns: Vec<ColumnDef>,
    primary_key: Option<usize>,
}

#[derive(serde::Deserialize)]
struct TableDefParts {
    name: TableName,
    kind: TableKind,
    columns: Vec<ColumnDef>,
    primary_key: Option<usize>,
}

impl TryFrom<TableDefParts> for TableDef {
    type Error = SqlError;
    fn try_from(parts: TableDefParts) -> Result<TableDef> {
        TableDef::new(parts.name, parts.kind, parts.columns, parts.primary_key)
    }
}

impl TableDef {
    /// Validates a definition (`invalid_definition` otherwise): at least one column, at most
    /// [`limits::COLUMNS_PER_TABLE_MAX`], unique names, no system column names, a primary key
    /// (one column, not DOUBLE, DECIMAL or JSON) for USER and SHARED tables, a TTL for STREAM tables.
    /// The primary key column is made NOT NULL.
    pub fn new(
        name: TableName,
        kind: TableKind,
        mut columns: Vec<ColumnDef>,
        primary_key: Option<usize>,
    ) -> Result<TableDef> {
        if columns.is_empty() {
            return Err(invalid(format!("table {name} needs at least one column")));
        }
        check_column_count(columns.len())?;
        for (index, column) in columns.iter().enumerate() {
            check_column_name(column, &columns[..index])?;
        }
        for column in &mut columns {
            if let Some(default) = column.default.take() {
                let name = column.name.as_str();
                column.default = Some(default.for_column(name, column.data_type)?);
            }
        }
        if let TableKind::Stream { ttl_seconds } = kind {
            if ttl_seconds == 0 || ttl_seconds > limits::TTL_SECONDS_MAX {
                return Err(invalid(format!(
                    "STREAM table {name} needs TTL_SECONDS between 1 and {}",
                    limits::TTL_SECONDS_MAX
                )));
            }
        }
        match primary_key {
            None if kind != (TableKind::User) && kind != TableKind::Shared => {}
            None => {
                return Err(invalid(format!(
                    "a {} table needs a PRIMARY KEY; table {name} has none",
                    kind.name()
                )))
            }
            Some(index) => {
                let column = columns.get_mut(index).ok_or_else(|| {
                    invalid(format!(
                        "primary key column {index} of {name} does not exist"
                    ))
                })?;
                if matches!(
                    column.data_type,
                    DataType::Double | DataType::Json | DataType::Decimal { .. }
                ) {
                    return Err(invalid(format!(
                        "primary key column {} cannot be {}",
                        column.name, column.data_type
                    )));
                }
                column.not_null = true;
            }
        }
        Ok(TableDef {
            name,
            kind,
            columns,
            primary_key,
        })
    }

    /// The table's name.
    pub fn name(&self) -> &TableName {
        &self.name
    }

    /// USER, SHARED or STREAM.
    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// The columns in stored order.
    pub fn columns(&self) -> &[ColumnDef] {
        &self.columns
    }

    /// Index of the primary key column, if the table has one.
    pub fn primary_key(&self) -> Option<usize> {
        self.primary_key
    }

    /// Index of the column with this name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|column| column.name.as_str() == name)
    }

    /// The definition after `ALTER TABLE ... ADD COLUMN`: the column is appended. A new column
    /// cannot be NOT NULL, since rows written before it read it as NULL.
    pub fn with_added_column(&self, column: ColumnDef) -> Result<TableDef> {
        if column.default.is_some() {
            return Err(SqlError::unsupported(
                format!(
                    "ADD COLUMN {} with a DEFAULT (rows written before it would read NULL, \
                     not the default): add the column without one",
                    column.name
                ),
                None,
            ));
        }
        if column.not_null {
            return Err(invalid(format!(
                "added column {} cannot be NOT NULL: existing rows read it as NULL",
                column.name
            )));
        }
        check_column_count(self.columns.len() + 1)?;
        check_column_name(&column, &self.columns)?;
        let mut table = self.clone();
        table.columns.push(column);
        Ok(table)
    }
}

fn check_column_count(count: usize) -> Result<()> {
    if count > limits::COLUMNS_PER_TABLE_MAX {
        return Err(SqlError::limit(
            "number of columns",
            limits::COLUMNS_PER_TABLE_MAX,
            None,
        ));
    }
    Ok(())
}

fn check_column_name(column: &ColumnDef, earlier: &[ColumnDef]) -> Result<()> {
    let name = column.name.as_str();
    if name == SEQ_COLUMN || name == DELETED_COLUMN {
        return Err(invalid(format!(
            "column name {name} is reserved for the system column"
        )));
    }
    if earlier.iter().any(|other| other.name == column.name) {
        return Err(invalid(format!("column {name} is defined twice")));
    }
    Ok(())
}

fn invalid(message: String) -> SqlError {
    SqlError::new(code::INVALID_DEFINITION, message, None)
}

/// How plans find tables. The broker implements it over its catalog; a single [`TableDef`]
/// and maps of definitions implement it too (handy in tests).
pub trait CatalogView {
    /// The definition of a table, if it exists.
    fn table(&self, name: &TableName) -> Option<Arc<TableDef>>;
}

impl CatalogView for TableDef {
    fn table(&self, name: &TableName) -> Option<Arc<TableDef>> {
        (self.name == *name).then(|| Arc::new(self.clone()))
    }
}

impl CatalogView for HashMap<TableName, Arc<TableDef>> {
    fn table(&self, name: &TableName) -> Option<Arc<TableDef>> {
        self.get(name).cloned()
    }
}

impl CatalogView for BTreeMap<TableName, Arc<TableDef>> {
    fn table(&self, name: &TableName) -> Option<Arc<TableDef>> {
        self.get(name).cloned()
    }
}

#[cfg(test)]
mod tests;
