//! `strand-bench under-attack`: one authenticated client's single-row INSERT latency and the
//! server's memory, first on a quiet server, then while every attacker runs at once
//! (`attack/attackers.rs`, `attack/quic.rs`), then a few seconds after they stopped:
//! - `--idle-sockets` idle unauthenticated TCP connections (silent, half a request head, or a
//!   WebSocket that never authenticates), reopened as the server closes them;
//! - `--sql-clients` authenticated clients sending `--sql-bytes` `IN (1,1,...)` SQL texts back
//!   to back, each as its own user;
//! - `--quic-frames` QUIC connections (`--quic-authenticated` of them authenticated) each
//!   holding a frame that declares 16 MiB and sends 15 MiB of it;
//! - a flood of junk consumer-group joins by one user with SELECT on one topic.
//!
//! The server runs with `--fsync always` (the old bench's default). The probe writes one row
//! every `--interval-ms` over one keep-alive connection, open loop (latency from each INSERT's
//! due time). Figures: the attacked p99 over the quiet one (`p99_ratio`, the bound is
//! 5x), INSERT errors, the server's resident memory quiet, at its peak under attack and after
//! (`rss_peak_mib`, the bound is 512 MiB), and what each attacker achieved.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use crate::attack::attackers::{Attack, AttackStats, AttackTarget, Pressure};
use crate::attack::probe::{self, InsertLatency, MemorySampler};
use crate::cli::Fsync;
use crate::http::HttpConnection;
use crate::report::{Figure, Measurement};
use crate::run::Bench;
use crate::sql::strand::StrandSystem;
use crate::target::Target;

const WORKLOAD: &str = "under-attack";
const ATTACKER_PASSWORD: &str = "attacker-password-17";
/// The login route of SPEC.md section 4.
const ROUTE_LOGIN: &str = "/v1/api/auth/login";

/// Options of `under-attack`.
#[derive(Args, Debug, Clone)]
pub struct UnderAttackArgs {
    /// Single-row INSERTs of the probe in each of the quiet and the attacked phases.
    #[arg(long, default_value_t = 4000)]
    pub inserts: usize,
    /// The probe's INSERT interval, in milliseconds (a steady client, not a saturating one).
    #[arg(long, default_value_t = 5)]
    pub interval_ms: u64,
    /// Seconds the attack runs before the probe measures under it.
    #[arg(long, default_value_t = 20)]
    pub warm_up_s: u64,
    /// The attackers to run, comma-separated: `idle`, `sql`, `quic`, `groups`.
    #[arg(long, value_delimiter = ',', default_value = "idle,sql,quic,groups")]
    pub attacks: Vec<String>,
    /// Idle unauthenticated TCP connections held open.
    #[arg(long, default_value_t = 5000)]
    pub idle_sockets: usize,
    /// Authenticated clients sending oversized SQL texts back to back.
    #[arg(long, default_value_t = 16)]
    pub sql_clients: usize,
    /// Bytes of each oversized SQL text (under the 1 MiB body limit, over the SQL limits).
    #[arg(long, default_value_t = 400_000)]
    pub sql_bytes: usize,
    /// QUIC connections each holding an unfinished 16 MiB frame.
    #[arg(long, default_value_t = 100)]
    pub quic_frames: usize,
    /// Of --quic-frames, how many connections are authenticated.
    #[arg(long, default_value_t = 4)]
    pub quic_authenticated: usize,
}

impl UnderAttackArgs {
    fn pressure(&self) -> Pressure {
        let all = Pressure {
            idle_sockets: self.idle_sockets,
            oversized_sql_clients: self.sql_clients,
            oversized_sql_bytes: self.sql_bytes,
            unfinished_quic_frames: self.quic_frames,
            unfinished_quic_authenticated: self.quic_authenticated,
            group_flood: true,
        };
        all.only(Some(&self.attacks.join(",")))
    }
}

