//! Differential test of one-shot SELECT: random tables with NULLs, random queries over them
//! (projections with expressions and aliases; WHERE with comparisons, AND / OR / NOT, IN,
//! BETWEEN, [I]LIKE, IS [NOT] NULL, arithmetic, `||`, CAST, functions and CASE (`func.rs`);
//! ORDER BY with ASC / DESC and NULLS FIRST / LAST; LIMIT / OFFSET; literals and parameters;
//! a quarter grouping queries: GROUP BY, aggregates, HAVING, DISTINCT (`group.rs`); over a
//! quarter joins of two or three tables, INNER and LEFT, with all of the above over the joined
//! row (`join.rs`)), run on a real Strand server over
//! HTTP and on SQLite (bundled, in memory) holding the same rows; the answers must be the
//! same rows (docs/sql.md, "SELECT" and "Expressions").
//!
//! Where SQLite's semantics differ from PostgreSQL's, which Strand follows, the SQLite query
//! is translated or the case is not generated; each place says why:
//! - NULL ordering and ties: `query.rs` (NULLS placement written out, primary key appended;
//!   over a join every table's, NULL last);
//! - output names of a join (`x.id` for a name two columns share) and bare names that are
//!   ambiguous in FROM: answers compare by position, ORDER BY a name is a position in SQLite;
//!   an ON reads only the tables up to its own (`join.rs`);
//! - integer overflow (Strand: `numeric_overflow`; SQLite: REAL) and division by zero (Strand:
//!   `division_by_zero`; SQLite: NULL): never reached, every expression carries a bound on
//!   its values and arithmetic that could overflow is not built, divisors are never 0
//!   (`expr.rs`, `gen.rs`); Strand's errors are by design, docs/sql.md "Arithmetic";
//! - integer literals are INT when they fit 32 bits, JSON integer parameters BIGINT (the
//!   result types of arithmetic follow): Strand's reported column types are checked too;
//! - DOUBLE `%` is fmod (SQLite truncates REAL operands to integers): SQLite calls `fmod`,
//!   registered here;
//! - LIKE is case-sensitive with backslash escapes (SQLite's LIKE is not): SQLite gets GLOB;
//! - CAST of DOUBLE / BOOLEAN to TEXT (`2`, `true` vs SQLite's `2.0`, `1`): SQLite gets text;
//! - comparing TEXT with numbers (a `type_mismatch` in Strand, affinity rules in SQLite) and
//!   CASTs Strand refuses by design (TEXT to DOUBLE, a row expression) are not generated;
//! - BOOLEAN is 0 / 1 in SQLite, read back as Strand's type says (`compare.rs`).
//!
//! Found and fixed (their tests below run): a decimal-text parameter among COALESCE's
//! arguments; primary-key lookups of an AND whose constants are typed differently; DOUBLE
//! overflow giving Infinity; join keys equal as BIGINT and DOUBLE past 9.2e18 (-9.2e18, -2^63)
//! that the hash join missed.
//!
//! `STRAND_DIFF_SEED` replays a run (data and queries; the seed is printed),
//! `STRAND_DIFF_QUERIES` sets the number of queries (default 3000), `STRAND_DIFF_QUERY=n`
//! runs only query n of the seed, `STRAND_DIFF_SKIP=Like,Cast` leaves constructs out
//! (`constructs::Construct`; `Join` leaves joins out, `LeftJoin` LEFT JOIN), `STRAND_DIFF_VERBOSE=1` prints every query. A mismatch prints both
//! queries, their parameters, the seed, the query number and both answers.
//!
//! Long run: `STRAND_DIFF_QUERIES=20000 cargo test -p strand-tests --test sqlite_differential
//! -- --nocapture`

