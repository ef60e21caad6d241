//! How engine failures reach the client: SQL errors keep their code and position, a full disk
//! becomes `storage_full`, other storage failures `internal` (details only in the server log).

use strand_sql_view::SqlError;

use crate::catalog::CatalogError;
use crate::error::{ApiError, ErrorCode};
use crate::tables::versions::VersionError;
use crate::users::UserError;

/// Failures while opening the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("consumer group offsets: {0}")]
    GroupOffsets(#[from] crate::topics::OffsetsError),
    #[error("cannot start a background thread: {0}")]
    Thread(std::io::Error),
}

/// Code used when an INSERT meets a live row with the same primary key.
pub const DUPLICATE_KEY: &str = "duplicate_key";

pub(crate) fn from_sql(error: SqlError) -> ApiError {
    let api = ApiError::new(ErrorCode::Sql(error.code), error.message);
    match error.position {
        Some(p) => api.at(clamp(p.line), clamp(p.column)),
        None => api,
    }
}

fn clamp(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(crate) fn from_versions(error: VersionError) -> ApiError {
    match error {
        VersionError::KeyRepeated => ApiError::new(
            ErrorCode::Sql(DUPLICATE_KEY),
            "the same primary key appears twice in one statement",
        ),
        VersionError::Log(error) => ApiError::from_log(&error),
        VersionError::Replication(error) => from_replication(&error),
    }
}

pub(crate) fn from_catalog(error: CatalogError) -> ApiError {
    match &error {
        CatalogError::Log(log) => ApiError::from_log(log),
        CatalogError::BadRecord { .. } => ApiError::internal(&error),
        CatalogError::Replication(replication) => from_replication(replication),
    }
}

pub(crate) fn from_replication(error: &crate::cluster::writer::ReplicationError) -> ApiError {
    ApiError::from_replication(error)
}

pub(crate) fn from_users(error: UserError) -> ApiError {
    ApiError::from(error)
}
