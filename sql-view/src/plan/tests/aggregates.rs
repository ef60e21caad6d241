//! GROUP BY, aggregates, HAVING and DISTINCT over the `tickets` table.

use super::*;

/// `sql`'s result over `rows`, and its column names.
fn run(sql: &str, rows: &[Vec<Value>]) -> (Vec<String>, Vec<Vec<Value>>) {
    let plan = select(sql, &[]);
    let names = plan.columns().iter().map(|c| c.name.clone()).collect();
    let mut collector = plan.collector();
    for row in rows {
        collector.push(row, SYSTEM).unwrap();
    }
    (names, collector.finish().unwrap())
}

fn sample() -> Vec<Vec<Value>> {
    vec![
        row(1, "a", Some(3), Some("open")),
        row(2, "b", Some(5), Some("open")),
        row(3, "c", None, Some("done")),
        row(4, "d", Some(1), None),
        row(5, "e", Some(5), Some("open")),
    ]
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn groups_count_sum_avg_min_max_with_nulls() {
    let (names, rows) = run(
        "SELECT status, COUNT(*), COUNT(priority) AS n, SUM(priority), AVG(priority), \
         MIN(title), MAX(priority) FROM app.tickets GROUP BY status ORDER BY status",
        &sample(),
    );
    assert_eq!(
        names,
        [
            "status",
            "COUNT(*)",
            "n",
            "SUM(priority)",
            "AVG(priority)",
            "MIN(title)",
            "MAX(priority)"
        ]
    );
    assert_eq!(
        rows,
        [
            vec![
                text("done"),
                Value::BigInt(1),
                Value::BigInt(0),
                Value::Null,
                Value::Null,
                text("c"),
                Value::Null
            ],
            vec![
                text("open"),
                Value::BigInt(3),
                Value::BigInt(3),
                Value::BigInt(13),
                Value::Double(13.0 / 3.0),
                text("a"),
                Value::Int(5)
            ],
            // NULL is one group, sorted last.
            vec![
                Value::Null,
                Value::BigInt(1),
                Value::BigInt(1),
                Value::BigInt(1),
                Value::Double(1.0),
                text("d"),
                Value::Int(1)
            ],
        ]
    );
}

#[test]
fn having_order_by_an_aggregate_limit_and_distinct() {
    let (_, rows) = run(
        "SELECT status, COUNT(*) AS c FROM app.tickets WHERE id > 1 GROUP BY status \
         HAVING COUNT(*) >= 1 ORDER BY c DESC, status LIMIT 2",
        &sample(),
    );
    assert_eq!(
        rows,
        [
            vec![text("open"), Value::BigInt(2)],
            vec![text("done"), Value::BigInt(1)]
        ]
    );
    let (_, rows) = run(
        "SELECT priority, COUNT(DISTINCT status) FROM app.tickets GROUP BY priority \
         HAVING SUM(id) > 2 ORDER BY 1",
        &sample(),
    );
    assert_eq!(
        rows,
        [
            vec![Value::Int(1), Value::BigInt(0)],
            vec![Value::Int(5), Value::BigInt(1)],
            vec![Value::Null, Value::BigInt(1)],
        ]
    );
    let (names, rows) = run(
        "SELECT DISTINCT priority FROM app.tickets ORDER BY priority",
        &sample(),
    );
    assert_eq!(names, ["priority"]);
    assert_eq!(
        rows,
        [
            vec![Value::Int(1)],
            vec![Value::Int(3)],
            vec![Value::Int(5)],
            vec![Value::Null]
        ]
    );
    let (_, rows) = run(
        "SELECT COUNT(*) + 1, MAX(id) * 2 FROM app.tickets",
        &sample(),
    );
    assert_eq!(rows, [vec![Value::BigInt(6), Value::BigInt(10)]]);
}

#[test]
fn no_rows_is_one_row_without_group_by_and_none_with_it() {
    let (_, rows) = run(
        "SELECT COUNT(*), SUM(priority), MAX(title) FROM app.tickets",
        &[],
    );
    assert_eq!(rows, [vec![Value::BigInt(0), Value::Null, Value::Null]]);
    let (_, rows) = run(
        "SELECT status, COUNT(*) FROM app.tickets GROUP BY status",
        &[],
    );
    assert!(rows.is_empty());
}

#[test]
fn misplaced_columns_and_aggregates_are_grouping_errors() {
    for (sql, code) in [
        (
            "SELECT title, COUNT(*) FROM app.tickets GROUP BY status",
            "grouping_error",
        ),
        (
            "SELECT status FROM app.tickets WHERE COUNT(*) > 1 GROUP BY status",
            "grouping_error",
        ),
        (
            "SELECT * FROM app.tickets GROUP BY status",
            "grouping_error",
        ),
        ("SELECT SUM(COUNT(*)) FROM app.tickets", "grouping_error"),
        ("SELECT SUM(title) FROM app.tickets", "type_mismatch"),
        ("SELECT DISTINCT COUNT(*) FROM app.tickets", "unsupported"),
    ] {
        let error = compile(sql, &[]).expect_err(sql);
        assert_eq!(error.code, code, "{sql}: {error:?}");
    }
    let error = compile(
        "SELECT title, COUNT(*) FROM app.tickets GROUP BY status",
        &[],
    )
    .expect_err("title is not grouped");
    assert!(error.message.contains("title"), "{}", error.message);
    assert_eq!(error.position, Position::known(1, 8));
}

#[test]
fn sum_overflow_is_numeric_overflow() {
    let plan = select("SELECT SUM(id) FROM app.tickets", &[]);
    let mut collector = plan.collector();
    collector
        .push(&row(i64::MAX, "a", None, None), SYSTEM)
        .unwrap();
    let error = collector
        .push(&row(1, "b", None, None), SYSTEM)
        .expect_err("past BIGINT");
    assert_eq!(error.code, "numeric_overflow");
}

#[test]
fn double_overflow_is_numeric_overflow_and_mixed_key_constants_are_one_key() {
    let error = compile("SELECT 1e308 * 10 FROM app.tickets", &[]).expect_err("past f64");
    assert_eq!(error.code, "numeric_overflow");
    let plan = select(
        "SELECT CAST(priority AS DOUBLE) * 1e308 * 10 FROM app.tickets",
        &[],
    );
    let error = plan
        .project(&row(1, "t", Some(5), None), SYSTEM)
        .expect_err("a row's value past f64");
    assert_eq!(error.code, "numeric_overflow");
    // INT 5, BIGINT 5 and DOUBLE 5.0 are the same key in an AND.
    let plan = select(
        "SELECT id FROM app.tickets WHERE id = 5 AND id = 5.0 AND id = CAST(5 AS BIGINT)",
        &[],
    );
    assert_eq!(plan.filter().key_values().map(|v| v.len()), Some(1));
}