#[path = "sqlite_differential/compare.rs"]
mod compare;
#[path = "sqlite_differential/cond.rs"]
mod cond;
#[path = "sqlite_differential/constructs.rs"]
mod constructs;
#[path = "sqlite_differential/expr.rs"]
mod expr;
#[path = "sqlite_differential/func.rs"]
mod func;
#[path = "sqlite_differential/gen.rs"]
mod gen;
#[path = "sqlite_differential/group.rs"]
mod group;
#[path = "sqlite_differential/join.rs"]
mod join;
#[path = "sqlite_differential/query.rs"]
mod query;
#[path = "sqlite_differential/rng.rs"]
mod rng;
#[path = "sqlite_differential/schema.rs"]
mod schema;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use compare::{missing, run_sqlite, run_strand, same_rows, show_rows, Rows};
use rng::Rng;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use schema::Table;
use serde_json::json;
use strand_tests::{rows, AdminServer};

const DEFAULT_QUERIES: u64 = 3000;
/// Stop after this many mismatches (each is printed in full).
const MISMATCHES_MAX: usize = 5;

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
    )
}

/// The tables of a seed: a large one with every kind of column, a middle one, a tiny one;
/// each has a join key column whose domain grows with its size (`join.rs`).
fn tables(seed: u64) -> Vec<Table> {
    let mut rng = Rng::new(seed);
    let sizes = [
        rng.range(250, 450) as usize,
        rng.range(20, 80) as usize,
        rng.range(0, 6) as usize,
    ];
    let domains = [60, 20, 6];
    (0..3)
        .map(|i| Table::random(&mut rng, &format!("t{i}"), sizes[i], i == 0, domains[i]))
        .collect()
}

fn start_strand(tables: &[Table]) -> AdminServer {
    let ddl: Vec<String> = tables.iter().map(Table::strand_ddl).collect();
    let setup = AdminServer::with_app(&ddl.join("; "));
    for table in tables {
        for statement in &table.strand_setup {
            setup.exec(statement);
        }
    }
    setup
}

fn start_sqlite(tables: &[Table]) -> rusqlite::Connection {
    let db = rusqlite::Connection::open_in_memory().expect("SQLite in memory");
    db.execute_batch("ATTACH DATABASE ':memory:' AS app")
        .expect("attach app");
    // Strand's DOUBLE `%` (C's fmod); SQLite's `%` would truncate REAL operands to integers.
    db.create_scalar_function(
        "fmod",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let number = |i: usize| match ctx.get_raw(i) {
                ValueRef::Integer(v) => Some(v as f64),
                ValueRef::Real(v) => Some(v),
                _ => None,
            };
            Ok(number(0).zip(number(1)).map(|(a, b)| a % b))
        },
    )
    .expect("register fmod");
    // LOWER / UPPER with Unicode case mapping (SQLite's own map ASCII only): `func.rs`.
    for (name, map) in [
        ("pg_lower", str::to_lowercase as fn(&str) -> String),
        ("pg_upper", str::to_uppercase),
    ] {
        let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
        db.create_scalar_function(name, 1, flags, move |ctx| {
            Ok(match ctx.get_raw(0) {
                ValueRef::Text(bytes) => Some(map(&String::from_utf8_lossy(bytes))),
                _ => None,
            })
        })
        .expect("register pg_lower / pg_upper");
    }
    for table in tables {
        table.load_sqlite(&db).expect("load SQLite table");
    }
    db
}

/// Both engines hold the model's rows (so a mismatch later is the query's, not the data's).
fn check_data(setup: &AdminServer, db: &rusqlite::Connection, tables: &[Table], seed: u64) {
    for table in tables {
        let model: Rows = table
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&table.columns)
                    .map(|(value, column)| {
                        let ty = column.ty.strand();
                        compare::Cell::from_sqlite(ValueRef::from(&value.sqlite()), ty)
                    })
                    .collect()
            })
            .collect();
        let query = query::Query {
            strand: format!("SELECT * FROM {}", table.qualified()),
            strand_params: Vec::new(),
            sqlite: format!("SELECT * FROM {}", table.qualified()),
            sqlite_params: Vec::new(),
            ordered: false,
            types: Vec::new(),
            has_where: false,
            has_limit: false,
            joined: 0,
        };
        let (types, strand) = run_strand(&setup.server, &setup.admin, &query)
            .unwrap_or_else(|e| panic!("seed {seed}: {}: {e}", query.strand));
        let sqlite = run_sqlite(db, &query.sqlite, &[], &types).expect("SQLite reads its table");
        for (engine, rows) in [("Strand", &strand), ("SQLite", &sqlite)] {
            assert!(
                same_rows(rows, &model, false),
                "seed {seed}: {engine} does not hold the rows of {} after the setup:\n{}\
                 missing:\n{}unexpected:\n{}",
                table.qualified(),
                table.strand_setup.join(";\n"),
                show_rows(&missing(&model, rows), 20),
                show_rows(&missing(rows, &model), 20),
            );
        }
    }
}

