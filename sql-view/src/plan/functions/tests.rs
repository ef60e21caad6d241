//! Scalar functions, CASE, CAST of row values and ILIKE over the `tickets` test table
//! (`plan/tests/mod.rs`): values, NULL rules, types and errors.

use crate::plan::tests::{row, select, SYSTEM};
use crate::value::{DataType, Value};

/// The single projected value of `SELECT <expr> FROM app.tickets` on one row.
fn value_of(expr: &str, row: &[Value]) -> Value {
    let plan = select(&format!("SELECT {expr} FROM app.tickets"), &[]);
    let mut values = plan.project(row, SYSTEM).expect("evaluates");
    values.remove(0)
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn text_functions_count_characters_and_keep_nulls() {
    let r = row(1, "Héllo World", Some(3), None);
    assert_eq!(value_of("LOWER(title)", &r), text("héllo world"));
    assert_eq!(value_of("UPPER(title)", &r), text("HÉLLO WORLD"));
    assert_eq!(value_of("LENGTH(title)", &r), Value::Int(11));
    assert_eq!(value_of("LOWER(status)", &r), Value::Null);
    assert_eq!(value_of("LENGTH(status)", &r), Value::Null);
    assert_eq!(value_of("SUBSTRING(title, 2, 4)", &r), text("éllo"));
    assert_eq!(value_of("SUBSTRING(title FROM 7)", &r), text("World"));
    assert_eq!(value_of("SUBSTRING(title FROM 0 FOR 3)", &r), text("Hé"));
    assert_eq!(value_of("SUBSTRING(title, -5, 3)", &r), text(""));
    assert_eq!(value_of("SUBSTRING(title, 50)", &r), text(""));
    assert_eq!(
        value_of("SUBSTRING(title, priority)", &r),
        text("llo World")
    );
    assert_eq!(value_of("SUBSTRING(title, NULL)", &r), Value::Null);
    assert_eq!(value_of("title || '!'", &r), text("Héllo World!"));
}

#[test]
fn null_functions_and_case() {
    let with = row(1, "t", Some(3), Some("open"));
    let without = row(2, "t", None, None);
    assert_eq!(value_of("COALESCE(status, title)", &with), text("open"));
    assert_eq!(value_of("COALESCE(status, title)", &without), text("t"));
    assert_eq!(value_of("COALESCE(status, NULL)", &without), Value::Null);
    assert_eq!(
        value_of("COALESCE(priority, 0) + 1", &without),
        Value::Int(1)
    );
    assert_eq!(value_of("COALESCE(priority, id)", &with), Value::BigInt(3));
    assert_eq!(value_of("NULLIF(priority, 3)", &with), Value::Null);
    assert_eq!(value_of("NULLIF(priority, 4)", &with), Value::Int(3));
    assert_eq!(value_of("NULLIF(priority, 4)", &without), Value::Null);
    let case =
        "CASE WHEN priority > 2 THEN 'high' WHEN priority IS NULL THEN 'none' ELSE 'low' END";
    assert_eq!(value_of(case, &with), text("high"));
    assert_eq!(value_of(case, &without), text("none"));
    let simple = "CASE status WHEN 'open' THEN 1 WHEN 'done' THEN 2 END";
    assert_eq!(value_of(simple, &with), Value::Int(1));
    assert_eq!(
        value_of(simple, &without),
        Value::Null,
        "NULL matches no WHEN"
    );
}

#[test]
fn numbers_round_halves_away_from_zero() {
    let r = row(-7, "t", Some(-15), None);
    assert_eq!(value_of("ABS(priority)", &r), Value::Int(15));
    assert_eq!(value_of("ABS(id)", &r), Value::BigInt(7));
    assert_eq!(value_of("ABS(-2.5)", &r), Value::Double(2.5));
    assert_eq!(value_of("ROUND(2.5)", &r), Value::Double(3.0));
    assert_eq!(value_of("ROUND(-2.5)", &r), Value::Double(-3.0));
    assert_eq!(value_of("ROUND(1.2345, 2)", &r), Value::Double(1.23));
    assert_eq!(value_of("ROUND(priority)", &r), Value::Int(-15));
    assert_eq!(value_of("ROUND(priority, -1)", &r), Value::Int(-20));
    assert_eq!(value_of("ROUND(id, -1)", &r), Value::BigInt(-10));
    assert_eq!(value_of("ROUND(NULL)", &r), Value::Null);
}

#[test]
fn cast_of_row_values_and_ilike() {
    let r = row(42, "Hello", Some(7), Some("OPEN"));
    assert_eq!(value_of("CAST(priority AS TEXT)", &r), text("7"));
    assert_eq!(value_of("CAST(id AS DOUBLE)", &r), Value::Double(42.0));
    let plan = select("SELECT CAST(title AS INT) FROM app.tickets", &[]);
    assert_eq!(plan.columns()[0].data_type, DataType::Int);
    let error = plan.project(&r, SYSTEM).expect_err("'Hello' is no INT");
    assert_eq!(error.code, "type_mismatch");
    let plan = select("SELECT id FROM app.tickets WHERE status ILIKE 'op%'", &[]);
    assert_eq!(plan.matches(&r, SYSTEM).ok(), Some(true));
    let plan = select(
        "SELECT id FROM app.tickets WHERE title NOT ILIKE '%LL%'",
        &[],
    );
    assert_eq!(plan.matches(&r, SYSTEM).ok(), Some(false));
}

#[test]
fn type_errors_and_arity_name_the_culprit() {
    use crate::parse::parse_statement;
    use crate::plan::tests::compile;
    for (sql, code) in [
        ("SELECT LOWER(priority) FROM app.tickets", "type_mismatch"),
        ("SELECT ABS(title) FROM app.tickets", "type_mismatch"),
        (
            "SELECT COALESCE(title, priority) FROM app.tickets",
            "type_mismatch",
        ),
        (
            "SELECT CASE WHEN priority THEN 1 END FROM app.tickets",
            "type_mismatch",
        ),
        (
            "SELECT SUBSTRING(title, 1, -1) FROM app.tickets",
            "invalid_value",
        ),
    ] {
        let error = match compile(sql, &[]) {
            Err(error) => error,
            Ok(Some(crate::plan::Plan::Select(plan))) => plan
                .project(&row(1, "t", Some(1), None), SYSTEM)
                .expect_err(sql),
            other => panic!("{sql}: {other:?}"),
        };
        assert_eq!(error.code, code, "{sql}: {error:?}");
    }
    for sql in [
        "SELECT LOWER(title, title) FROM app.tickets",
        "SELECT NULLIF(title) FROM app.tickets",
    ] {
        let error = parse_statement(sql).expect_err(sql);
        assert_eq!(error.code, "invalid_value", "{sql}");
        assert!(error.message.contains("takes"), "{}", error.message);
    }
    let error = parse_statement("SELECT md5(title) FROM app.tickets").expect_err("md5");
    assert_eq!(error.code, "unsupported");
    assert!(error.message.contains("md5"), "{}", error.message);
}

#[test]
fn now_and_interval_arithmetic_shift_timestamps() {
    use crate::plan::tests::compile;
    let r = row(1, "t", None, None); // updated_at = 1_700_000_000 s
    let hour = 3_600_000_000i64;
    let base = 1_700_000_000_000_000i64;
    assert_eq!(
        value_of("updated_at + INTERVAL '1 hour'", &r),
        Value::Timestamp(base + hour)
    );
    assert_eq!(
        value_of("INTERVAL '1 day 2 hours' + updated_at", &r),
        Value::Timestamp(base + 26 * hour)
    );
    assert_eq!(
        value_of("updated_at - INTERVAL '90' SECOND", &r),
        Value::Timestamp(base - 90_000_000)
    );
    assert_eq!(
        value_of("updated_at - INTERVAL '1.5 hours'", &r),
        Value::Timestamp(base - hour * 3 / 2)
    );
    let Value::Timestamp(now) = value_of("NOW()", &r) else {
        panic!("now() is a timestamp");
    };
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default();
    assert!(
        (clock - now).abs() < 60_000_000,
        "now() is the wall clock: {now} vs {clock}"
    );
    let plan = select(
        "SELECT id FROM app.tickets WHERE updated_at > now() - INTERVAL '1 hour'",
        &[],
    );
    assert!(plan.reads_clock());
    assert_eq!(
        plan.matches(&r, SYSTEM).ok(),
        Some(false),
        "2023 is not in the last hour"
    );
    let plan = select(
        "SELECT id FROM app.tickets WHERE updated_at < CURRENT_TIMESTAMP",
        &[],
    );
    assert_eq!(plan.matches(&r, SYSTEM).ok(), Some(true));
    assert!(!select("SELECT id FROM app.tickets", &[]).reads_clock());
    for (sql, code) in [
        ("SELECT INTERVAL '1 hour' FROM app.tickets", "unsupported"),
        (
            "SELECT updated_at + INTERVAL '1 month' FROM app.tickets",
            "unsupported",
        ),
        (
            "SELECT updated_at + INTERVAL 'soon' FROM app.tickets",
            "invalid_value",
        ),
        (
            "SELECT priority + INTERVAL '1 hour' FROM app.tickets",
            "type_mismatch",
        ),
    ] {
        let error = compile(sql, &[]).expect_err(sql);
        assert_eq!(error.code, code, "{sql}: {error:?}");
    }
}