/// The three phases' lengths: `--quick` keeps the attack's sizes and shortens the phases.
struct Phases {
    inserts: usize,
    interval: Duration,
    warm_up: Duration,
    /// Pause after the attack stops, before the last phase.
    settle: Duration,
    after_inserts: usize,
}

pub fn run(bench: &mut Bench, args: &UnderAttackArgs) -> anyhow::Result<()> {
    crate::attack::sys::raise_own_fd_limit();
    let phases = Phases {
        inserts: if bench.quick {
            args.inserts.min(200)
        } else {
            args.inserts
        },
        interval: Duration::from_millis(args.interval_ms.max(1)),
        warm_up: Duration::from_secs(if bench.quick {
            args.warm_up_s.min(2)
        } else {
            args.warm_up_s
        }),
        settle: Duration::from_secs(if bench.quick { 1 } else { 3 }),
        after_inserts: 50,
    };
    for fsync in bench.targets.fsync_policies(&[Fsync::Always]) {
        let target = bench.targets.open(fsync, &[])?;
        let measurements = attack_one(bench, args, &phases, &target);
        let measurements = measurements.map_err(|error| match &target.process {
            Some(process) => error.context(format!("strand stderr:\n{}", process.stderr())),
            None => error,
        })?;
        for measurement in measurements {
            bench.push(measurement);
        }
    }
    Ok(())
}

/// The quiet, attacked and after phases against `target`.
fn attack_one(
    bench: &mut Bench,
    args: &UnderAttackArgs,
    phases: &Phases,
    target: &Target,
) -> anyhow::Result<Vec<Measurement>> {
    let pressure = args.pressure();
    let users = pressure.oversized_sql_clients + 2;
    let prepared = prepare(target, users);
    let measured = match &prepared {
        Ok(prepared) => measure(bench, phases, target, prepared, pressure),
        Err(_) => Ok(Vec::new()),
    };
    // A running server keeps what the run made: its attacking users (with a password written
    // in this tool's source) must not outlive the run.
    if target.process.is_none() {
        let schema = match &prepared {
            Ok(prepared) => prepared.schema.clone(),
            Err(_) => schema_of_run(),
        };
        if let Err(error) = clean_up(target, &schema, users) {
            bench.note(format!(
                "under-attack: clean-up on the server failed: {error:#}"
            ));
        }
    }
    prepared?;
    measured
}

