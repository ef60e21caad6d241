//! Unit tests of configuration merging: precedence, defaults, validation, file parsing.

use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> ConfigLayer {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ConfigLayer::from_env(|name| map.get(name).cloned()).expect("valid test environment")
}

fn file(text: &str) -> ConfigLayer {
    ConfigLayer::from_toml(Path::new("test.toml"), text).expect("valid test file")
}

#[test]
fn embedded_defaults_apply_when_nothing_is_set() {
    let none = ConfigLayer::default();
    let config = resolve(&none, &none, &none).expect("defaults are valid");
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(config.quic_addr.to_string(), "127.0.0.1:7100");
    assert_eq!(config.fsync, FsyncPolicy::Always);
    assert_eq!(config.segment_bytes, SEGMENT_BYTES_DEFAULT);
    assert_eq!(
        config.retention_interval,
        Duration::from_millis(RETENTION_INTERVAL_MS_DEFAULT)
    );
    assert_eq!(config.log_level, None);
    assert_eq!(
        config.token_ttl,
        Duration::from_secs(TOKEN_TTL_SECONDS_DEFAULT)
    );
}

#[test]
fn flags_beat_env_beat_file() {
    let file = file(
        "data_dir = \"/file\"\nhttp_addr = \"127.0.0.1:1\"\nquic_addr = \"127.0.0.1:3\"\n\
         fsync = \"never\"",
    );
    let env = env(&[
        ("STRAND_DATA_DIR", "/env"),
        ("STRAND_HTTP_ADDR", "127.0.0.1:2"),
    ]);
    let flags = ConfigLayer {
        data_dir: Some("/flag".into()),
        ..ConfigLayer::default()
    };
    let config = resolve(&flags, &env, &file).expect("valid");
    assert_eq!(config.data_dir, PathBuf::from("/flag"));
    assert_eq!(config.http_addr.port(), 2, "env beats file");
    assert_eq!(config.quic_addr.port(), 3, "file beats default");
    assert_eq!(config.fsync, FsyncPolicy::Never);
}

#[test]
fn interval_policy_takes_its_period_from_any_layer() {
    let flags = ConfigLayer {
        fsync: Some("Interval".into()),
        ..ConfigLayer::default()
    };
    let config = resolve(
        &flags,
        &ConfigLayer::default(),
        &file("fsync_interval_ms = 250"),
    )
    .expect("valid");
    assert_eq!(
        config.fsync,
        FsyncPolicy::Interval(Duration::from_millis(250))
    );
}

#[test]
fn segment_size_and_retention_interval_come_from_every_layer() {
    let flags = ConfigLayer {
        segment_bytes: Some(SEGMENT_BYTES_MIN),
        ..ConfigLayer::default()
    };
    let env = env(&[
        ("STRAND_SEGMENT_BYTES", "8192"),
        ("STRAND_RETENTION_INTERVAL_MS", "200"),
    ]);
    let file = file("segment_bytes = 65536\nretention_interval_ms = 5000");
    let config = resolve(&flags, &env, &file).expect("valid");
    assert_eq!(config.segment_bytes, SEGMENT_BYTES_MIN, "flag beats env");
    assert_eq!(config.retention_interval, Duration::from_millis(200));

    let none = ConfigLayer::default();
    let config = resolve(&none, &none, &file).expect("valid");
    assert_eq!(config.segment_bytes, 65536);
    assert_eq!(config.retention_interval, Duration::from_millis(5000));
}

#[test]
fn segment_size_and_retention_interval_are_bounded() {
    let none = ConfigLayer::default();
    let error = resolve(&none, &none, &file("segment_bytes = 4095")).expect_err("too small");
    assert!(
        error.to_string().contains("config file key segment_bytes"),
        "{error}"
    );
    let flags = ConfigLayer {
        segment_bytes: Some(SEGMENT_BYTES_MAX + 1),
        ..ConfigLayer::default()
    };
    let error = resolve(&flags, &none, &none).expect_err("too large");
    assert!(error.to_string().contains("--segment-bytes"), "{error}");

    let env = env(&[("STRAND_RETENTION_INTERVAL_MS", "9")]);
    let error = resolve(&none, &env, &none).expect_err("too often");
    assert!(
        error.to_string().contains("STRAND_RETENTION_INTERVAL_MS"),
        "{error}"
    );
    let flags = ConfigLayer {
        retention_interval_ms: Some(RETENTION_INTERVAL_MS_MAX + 1),
        ..ConfigLayer::default()
    };
    let error = resolve(&flags, &none, &none).expect_err("too rare");
    assert!(
        error.to_string().contains("--retention-interval-ms"),
        "{error}"
    );
}

