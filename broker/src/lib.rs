//! `strand-broker`: the Strand server. It owns the catalog, authentication, tables over log
//! partitions, the HTTP SQL endpoint, configuration and metrics, and the `strand` binary.
//!
//! It does not own the on-disk log format (`strand-log`) or SQL parsing and plans
//! (`strand-sql-view`).
