//! `strand-broker`: the Strand server. It owns the catalog, authentication, tables over log
//! partitions, the HTTP SQL endpoint, the QUIC listener ([`quic`]), configuration and metrics,
//! and the `strand` binary.
//!
//! It does not own the on-disk log format (`strand-log`) or SQL parsing and plans
//! (`strand-sql-view`).
//!
//! Entry points: [`config::load`] then [`server::Server::start`] and [`server::Server::run`]
//! (what `strand serve` does); [`users::UserDirectory`] for user and grant changes;
//! [`server::Broker`], the composition root that builds every part once.

pub mod api;
pub mod auth;
pub(crate) mod catalog;
pub mod cluster;
pub mod config;
pub(crate) mod connections;
pub(crate) mod engine;
pub mod error;
pub(crate) mod forwarding;
pub(crate) mod http;
pub mod limits;
pub(crate) mod metrics;
pub(crate) mod periodic;
pub(crate) mod quic;
pub(crate) mod realtime;
pub(crate) mod retention;
pub mod server;
pub(crate) mod session;
pub mod sql;
pub(crate) mod storage;
pub mod sys;
pub(crate) mod tables;
pub(crate) mod throttle;
pub(crate) mod topics;
pub mod users;
pub(crate) mod ws;

pub use error::{ApiError, ErrorCode, Position};
pub use session::{AuthMethod, Session};
pub use sql::{Column, SqlEngine, StatementResult};
pub use users::{RowsLayout, User, UserDirectory, UserError, UserIncarnation};
