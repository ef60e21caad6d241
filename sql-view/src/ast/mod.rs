//! Our own statement types: what [`crate::parse_statements`] returns. DDL and user statements
//! come out validated (a [`TableDef`] that keeps every rule, checked names); DML and SELECT
//! keep expressions untyped, with positions, until a plan is compiled against a table.
//!
//! It does not own parsing (`parse/`) or typing and evaluation (`plan/`).

use crate::catalog::{ColumnDef, Name, TableDef, TableName, TopicName};
use crate::error::Position;
use crate::users::{Password, Privilege, Role, UserName};

mod expr;

pub use expr::{AggregateFunction, BinaryOp, Expr, ExprKind, Literal, ScalarFunction, UnaryOp};

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE NAMESPACE [IF NOT EXISTS] ns`
    CreateNamespace {
        /// The namespace to create.
        name: Name,
        /// `IF NOT EXISTS`: an existing namespace is not an error.
        if_not_exists: bool,
    },
    /// `DROP NAMESPACE [IF EXISTS] ns`
    DropNamespace {
        /// The namespace to drop.
        name: Name,
        /// `IF EXISTS`: a missing namespace is not an error.
        if_exists: bool,
    },
    /// `CREATE TABLE [IF NOT EXISTS] ns.t (...) WITH (TYPE = ..., TTL_SECONDS = n)`
    CreateTable {
        /// The table as defined, validated (names, types, primary key, kind).
        table: TableDef,
        /// `IF NOT EXISTS`: an existing table is not an error.
        if_not_exists: bool,
    },
    /// `DROP TABLE [IF EXISTS] ns.t`
    DropTable {
        /// The table to drop.
        table: TableRef,
        /// `IF EXISTS`: a missing table is not an error.
        if_exists: bool,
    },
    /// `ALTER TABLE ns.t ADD [COLUMN] [IF NOT EXISTS] name TYPE` (never NOT NULL)
    AddColumn {
        /// The table to alter.
        table: TableRef,
        /// The new column, appended after the existing ones.
        column: ColumnDef,
        /// `IF NOT EXISTS`: an existing column of that name is not an error.
        if_not_exists: bool,
    },
    /// `SHOW NAMESPACES`
    ShowNamespaces,
    /// `SHOW USERS` (administrators only; the broker decides)
    ShowUsers,
    /// `SHOW TABLES [IN ns]`
    ShowTables {
        /// `IN ns`: only that namespace's tables.
        namespace: Option<Name>,
    },
    /// `SHOW TOPICS [IN ns]`
    ShowTopics {
        /// `IN ns`: only that namespace's topics.
        namespace: Option<Name>,
    },
    /// `DESCRIBE [TABLE] ns.t`
    DescribeTable {
        /// The table to describe.
        table: TableRef,
    },
    /// `CREATE TOPIC [IF NOT EXISTS] ns.t [WITH (PARTITIONS = n, RETENTION_SECONDS = n)]`
    CreateTopic(CreateTopic),
    /// `DROP TOPIC [IF EXISTS] ns.t`
    DropTopic {
        /// The topic to drop.
        topic: TopicName,
        /// `IF EXISTS`: a missing topic is not an error.
        if_exists: bool,
    },
    /// `ALTER TOPIC ns.t ADD SOURCE ns.table [ON INSERT, UPDATE, DELETE]`
    AddTopicSource {
        /// The topic that receives the changes.
        topic: TopicName,
        /// The table whose changes it receives.
        table: TableRef,
        /// The kinds of change forwarded (`ON ...`; all three when not given).
        operations: Vec<ChangeKind>,
    },
    /// `ALTER TOPIC ns.t DROP SOURCE [IF EXISTS] ns.table`
    DropTopicSource {
        /// The topic that stops receiving the changes.
        topic: TopicName,
        /// The table whose changes stop.
        table: TableRef,
        /// `IF EXISTS`: a table that is not a source of the topic is not an error.
        if_exists: bool,
    },
    /// `SELECT ...`
    /// (Boxed: the largest statement, kept out of the others.)
    Select(Box<Select>),
    /// `INSERT INTO ...`
    Insert(Insert),
    /// `UPDATE ... SET ... [WHERE ...]`
    Update(Update),
    /// `DELETE FROM ... [WHERE ...]`
    Delete(Delete),
    /// `CREATE USER [IF NOT EXISTS] 'alice' WITH PASSWORD '...' [ROLE r]` (role defaults to
    /// `user`)
    CreateUser {
        /// The new user's name.
        user: UserName,
        /// The password, validated; the broker stores only its hash.
        password: Password,
        /// `ROLE r`, or `user` when not given.
        role: Role,
        /// `IF NOT EXISTS`: an existing user is not an error.
        if_not_exists: bool,
    },
    /// `ALTER USER 'alice' SET PASSWORD '...'` or `SET ROLE r`
    AlterUser {
        /// The user to change.
        user: UserName,
        /// Their new password or role.
        change: UserChange,
    },
    /// `DROP USER [IF EXISTS] 'alice'`
    DropUser {
        /// The user to drop.
        user: UserName,
        /// `IF EXISTS`: a missing user is not an error.
        if_exists: bool,
    },
    /// `GRANT SELECT, INSERT, UPDATE, DELETE | ALL ON [TABLE|TOPIC] ns.t TO 'alice'`
    Grant(Grant),
    /// `REVOKE ... ON ns.t FROM 'alice'`
    Revoke(Grant),
    /// `EXECUTE AS USER 'alice' (<statement>)`
    ExecuteAs {
        /// The user whose rows and privileges the statement runs with.
        user: UserName,
        /// The statement to run (not itself an `EXECUTE AS`).
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

/// A parsed `SELECT` over one table, or several joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// The table of `FROM` (the first one when there are joins).
    pub table: TableRef,
    /// `FROM ns.t AS alias`.
    pub alias: Option<String>,
    /// `JOIN ... ON ...`, in order (empty for one table).
    pub joins: Vec<Join>,
    /// The SELECT list.
    pub projection: Vec<SelectItem>,
    /// `WHERE`.
    pub filter: Option<Expr>,
    /// `GROUP BY` expressions (empty without one).
    pub group_by: Vec<Expr>,
    /// `HAVING` (boxed: a SELECT without one stays small).
    pub having: Option<Box<Expr>>,
    /// `SELECT DISTINCT`.
    pub distinct: bool,
    /// `ORDER BY`.
    pub order_by: Vec<OrderItem>,
    /// `LIMIT` (a constant or a parameter).
    pub limit: Option<Expr>,
    /// `OFFSET` (a constant or a parameter).
    pub offset: Option<Expr>,
}

/// One `[INNER | LEFT [OUTER]] JOIN ns.t [AS alias] ON condition`.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// The joined table.
    pub table: TableRef,
    /// `AS alias`.
    pub alias: Option<String>,
    /// INNER or LEFT.
    pub kind: JoinKind,
    /// The `ON` condition.
    pub on: Expr,
}

/// The kind of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// `[INNER] JOIN`: only pairs that satisfy ON.
    Inner,
    /// `LEFT [OUTER] JOIN`: also each row with no partner, with NULLs for the joined table.
    Left,
}

/// One item of the SELECT list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*` (and, over one table, `t.*`): the columns, without system columns.
    Wildcard,
    /// `t.*` in a join: the columns of the table named or aliased `t`.
    QualifiedWildcard {
        /// The name as written: `[alias]`, `[table]` or `[namespace, table]`.
        qualifier: Vec<String>,
        /// Where it was written.
        position: Option<Position>,
    },
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
