//! The settings sections of [`super::ServeConfig`] that are each resolved from several keys:
//! connection limits and timeouts, failed-login limits, and background maintenance (retention,
//! compaction, TTL sweeps, fsync interval).

use std::time::Duration;

use super::{bounded, pick, AttemptLimits, ConfigError, ConfigLayer, ConnectionConfig};
use super::{GroupLimits, MaintenanceConfig, Origin};
use crate::limits::{
    AUTH_FAILURES_MAX, AUTH_FAILURE_WINDOW_MS_DEFAULT, AUTH_FAILURE_WINDOW_MS_MAX,
    AUTH_TIMEOUT_MS_DEFAULT, COMPACTION_INTERVAL_MS_DEFAULT, COMPACTION_INTERVAL_MS_MAX,
    COMPACTION_INTERVAL_MS_MIN, COMPACTION_MAX_AGE_MS_DEFAULT, COMPACTION_MIN_BYTES_DEFAULT,
    CONNECTIONS_MAX_DEFAULT, CONNECTIONS_MAX_MAX, CONNECTIONS_PER_USER_MAX_DEFAULT,
    CONNECTION_TIMEOUT_MS_MAX, CONNECTION_TIMEOUT_MS_MIN, DURATION_MS_MAX,
    HTTP_BODY_TIMEOUT_MS_DEFAULT, HTTP_HEADER_TIMEOUT_MS_DEFAULT, QUIC_FRAME_BUFFER_BYTES_DEFAULT,
    QUIC_FRAME_BUFFER_BYTES_MAX, QUIC_FRAME_BUFFER_BYTES_MIN, TOMBSTONE_RETENTION_MS_DEFAULT,
    TTL_SWEEP_INTERVAL_MS_DEFAULT, TTL_SWEEP_INTERVAL_MS_MAX, TTL_SWEEP_INTERVAL_MS_MIN,
    UNAUTHENTICATED_CONNECTIONS_MAX_DEFAULT,
};

pub(super) fn auth_attempts(
    layers: &[(Origin, &ConfigLayer)],
) -> Result<AttemptLimits, ConfigError> {
    let defaults = AttemptLimits::default();
    let failures =
        |field: fn(&ConfigLayer) -> &Option<u64>, key, default: u32| match pick(layers, field) {
            None => Ok(default),
            Some((n, origin)) => bounded(n, 1, u64::from(AUTH_FAILURES_MAX), origin, key)
                .map(|n| u32::try_from(n).unwrap_or(AUTH_FAILURES_MAX)),
        };
    let window_ms = match pick(layers, |l| &l.auth_failure_window_ms) {
        None => AUTH_FAILURE_WINDOW_MS_DEFAULT,
        Some((ms, origin)) => bounded(
            ms,
            1,
            AUTH_FAILURE_WINDOW_MS_MAX,
            origin,
            "auth_failure_window_ms",
        )?,
    };
    Ok(AttemptLimits {
        per_user: failures(
            |l| &l.auth_failures_per_user_max,
            "auth_failures_per_user_max",
            defaults.per_user,
        )?,
        per_address: failures(
            |l| &l.auth_failures_per_address_max,
            "auth_failures_per_address_max",
            defaults.per_address,
        )?,
        window: Duration::from_millis(window_ms),
    })
}

