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