/// The phases against a prepared `target`.
fn measure(
    bench: &mut Bench,
    phases: &Phases,
    target: &Target,
    attack_target: &Prepared,
    pressure: Pressure,
) -> anyhow::Result<Vec<Measurement>> {
    let system = StrandSystem::new(target, &attack_target.schema)?;
    let pid = target.server_pid();
    // The server's resident memory now, in MiB (when the tool spawned it).
    let memory = || Some(probe::memory_kib(pid?)?.0 / 1024);

    let quiet = {
        let _bar = bench
            .progress
            .timed("quiet", phases.interval * phases.inserts as u32);
        probe::insert_latency(&system, 1, phases.inserts, phases.interval)?
    };
    let quiet_rss = memory();

    let sampler = pid.map(MemorySampler::start);
    let attack = Attack::start(&bench.runtime, &attack_target.attackers, pressure);
    let loaded = {
        let window = phases.warm_up + phases.interval * phases.inserts as u32;
        let _bar = bench.progress.timed("under attack", window);
        std::thread::sleep(phases.warm_up);
        let first_id = 1 + phases.inserts as i64;
        probe::insert_latency(&system, first_id, phases.inserts, phases.interval)
    };
    let fds = pid.and_then(probe::open_fds);
    let held_at_end = attack.stats.idle_held.load(Ordering::Relaxed);
    let stats = attack.stop(&bench.runtime);
    let peak = sampler.map(MemorySampler::finish);
    let loaded = loaded.context("the probe under attack")?;
    std::thread::sleep(phases.settle);
    let after_rss = memory();
    let first_id = 1 + 2 * phases.inserts as i64;
    let after = probe::insert_latency(&system, first_id, phases.after_inserts, phases.interval)?;

    for (phase, latency) in [
        ("quiet", &quiet),
        ("under attack", &loaded),
        ("after", &after),
    ] {
        for error in &latency.first_errors {
            bench.note(format!("under-attack: INSERT {phase}: {error}"));
        }
    }
    let p99 = |l: &InsertLatency| l.histogram.summary().map_or(0.0, |s| s.p99_ms);
    let measurement = |case: &str, label: &str, latency: &InsertLatency| {
        let mut m = Measurement::new(WORKLOAD, "strand", case, label)
            .durability(target.durability())
            .param("interval_ms", phases.interval.as_secs_f64() * 1e3)
            .param("inserts", latency.histogram.count());
        m.latency = latency.histogram.summary();
        m.figures
            .push(Figure::new("errors", latency.errors as f64, ""));
        m
    };
    let mut quiet_m = measurement("insert_quiet", "INSERT 1 row, quiet server", &quiet);
    push_some(&mut quiet_m, "rss_mib", quiet_rss.map(|v| v as f64), "MiB");
    let mut loaded_m = measurement("insert_attacked", "INSERT 1 row, under attack", &loaded);
    loaded_m = loaded_m
        .param("idle_sockets", pressure.idle_sockets)
        .param("sql_clients", pressure.oversized_sql_clients)
        .param("sql_bytes", pressure.oversized_sql_bytes)
        .param("quic_frames", pressure.unfinished_quic_frames)
        .param("group_flood", pressure.group_flood);
    let ratio = p99(&loaded) / p99(&quiet).max(1e-9);
    loaded_m.figures.push(Figure::new("p99_ratio", ratio, "x"));
    push_some(
        &mut loaded_m,
        "rss_quiet_mib",
        quiet_rss.map(|v| v as f64),
        "MiB",
    );
    if let Some(peak) = peak.filter(|p| p.samples > 0) {
        loaded_m.figures.push(Figure::new(
            "rss_peak_mib",
            (peak.rss_kib / 1024) as f64,
            "MiB",
        ));
        loaded_m.figures.push(Figure::new(
            "rss_anon_peak_mib",
            (peak.rss_anon_kib / 1024) as f64,
            "MiB",
        ));
    }
    push_some(&mut loaded_m, "open_fds", fds.map(|v| v as f64), "");
    attack_figures(&mut loaded_m, &stats, held_at_end);
    let mut after_m = measurement("insert_after", "INSERT 1 row, after the attack", &after);
    push_some(&mut after_m, "rss_mib", after_rss.map(|v| v as f64), "MiB");
    if pid.is_none() {
        bench.note("under-attack: the server's memory is not measured (not spawned by the tool)");
    }
    Ok(vec![quiet_m, loaded_m, after_m])
}

fn push_some(m: &mut Measurement, name: &str, value: Option<f64>, unit: &str) {
    if let Some(value) = value {
        m.figures.push(Figure::new(name, value, unit));
    }
}

/// What each attacker achieved: held, refused, closed.
fn attack_figures(m: &mut Measurement, stats: &AttackStats, held_at_end: u64) {
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as f64;
    let figures = [
        ("idle_held_at_end", held_at_end as f64),
        ("idle_held_max", get(&stats.idle_held_max)),
        ("idle_opened", get(&stats.idle_opened)),
        ("idle_closed_by_server", get(&stats.idle_closed_by_server)),
        ("idle_connect_failed", get(&stats.idle_connect_failed)),
        ("sql_refused_4xx", get(&stats.sql_refused_4xx)),
        ("sql_other_status", get(&stats.sql_other_status)),
        ("sql_connection_errors", get(&stats.sql_connection_errors)),
        ("quic_opened", get(&stats.quic_opened)),
        ("quic_failed", get(&stats.quic_failed)),
        (
            "quic_payload_mib",
            get(&stats.quic_payload_bytes_sent) / f64::from(1 << 20),
        ),
        ("groups_joined", get(&stats.groups_joined)),
        ("groups_refused", get(&stats.groups_refused)),
        ("groups_failed", get(&stats.groups_failed)),
    ];
    for (name, value) in figures {
        m.figures.push(Figure::new(name, value, ""));
    }
}

