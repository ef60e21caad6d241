//! Issue 19: `strand-bench` explains itself and every subcommand runs. Each subcommand runs as
//! a smoke run (`--quick`) against a server it spawns from this workspace's `strand`, exits
//! successfully, and writes a JSON report with the documented fields (docs/bench.md), with at
//! least one Strand measurement of that workload carrying a throughput, a latency or figures.
//! Figures are not checked: speed belongs to benchmarks, not tests.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use strand_tests::{bench_binary, strand_binary};

const SUBCOMMANDS: [&str; 12] = [
    "produce",
    "consume",
    "e2e",
    "subscribe",
    "fanout",
    "snapshot",
    "resume",
    "sql-insert",
    "restart",
    "under-attack",
    "live-sql",
    "cluster",
];

const REPORT_FIELDS: [&str; 11] = [
    "tool",
    "format",
    "version",
    "command",
    "started_unix_s",
    "elapsed_s",
    "machine",
    "results",
    "ratios",
    "goals",
    "failures",
];

const RESULT_FIELDS: [&str; 11] = [
    "key",
    "workload",
    "system",
    "case",
    "label",
    "durability",
    "params",
    "throughput",
    "latency",
    "figures",
    "series",
];

const LATENCY_FIELDS: [&str; 8] = [
    "count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "curve",
];

const THROUGHPUT_FIELDS: [&str; 5] = ["records", "bytes", "elapsed_s", "records_per_s", "mb_per_s"];

fn has_fields(value: &Value, fields: &[&str], what: &str) {
    for field in fields {
        assert!(
            value.get(field).is_some(),
            "{what} has no `{field}`: {value}"
        );
    }
}

#[test]
fn help_explains_the_tool_and_each_subcommand() {
    let help = Command::new(bench_binary()).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for subcommand in SUBCOMMANDS.iter().chain(&["all"]) {
        assert!(
            text.contains(subcommand),
            "--help does not list {subcommand}:\n{text}"
        );
    }
    assert!(text.contains("coordinated omission"), "{text}");
    for subcommand in SUBCOMMANDS {
        let help = Command::new(bench_binary())
            .args([subcommand, "--help"])
            .output()
            .unwrap();
        assert!(help.status.success(), "{subcommand} --help failed");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.contains(&format!("Usage: strand-bench {subcommand}")) && text.contains("--json"),
            "{subcommand} --help:\n{text}"
        );
    }
}

/// Runs `strand-bench --quick <subcommand>` and checks its report.
fn smoke(subcommand: &str) {
    let scratch = tempfile::tempdir().unwrap();
    let json = scratch.path().join("report.json");
    let output = Command::new(bench_binary())
        .args(["--quick", "--no-progress", "--json"])
        .arg(&json)
        .arg("--strand-bin")
        .arg(strand_binary())
        .arg("--scratch")
        .arg(scratch.path())
        .arg(subcommand)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "strand-bench --quick {subcommand} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    check_report(subcommand, &json);
}

fn check_report(subcommand: &str, json: &Path) {
    let report: Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    has_fields(&report, &REPORT_FIELDS, "the report");
    assert_eq!(report["tool"], "strand-bench");
    assert_eq!(
        report["failures"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    has_fields(
        &report["machine"],
        &["cpus", "cpu_model", "ram_gib", "kernel"],
        "machine",
    );
    let results = report["results"].as_array().expect("results is an array");
    let workload = subcommand;
    let ours: Vec<&Value> = results
        .iter()
        .filter(|r| r["workload"] == workload && r["system"] == "strand")
        .collect();
    assert!(
        !ours.is_empty(),
        "no strand result for {workload}: {report}"
    );
    for result in results {
        has_fields(result, &RESULT_FIELDS, "a result");
        let key = format!(
            "{}/{}/{}",
            result["workload"].as_str().unwrap(),
            result["system"].as_str().unwrap(),
            result["case"].as_str().unwrap()
        );
        assert_eq!(result["key"], key.as_str());
        if !result["latency"].is_null() {
            has_fields(&result["latency"], &LATENCY_FIELDS, "a latency");
            assert!(result["latency"]["count"].as_u64().unwrap() > 0, "{result}");
        }
        if !result["throughput"].is_null() {
            has_fields(&result["throughput"], &THROUGHPUT_FIELDS, "a throughput");
        }
        let measured = !result["latency"].is_null()
            || !result["throughput"].is_null()
            || result["figures"].as_array().is_some_and(|f| !f.is_empty());
        assert!(measured, "a result with no figure at all: {result}");
    }
}

#[test]
fn produce_runs() {
    smoke("produce");
}

#[test]
fn consume_runs() {
    smoke("consume");
}

#[test]
fn e2e_runs() {
    smoke("e2e");
}

#[test]
fn subscribe_runs() {
    smoke("subscribe");
}

#[test]
fn fanout_runs() {
    smoke("fanout");
}

#[test]
fn snapshot_runs() {
    smoke("snapshot");
}

#[test]
fn resume_runs() {
    smoke("resume");
}

#[test]
fn sql_insert_runs() {
    smoke("sql-insert");
}

#[test]
fn restart_runs() {
    smoke("restart");
}

#[test]
fn under_attack_runs() {
    smoke("under-attack");
}

#[test]
fn live_sql_runs() {
    smoke("live-sql");
}

/// `--quick` caps it at 1 s windows and one leader kill.
#[test]
fn cluster_runs() {
    smoke("cluster");
}