#[derive(Default)]
struct Stats {
    queries: u64,
    rows: u64,
    non_empty: u64,
    ordered: u64,
    filtered: u64,
    limited: u64,
    with_params: u64,
    joins: u64,
    joins_of_3: u64,
    joins_non_empty: u64,
    join_rows: u64,
}

/// Runs query `index` of `seed`; a mismatch's full description.
fn check_query(
    setup: &AdminServer,
    db: &rusqlite::Connection,
    tables: &[Table],
    seed: u64,
    index: u64,
    stats: &mut Stats,
) -> Option<String> {
    let query = query::generate(Rng::for_query(seed, index), tables);
    if std::env::var_os("STRAND_DIFF_VERBOSE").is_some() {
        println!(
            "{index}: {}\n   {}\n   {}",
            query.strand,
            json!(query.strand_params),
            query.sqlite
        );
    }
    let header = || {
        format!(
            "query {index} of seed {seed} (replay: STRAND_DIFF_SEED={seed} STRAND_DIFF_QUERY={index})\n  \
             Strand: {}\n  params: {}\n  SQLite: {}\n  params: {:?}\n",
            query.strand,
            json!(query.strand_params),
            query.sqlite,
            query.sqlite_params
        )
    };
    let (types, strand) = match run_strand(&setup.server, &setup.admin, &query) {
        Ok(answer) => answer,
        Err(error) => return Some(format!("{}  Strand failed: {error}\n", header())),
    };
    let expected: Vec<String> = query
        .types
        .iter()
        .zip(&types)
        .map(|(model, strand)| model.map_or(strand.clone(), |ty| ty.strand().to_string()))
        .collect();
    if types != expected {
        return Some(format!(
            "{}  Strand's column types {types:?}, expected {expected:?}\n",
            header()
        ));
    }
    let sqlite = match run_sqlite(db, &query.sqlite, &query.sqlite_params, &types) {
        Ok(rows) => rows,
        Err(error) => return Some(format!("{}  SQLite failed: {error}\n", header())),
    };
    stats.queries += 1;
    stats.rows += strand.len() as u64;
    stats.non_empty += u64::from(!strand.is_empty());
    stats.ordered += u64::from(query.ordered);
    stats.filtered += u64::from(query.has_where);
    stats.limited += u64::from(query.has_limit);
    stats.with_params += u64::from(!query.strand_params.is_empty());
    if query.joined > 0 {
        stats.joins += 1;
        stats.joins_of_3 += u64::from(query.joined > 2);
        stats.joins_non_empty += u64::from(!strand.is_empty());
        stats.join_rows += strand.len() as u64;
    }
    if same_rows(&strand, &sqlite, query.ordered) {
        return None;
    }
    let order = if query.ordered {
        "in order"
    } else {
        "as multisets"
    };
    Some(format!(
        "{}  answers differ ({order}; columns {types:?})\n  Strand, {} rows:\n{}  SQLite, {} rows:\n{}  \
         only in Strand:\n{}  only in SQLite:\n{}",
        header(),
        strand.len(),
        show_rows(&strand, 30),
        sqlite.len(),
        show_rows(&sqlite, 30),
        show_rows(&missing(&strand, &sqlite), 10),
        show_rows(&missing(&sqlite, &strand), 10),
    ))
}