pub(super) fn connections(
    layers: &[(Origin, &ConfigLayer)],
) -> Result<ConnectionConfig, ConfigError> {
    let setting =
        |field: fn(&ConfigLayer) -> &Option<u64>, key, default, min, max| match pick(layers, field)
        {
            None => Ok(default),
            Some((value, origin)) => bounded(value, min, max, origin, key),
        };
    let count = |field, key, default| {
        setting(field, key, default, 1, CONNECTIONS_MAX_MAX)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    let (timeout_min, timeout_max) = (CONNECTION_TIMEOUT_MS_MIN, CONNECTION_TIMEOUT_MS_MAX);
    let timeout = |field, key, default| {
        setting(field, key, default, timeout_min, timeout_max).map(Duration::from_millis)
    };
    Ok(ConnectionConfig {
        connections_max: count(
            |l| &l.connections_max,
            "connections_max",
            CONNECTIONS_MAX_DEFAULT,
        )?,
        unauthenticated_connections_max: count(
            |l| &l.unauthenticated_connections_max,
            "unauthenticated_connections_max",
            UNAUTHENTICATED_CONNECTIONS_MAX_DEFAULT,
        )?,
        connections_per_user_max: count(
            |l| &l.connections_per_user_max,
            "connections_per_user_max",
            CONNECTIONS_PER_USER_MAX_DEFAULT,
        )?,
        auth_timeout: timeout(
            |l| &l.auth_timeout_ms,
            "auth_timeout_ms",
            AUTH_TIMEOUT_MS_DEFAULT,
        )?,
        http_header_timeout: timeout(
            |l| &l.http_header_timeout_ms,
            "http_header_timeout_ms",
            HTTP_HEADER_TIMEOUT_MS_DEFAULT,
        )?,
        http_body_timeout: timeout(
            |l| &l.http_body_timeout_ms,
            "http_body_timeout_ms",
            HTTP_BODY_TIMEOUT_MS_DEFAULT,
        )?,
        quic_frame_buffer_bytes: setting(
            |l| &l.quic_frame_buffer_bytes,
            "quic_frame_buffer_bytes",
            QUIC_FRAME_BUFFER_BYTES_DEFAULT,
            QUIC_FRAME_BUFFER_BYTES_MIN,
            QUIC_FRAME_BUFFER_BYTES_MAX,
        )?,
    })
}

pub(super) fn maintenance(
    layers: &[(Origin, &ConfigLayer)],
) -> Result<MaintenanceConfig, ConfigError> {
    let setting =
        |field: fn(&ConfigLayer) -> &Option<u64>, key, default, min, max| match pick(layers, field)
        {
            None => Ok(default),
            Some((value, origin)) => bounded(value, min, max, origin, key),
        };
    let millis = Duration::from_millis;
    Ok(MaintenanceConfig {
        ttl_sweep_interval: millis(setting(
            |l| &l.ttl_sweep_interval_ms,
            "ttl_sweep_interval_ms",
            TTL_SWEEP_INTERVAL_MS_DEFAULT,
            TTL_SWEEP_INTERVAL_MS_MIN,
            TTL_SWEEP_INTERVAL_MS_MAX,
        )?),
        compaction_interval: millis(setting(
            |l| &l.compaction_interval_ms,
            "compaction_interval_ms",
            COMPACTION_INTERVAL_MS_DEFAULT,
            COMPACTION_INTERVAL_MS_MIN,
            COMPACTION_INTERVAL_MS_MAX,
        )?),
        compaction_min_bytes: setting(
            |l| &l.compaction_min_bytes,
            "compaction_min_bytes",
            COMPACTION_MIN_BYTES_DEFAULT,
            0,
            u64::MAX,
        )?,
        compaction_max_age: millis(setting(
            |l| &l.compaction_max_age_ms,
            "compaction_max_age_ms",
            COMPACTION_MAX_AGE_MS_DEFAULT,
            0,
            DURATION_MS_MAX,
        )?),
        tombstone_retention: millis(setting(
            |l| &l.tombstone_retention_ms,
            "tombstone_retention_ms",
            TOMBSTONE_RETENTION_MS_DEFAULT,
            0,
            DURATION_MS_MAX,
        )?),
        groups: GroupLimits {
            groups_per_user_max: usize::try_from(setting(
                |l| &l.groups_per_user_max,
                "groups_per_user_max",
                crate::limits::GROUPS_PER_USER_MAX_DEFAULT as u64,
                1,
                crate::limits::GROUPS_PER_USER_MAX_MAX,
            )?)
            .unwrap_or(usize::MAX),
            offsets_retention: millis(setting(
                |l| &l.group_offsets_retention_ms,
                "group_offsets_retention_ms",
                crate::limits::GROUP_OFFSETS_RETENTION_MS_DEFAULT,
                0,
                DURATION_MS_MAX,
            )?),
        },
    })
}