#[test]
fn maintenance_schedules_come_from_every_layer_with_defaults_and_bounds() {
    let none = ConfigLayer::default();
    let config = resolve(&none, &none, &none).expect("defaults");
    assert_eq!(config.maintenance, MaintenanceConfig::default());
    assert_eq!(
        config.maintenance.ttl_sweep_interval,
        Duration::from_secs(1)
    );

    let flags = ConfigLayer {
        compaction_min_bytes: Some(4096),
        ..ConfigLayer::default()
    };
    let env = env(&[
        ("STRAND_TTL_SWEEP_INTERVAL_MS", "50"),
        ("STRAND_COMPACTION_MIN_BYTES", "1"),
    ]);
    let file = file(
        "compaction_interval_ms = 2000
tombstone_retention_ms = 0",
    );
    let config = resolve(&flags, &env, &file).expect("valid");
    assert_eq!(
        config.maintenance.ttl_sweep_interval,
        Duration::from_millis(50)
    );
    assert_eq!(
        config.maintenance.compaction_min_bytes, 4096,
        "flag beats env"
    );
    assert_eq!(
        config.maintenance.compaction_interval,
        Duration::from_secs(2)
    );
    assert_eq!(config.maintenance.tombstone_retention, Duration::ZERO);

    let env = self::env(&[("STRAND_TTL_SWEEP_INTERVAL_MS", "9")]);
    let error = resolve(&none, &env, &none).expect_err("too often");
    assert!(
        error.to_string().contains("STRAND_TTL_SWEEP_INTERVAL_MS"),
        "{error}"
    );
}

#[test]
fn errors_name_the_source_of_the_bad_value() {
    let env = env(&[("STRAND_HTTP_ADDR", "localhost")]);
    let error = resolve(&ConfigLayer::default(), &env, &ConfigLayer::default())
        .expect_err("not an address");
    assert!(error.to_string().contains("STRAND_HTTP_ADDR"), "{error}");

    let error = resolve(
        &ConfigLayer::default(),
        &ConfigLayer::default(),
        &file("fsync = \"x\""),
    )
    .expect_err("not a policy");
    assert!(
        error.to_string().contains("config file key fsync"),
        "{error}"
    );

    let flags = ConfigLayer {
        fsync_interval_ms: Some(0),
        ..ConfigLayer::default()
    };
    let none = ConfigLayer::default();
    let error = resolve(&flags, &none, &none).expect_err("zero interval");
    assert!(error.to_string().contains("--fsync-interval-ms"), "{error}");
}

#[test]
fn env_numbers_must_be_numbers_and_empty_values_are_unset() {
    let error = ConfigLayer::from_env(|name| {
        (name == "STRAND_FSYNC_INTERVAL_MS").then(|| "soon".to_string())
    })
    .expect_err("not a number");
    assert!(
        error.to_string().contains("STRAND_FSYNC_INTERVAL_MS"),
        "{error}"
    );
    let error =
        ConfigLayer::from_env(|name| (name == "STRAND_SEGMENT_BYTES").then(|| "64k".to_string()))
            .expect_err("not a number");
    assert!(
        error.to_string().contains("STRAND_SEGMENT_BYTES"),
        "{error}"
    );
    assert_eq!(env(&[("STRAND_DATA_DIR", "  ")]), ConfigLayer::default());
}

#[test]
fn unknown_file_keys_are_rejected() {
    let error = ConfigLayer::from_toml(Path::new("x.toml"), "htp_addr = \"127.0.0.1:1\"")
        .expect_err("typo");
    assert!(error.to_string().contains("htp_addr"), "{error}");
}