#[test]
fn strand_answers_select_like_sqlite() {
    let seed = env_u64("STRAND_DIFF_SEED").unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.as_nanos() as u64
    });
    let queries = env_u64("STRAND_DIFF_QUERIES").unwrap_or(DEFAULT_QUERIES);
    let indexes = match env_u64("STRAND_DIFF_QUERY") {
        Some(index) => index..index + 1,
        None => 0..queries,
    };
    assert!(
        constructs::SUPPORTED
            .iter()
            .all(|c| !constructs::NOT_YET.contains(c)),
        "a construct is both supported and not yet supported"
    );
    println!(
        "sqlite_differential: seed {seed} (STRAND_DIFF_SEED), {} queries",
        indexes.end - indexes.start
    );
    let started = Instant::now();
    let tables = tables(seed);
    let setup = start_strand(&tables);
    let db = start_sqlite(&tables);
    check_data(&setup, &db, &tables, seed);
    for table in &tables {
        let kinds: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("{} {:?}", c.name, c.kind))
            .collect();
        println!(
            "  {}: {} rows; {}",
            table.qualified(),
            table.rows.len(),
            kinds.join(", ")
        );
    }
    let setup_took = started.elapsed();
    let mut stats = Stats::default();
    let mut mismatches = Vec::new();
    for index in indexes {
        if let Some(report) = check_query(&setup, &db, &tables, seed, index, &mut stats) {
            eprintln!("MISMATCH {report}");
            mismatches.push(report);
            if mismatches.len() >= MISMATCHES_MAX {
                break;
            }
        }
    }
    println!(
        "sqlite_differential: seed {seed}: setup {setup_took:.1?}, {} queries in {:.1?}: {} rows, \
         {} non-empty, {} with WHERE, {} with ORDER BY, {} with LIMIT/OFFSET, {} with parameters, \
         {} joins ({} of 3 tables, {} non-empty, {} rows)",
        stats.queries,
        started.elapsed() - setup_took,
        stats.rows,
        stats.non_empty,
        stats.filtered,
        stats.ordered,
        stats.limited,
        stats.with_params,
        stats.joins,
        stats.joins_of_3,
        stats.joins_non_empty,
        stats.join_rows,
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es) with seed {seed} (STRAND_DIFF_SEED={seed}); the first:\n{}",
        mismatches.len(),
        mismatches[0]
    );
    // The generator must not degenerate into queries that select nothing.
    if stats.queries >= 200 {
        assert!(
            stats.non_empty * 4 >= stats.queries,
            "too few non-empty answers"
        );
    }
}

/// A minimal table for the reproductions below.
fn keyed_table() -> AdminServer {
    AdminServer::with_app(
        "CREATE TABLE app.k (id BIGINT PRIMARY KEY, a INT) WITH (TYPE = 'SHARED'); \
         INSERT INTO app.k VALUES (5, 1), (7, 2)",
    )
}

/// `pk = c AND pk = c'` where c and c' are the same number typed differently (INT literal,
/// BIGINT parameter or CAST, DOUBLE literal) finds the row (a fixed server bug: the key lookup
/// intersected the constants before normalizing them to the key's type). The generator mixes
/// the forms (`gen::KeyForm`).
#[test]
fn key_lookups_and_mixed_numeric_constants() {
    let setup = keyed_table();
    let ids = |sql: &str, params: &[serde_json::Value]| -> Vec<i64> {
        rows(&setup.server, &setup.admin, sql, params)
            .iter()
            .map(|row| row["id"].as_i64().expect("id"))
            .collect()
    };
    assert_eq!(
        ids("SELECT id FROM app.k WHERE id = 5 AND id = 5", &[]),
        [5]
    );
    assert_eq!(
        ids("SELECT id FROM app.k WHERE id = 5 AND id = 5.0", &[]),
        [5]
    );
    assert_eq!(
        ids(
            "SELECT id FROM app.k WHERE id = 5 AND id = CAST(5 AS BIGINT)",
            &[]
        ),
        [5]
    );
    assert_eq!(
        ids(
            "SELECT id FROM app.k WHERE id IN (5, 7) AND id = $1",
            &[json!(5)]
        ),
        [5]
    );
}