/// The attack's names and users, unique per run.
struct Prepared {
    schema: String,
    attackers: AttackTarget,
}

/// The table the probe writes, a topic for the junk groups, and the attacking users: one per
/// oversized-SQL client and one for the group flood (the server slows a user down for their
/// own refusals only), and one for the unfinished QUIC frames.
fn prepare(target: &Target, users: usize) -> anyhow::Result<Prepared> {
    let schema = schema_of_run();
    let topic = format!("{schema}.events");
    let admin = target.login()?;
    let system = StrandSystem::new(target, &schema)?;
    system.create_table(&schema)?;
    target.sql(
        &admin,
        &format!("CREATE TOPIC {topic} WITH (PARTITIONS = 2)"),
    )?;
    let mut tokens = Vec::new();
    // The QUIC frames' user, one per SQL client, the group flood's.
    for n in 0..users {
        let name = attacker(n);
        for sql in [
            format!("CREATE USER '{name}' PASSWORD '{ATTACKER_PASSWORD}' ROLE user"),
            format!("GRANT SELECT ON TOPIC {topic} TO '{name}'"),
            format!("GRANT SELECT ON {schema}.items TO '{name}'"),
        ] {
            target.sql(&admin, &sql)?;
        }
        tokens.push(login(target, &name).with_context(|| format!("log in as {name}"))?);
    }
    let quic_token = tokens.remove(0);
    let group_token = tokens.pop().context("the group flood's user")?;
    let attackers = AttackTarget {
        http: target.http,
        quic: target
            .quic
            .context("under-attack needs QUIC: give --server and --ca-cert")?,
        cert: target
            .ca_cert
            .clone()
            .context("under-attack needs --ca-cert")?,
        token: quic_token,
        sql_tokens: tokens,
        group_token,
        topic,
        table: format!("{schema}.items"),
    };
    Ok(Prepared { schema, attackers })
}

/// The namespace of this run's table and topic (unique: two runs do not collide).
fn schema_of_run() -> String {
    format!("bench_attack_{}", std::process::id())
}

/// The name of this run's attacking user `n`.
fn attacker(n: usize) -> String {
    format!("bench_attacker_{}_{n}", std::process::id())
}

/// Drops the attacking users, the topic, the table and the namespace (each if it exists).
fn clean_up(target: &Target, schema: &str, users: usize) -> anyhow::Result<()> {
    let admin = target.login()?;
    for n in 0..users {
        target.sql(&admin, &format!("DROP USER IF EXISTS '{}'", attacker(n)))?;
    }
    for sql in [
        format!("DROP TOPIC IF EXISTS {schema}.events"),
        format!("DROP TABLE IF EXISTS {schema}.items"),
        format!("DROP NAMESPACE IF EXISTS {schema}"),
    ] {
        target.sql(&admin, &sql)?;
    }
    Ok(())
}

/// Logs `user` in with [`ATTACKER_PASSWORD`]; its token.
fn login(target: &Target, user: &str) -> anyhow::Result<String> {
    let mut connection = HttpConnection::connect(target.http, None)?;
    let body = json!({"username": user, "password": ATTACKER_PASSWORD}).to_string();
    let (status, answer) = connection.post_json(ROUTE_LOGIN, body.as_bytes())?;
    let answer: serde_json::Value = serde_json::from_slice(answer)?;
    anyhow::ensure!(status == 200, "login failed ({status}): {answer}");
    let token = answer["token"]
        .as_str()
        .context("login answer has no token")?;
    Ok(token.to_string())
}