#[test]
fn load_reads_the_file_named_by_strand_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("strand.toml");
    std::fs::write(&path, "token_ttl_seconds = 60\n").expect("write");
    let path_text = path.to_string_lossy().into_owned();
    let lookup = |name: &str| (name == "STRAND_CONFIG").then(|| path_text.clone());
    let config = load(&ServeArgs::default(), lookup).expect("valid");
    assert_eq!(config.token_ttl, Duration::from_secs(60));

    let missing = ServeArgs {
        config: Some(dir.path().join("absent.toml")),
        ..ServeArgs::default()
    };
    let error = load(&missing, |_| None).expect_err("missing file");
    assert!(matches!(error, ConfigError::ReadFile { .. }), "{error}");
}

#[test]
fn connection_caps_and_timeouts_come_from_every_layer_with_defaults_and_bounds() {
    let none = ConfigLayer::default();
    let defaults = resolve(&none, &none, &none).expect("defaults");
    assert_eq!(defaults.connections, ConnectionConfig::default());
    assert_eq!(defaults.connections.unauthenticated_connections_max, 1_000);

    let file = file("connections_max = 50\nhttp_body_timeout_ms = 2000");
    let env = env(&[
        ("STRAND_UNAUTHENTICATED_CONNECTIONS_MAX", "20"),
        ("STRAND_AUTH_TIMEOUT_MS", "1500"),
    ]);
    let flags = ConfigLayer {
        connections_per_user_max: Some(3),
        quic_frame_buffer_bytes: Some(64 << 20),
        ..ConfigLayer::default()
    };
    let connections = resolve(&flags, &env, &file).expect("valid").connections;
    assert_eq!(connections.connections_max, 50);
    assert_eq!(connections.unauthenticated_connections_max, 20);
    assert_eq!(connections.connections_per_user_max, 3);
    assert_eq!(connections.auth_timeout, Duration::from_millis(1500));
    assert_eq!(connections.http_body_timeout, Duration::from_millis(2000));
    assert_eq!(connections.quic_frame_buffer_bytes, 64 << 20);

    for bad in [
        ConfigLayer {
            connections_max: Some(0),
            ..ConfigLayer::default()
        },
        ConfigLayer {
            http_header_timeout_ms: Some(10),
            ..ConfigLayer::default()
        },
        // Smaller than one frame of the largest size: that frame could never be received.
        ConfigLayer {
            quic_frame_buffer_bytes: Some(1 << 20),
            ..ConfigLayer::default()
        },
    ] {
        let error = resolve(&bad, &none, &none).expect_err("out of range");
        assert!(error.to_string().contains("out of range"), "{error}");
    }
}

#[test]
fn browser_settings_come_from_every_layer() {
    let none = ConfigLayer::default();
    let defaults = resolve(&none, &none, &none).expect("defaults");
    assert!(!defaults.http_tls);
    assert!(defaults.cors_origins.is_empty());

    let from_file = file("http_tls = true\ncors_origins = \"https://app.example\"");
    let config = resolve(&none, &none, &from_file).expect("valid");
    assert!(config.http_tls);
    assert!(config.cors_origins.allows("https://app.example"));
    assert!(!config.cors_origins.allows("https://other.example"));

    let from_env = env(&[("STRAND_HTTP_TLS", "yes"), ("STRAND_CORS_ORIGINS", "*")]);
    let config = resolve(&none, &from_env, &none).expect("valid");
    assert!(config.http_tls);
    assert!(config.cors_origins.allows("http://localhost:3000"));
    let off = env(&[("STRAND_HTTP_TLS", "false")]);
    let config = resolve(&none, &off, &from_file).expect("valid");
    assert!(!config.http_tls, "env beats file");

    let lookup = |name: &str| (name == "STRAND_HTTP_TLS").then(|| "maybe".to_string());
    let error = ConfigLayer::from_env(lookup).expect_err("not a boolean");
    assert!(error.to_string().contains("STRAND_HTTP_TLS"), "{error}");
    let bad = ConfigLayer {
        cors_origins: Some("app.example".into()),
        ..ConfigLayer::default()
    };
    let error = resolve(&bad, &none, &none).expect_err("not an origin");
    assert!(error.to_string().contains("--cors-origins"), "{error}");
}