/// DOUBLE arithmetic past the largest double is `numeric_overflow`, as docs/sql.md
/// ("Arithmetic") and PostgreSQL ("value out of range: overflow") say (a fixed server bug: it
/// gave Infinity). SQLite gives Infinity, so the generator keeps DOUBLE expressions far below
/// it (`schema::Ty::max_magnitude`).
#[test]
fn double_overflow_is_numeric_overflow() {
    let setup = keyed_table();
    for sql in [
        "SELECT 1e308 * 10 AS x FROM app.k",
        "SELECT a * 1e308 * 10 AS x FROM app.k",
        "SELECT id FROM app.k WHERE a * 1e308 * 10 > 0",
    ] {
        let answer = strand_tests::sql(&setup.server, &setup.admin, sql, &[]);
        strand_tests::assert_client_error(&answer, "numeric_overflow");
    }
}

/// `COALESCE(int_col, 2.5, $1)` with `$1` the JSON string `"3"`: the text parameter takes the
/// type of the other arguments (DOUBLE here), as PostgreSQL types a parameter from what it
/// meets. It was `type_mismatch` (the text parameter made the column's INT the target).
#[test]
fn coalesce_with_decimal_text_parameter() {
    let setup = keyed_table();
    let answer = strand_tests::sql(
        &setup.server,
        &setup.admin,
        "SELECT COALESCE(a, 2.5, $1) AS x FROM app.k ORDER BY id",
        &[json!("3")],
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let rows = rows(
        &setup.server,
        &setup.admin,
        "SELECT COALESCE(a, 2.5, $1) AS x FROM app.k ORDER BY id",
        &[json!("3")],
    );
    let xs: Vec<f64> = rows.iter().map(|r| r["x"].as_f64().expect("x")).collect();
    assert_eq!(xs, [1.0, 2.0]);
}

/// A BIGINT and a DOUBLE that are equal (Strand's `=` says so in WHERE) must join, also when
/// the value is an integer of magnitude 9.2e18 or more (here -9.2e18 and -2^63): found by this
/// test's generator, when the hash join's key hash (`hash_value` in sql-view
/// plan/accumulate.rs) treated integral doubles as integers only below 9.2e18, so the two
/// sides hashed apart.
#[test]
fn join_keys_equal_past_9_2e18_match() {
    let setup = AdminServer::with_app(
        "CREATE TABLE app.a (id BIGINT PRIMARY KEY, b BIGINT) WITH (TYPE = 'SHARED'); \
         CREATE TABLE app.d (id BIGINT PRIMARY KEY, d DOUBLE) WITH (TYPE = 'SHARED'); \
         INSERT INTO app.a VALUES (1, -9200000000000000000), (2, -9223372036854775808), (3, 5); \
         INSERT INTO app.d VALUES (1, -9.2e18), (2, -9223372036854775808.0), (3, 5.0)",
    );
    let pairs = |sql: &str| -> Vec<(i64, i64)> {
        rows(&setup.server, &setup.admin, sql, &[])
            .iter()
            .map(|row| {
                let id = |name: &str| row[name].as_i64().expect("an id");
                (id("a"), id("d"))
            })
            .collect()
    };
    // Strand's `=` finds the rows equal ...
    assert_eq!(
        pairs("SELECT a.id AS a, d.id AS d FROM app.a JOIN app.d ON a.id = d.id WHERE a.b = d.d ORDER BY a.id"),
        [(1, 1), (2, 2), (3, 3)]
    );
    // ... its hash join must too.
    assert_eq!(
        pairs("SELECT a.id AS a, d.id AS d FROM app.a JOIN app.d ON a.b = d.d ORDER BY a.id"),
        [(1, 1), (2, 2), (3, 3)]
    );
}
