//! Our own statement types: what [`crate::parse_statements`] returns. DDL and user statements
//! come out validated (a [`TableDef`] that keeps every rule, checked names); DML and SELECT
//! keep expressions untyped, with positions, until a plan is compiled against a table.
//!
//! It does not own parsing (`parse/`) or typing and evaluation (`plan/`).

use crate::catalog::{ColumnDef, Name, TableDef, TableName, TopicName};
use crate::error::Position;
use crate::users::{Password, Privilege, Role, UserName};

mod expr;

pub use expr::{BinaryOp, Expr, ExprKind, Literal, UnaryOp};

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE NAMESPACE [IF NOT EXISTS] ns`
    CreateNamespace { name: Name, if_not_exists: bool },
    /// `DROP NAMESPACE [IF EXISTS] ns`
    DropNamespace { name: Name, if_exists: bool },
    /// `CREATE TABLE [IF NOT EXISTS] ns.t (...) WITH (TYPE = ..., TTL_SECONDS = n)`
    CreateTable {
        table: TableDef,
        if_not_exists: bool,
    },
    /// `DROP TABLE [IF EXISTS] ns.t`
    DropTable { table: TableRef, if_exists: bool },
    /// `ALTER TABLE ns.t ADD [COLUMN] [IF NOT EXISTS] name TYPE` (never NOT NULL)
    AddColumn {
        table: TableRef,
        column: ColumnDef,
        if_not_exists: bool,
    },
    /// `SHOW NAMESPACES`
    ShowNamespaces,
    /// `SHOW USERS` (administrators only; the broker decides)
    ShowUsers,
    /// `SHOW TABLES [IN ns]`
    ShowTables { namespace: Option<Name> },
    /// `SHOW TOPICS [IN ns]`
    ShowTopics { namespace: Option<Name> },
    /// `DESCRIBE [TABLE] ns.t`
    DescribeTable { table: TableRef },
    /// `CREATE TOPIC [IF NOT EXISTS] ns.t [WITH (PARTITIONS = n, RETENTION_SECONDS = n)]`
    CreateTopic(CreateTopic),
    /// `DROP TOPIC [IF EXISTS] ns.t`
    DropTopic { topic: TopicName, if_exists: bool },
    /// `ALTER TOPIC ns.t ADD SOURCE ns.table [ON INSERT, UPDATE, DELETE]`
    AddTopicSource {
        topic: TopicName,
        table: TableRef,
        operations: Vec<ChangeKind>,
    },
    /// `ALTER TOPIC ns.t DROP SOURCE [IF EXISTS] ns.table`
    DropTopicSource {
        topic: TopicName,
        table: TableRef,
        if_exists: bool,
    },
    /// `SELECT ...`
    Select(Select),
    /// `INSERT INTO ...`
    Insert(Insert),
    /// `UPDATE ... SET ... [WHERE ...]`
    Update(Update),
    /// `DELETE FROM ... [WHERE ...]`
    Delete(Delete),
    /// `CREATE USER [IF NOT EXISTS] 'alice' WITH PASSWORD '...' [ROLE r]` (role defaults to
    /// `user`)
    CreateUser {
        user: UserName,
        password: Password,
        role: Role,
        if_not_exists: bool,
    },
    /// `ALTER USER 'alice' SET PASSWORD '...'` or `SET ROLE r`
    AlterUser { user: UserName, change: UserChange },
    /// `DROP USER [IF EXISTS] 'alice'`
    DropUser { user: UserName, if_exists: bool },
    /// `GRANT SELECT, INSERT, UPDATE, DELETE | ALL ON [TABLE|TOPIC] ns.t TO 'alice'`
    Grant(Grant),
    /// `REVOKE ... ON ns.t FROM 'alice'`
    Revoke(Grant),
    /// `EXECUTE AS USER 'alice' (<statement>)`
    ExecuteAs {
        user: UserName,
        statement: Box<Statement>,
    },
}

/// What `ALTER USER` changes.
#[derive(Debug, Clone, PartialEq)]
pub enum UserChange {
    /// `SET PASSWORD '...'`
    Password(Password),
    /// `SET ROLE r`
    Role(Role),
}

/// A `GRANT` or `REVOKE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The privileges, without duplicates, in statement order.
    pub privileges: Vec<Privilege>,
    /// The table or topic (`ns.name`); the catalog decides which it is.
    pub object: TableRef,
    /// Who receives or loses them.
    pub user: UserName,
}

/// A `CREATE TOPIC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopic {
    /// The topic.
    pub topic: TopicName,
    /// `PARTITIONS = n`, if given.
    pub partitions: Option<u32>,
    /// `RETENTION_SECONDS = n`, if given.
    pub retention_seconds: Option<u64>,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
}

/// A change kind a topic source forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Inserted rows.
    Insert,
    /// Updated rows.
    Update,
    /// Deleted rows.
    Delete,
}

/// A table named in a statement, with where it was named (for `unknown_table`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// The qualified name.
    pub name: TableName,
    /// Position of the name in the SQL text.
    pub position: Option<Position>,
}

/// A parsed `SELECT` over one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// The table of `FROM`.
    pub table: TableRef,
    /// `FROM ns.t AS alias`.
    pub alias: Option<String>,
    /// The SELECT list.
    pub projection: Vec<SelectItem>,
    /// `WHERE`.
    pub filter: Option<Expr>,
    /// `ORDER BY`.
    pub order_by: Vec<OrderItem>,
    /// `LIMIT` (a constant or a parameter).
    pub limit: Option<Expr>,
    /// `OFFSET` (a constant or a parameter).
    pub offset: Option<Expr>,
}

/// One item of the SELECT list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*` or `t.*`: the table's columns, without system columns.
    Wildcard,
    /// An expression, optionally named with `AS`.
    Expr {
        /// The expression.
        expr: Expr,
        /// `AS alias`.
        alias: Option<String>,
        /// The expression as written, the column name when there is no alias.
        text: String,
    },
}

/// One `ORDER BY` key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    /// The key: an expression, an output column name or alias, or a 1-based output position.
    pub expr: Expr,
    /// `DESC`.
    pub descending: bool,
    /// `NULLS FIRST` / `NULLS LAST`; by default NULLs sort as larger than every value.
    pub nulls_first: Option<bool>,
}

/// A parsed `INSERT`.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    /// The table.
    pub table: TableRef,
    /// The column list, if given (names with positions).
    pub columns: Option<Vec<(String, Option<Position>)>>,
    /// The rows of `VALUES`.
    pub rows: Vec<Vec<Expr>>,
}

/// A parsed `UPDATE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The table.
    pub table: TableRef,
    /// `UPDATE ns.t AS alias`.
    pub alias: Option<String>,
    /// `SET column = expr, ...`.
    pub assignments: Vec<Assignment>,
    /// `WHERE`.
    pub filter: Option<Expr>,
}

/// One `SET column = expr`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The column name.
    pub column: String,
    /// Where the column was named.
    pub position: Option<Position>,
    /// The new value.
    pub value: Expr,
}

/// A parsed `DELETE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    /// The table.
    pub table: TableRef,
    /// `DELETE FROM ns.t AS alias`.
    pub alias: Option<String>,
    /// `WHERE`.
    pub filter: Option<Expr>,
}
