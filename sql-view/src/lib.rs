//! `strand-sql-view`: SQL text to plans. It owns parsing (sqlparser), the catalog types
//! (namespaces, tables, columns, users, grants), value types, the stored row format and the
//! compiled plans (projection + filter programs) evaluated over stored rows.
//!
//! It does not own storage (that is `strand-log`), the network, authentication or where the
//! catalog is persisted (that is `strand-broker`).
