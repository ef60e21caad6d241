//! SELECT plans: filters, parameters, errors, projection, ORDER BY / LIMIT, key lookups.

use super::*;

#[test]
fn filters_with_every_operator() {
    let r = row(1, "hello", Some(3), None);
    let yes = [
        "SELECT * FROM app.tickets WHERE id = 1",
        "SELECT * FROM app.tickets WHERE priority <> 4 AND priority >= 3 AND priority <= 3",
        "SELECT * FROM app.tickets WHERE priority > 2 OR status = 'x'",
        "SELECT * FROM app.tickets WHERE NOT priority < 3",
        "SELECT * FROM app.tickets WHERE priority IN (1, 3)",
        "SELECT * FROM app.tickets WHERE priority NOT IN (1, 2)",
        "SELECT * FROM app.tickets WHERE priority BETWEEN 1 AND 3",
        "SELECT * FROM app.tickets WHERE title LIKE 'h_l%'",
        "SELECT * FROM app.tickets WHERE title NOT LIKE '%x%'",
        "SELECT * FROM app.tickets WHERE status IS NULL AND title IS NOT NULL",
        "SELECT * FROM app.tickets WHERE updated_at > '2023-01-01T00:00:00Z'",
        "SELECT * FROM app.tickets WHERE meta IS NULL",
        "SELECT * FROM app.tickets WHERE _seq = 100 AND NOT _deleted",
        "SELECT * FROM app.tickets WHERE priority * 2 + 1 = 7.0",
        "SELECT * FROM app.tickets WHERE title || '!' = 'hello!'",
        "SELECT * FROM app.tickets t WHERE t.id = 1",
        "SELECT * FROM app.tickets WHERE app.tickets.id = 1 AND tickets.id = 1",
        "SELECT * FROM app.tickets WHERE CAST('3' AS INT) = priority AND '4'::BIGINT > 3",
    ];
    for sql in yes {
        assert!(matches(sql, &[], &r), "{sql}");
    }
    let no = [
        "SELECT * FROM app.tickets WHERE status = 'open'",
        "SELECT * FROM app.tickets WHERE status <> 'open'",
        "SELECT * FROM app.tickets WHERE NOT (status = 'open')",
        "SELECT * FROM app.tickets WHERE priority IN (1, NULL)",
        "SELECT * FROM app.tickets WHERE priority NOT IN (1, NULL)",
        "SELECT * FROM app.tickets WHERE NULL",
        "SELECT * FROM app.tickets WHERE priority NOT BETWEEN 1 AND 5",
    ];
    for sql in no {
        assert!(!matches(sql, &[], &r), "{sql}");
    }
}

#[test]
fn parameters_bind_and_coerce() {
    let r = row(7, "a", Some(3), Some("open"));
    let sql = "SELECT * FROM app.tickets WHERE id = $1 AND status = $2";
    assert!(matches(
        sql,
        &[Value::BigInt(7), Value::Text("open".into())],
        &r
    ));
    assert!(
        matches(
            sql,
            &[Value::Text("7".into()), Value::Text("open".into())],
            &r
        ),
        "lenient"
    );
    let missing = compile_error(sql, &[Value::BigInt(7)]);
    assert_eq!(
        (missing.code, missing.position),
        (code::INVALID_PARAMETER, Position::known(1, 54))
    );
    let wrong = compile_error(sql, &[Value::Text("seven".into()), Value::Null]);
    assert_eq!(
        (wrong.code, wrong.position),
        (code::INVALID_PARAMETER, Position::known(1, 38))
    );
    let ts = "SELECT * FROM app.tickets WHERE updated_at < $1";
    assert!(matches(
        ts,
        &[Value::Text("2030-01-01T00:00:00Z".into())],
        &r
    ));
}

#[test]
fn unknown_names_and_type_errors_point_at_the_culprit() {
    let unknown = compile_error("SELECT id FROM app.tickets\nWHERE nope = 1", &[]);
    assert_eq!(
        (unknown.code, unknown.position),
        (code::UNKNOWN_COLUMN, Position::known(2, 7))
    );
    let table = compile_error("SELECT id FROM app.nope", &[]);
    assert_eq!(
        (table.code, table.position),
        (code::UNKNOWN_TABLE, Position::known(1, 16))
    );
    let mismatch = compile_error("SELECT id FROM app.tickets WHERE priority = 'high'", &[]);
    assert_eq!(
        (mismatch.code, mismatch.position),
        (code::TYPE_MISMATCH, Position::known(1, 45))
    );
    let columns = compile_error("SELECT id FROM app.tickets WHERE priority = title", &[]);
    assert_eq!(columns.code, code::TYPE_MISMATCH);
    let not_bool = compile_error("SELECT id FROM app.tickets WHERE priority", &[]);
    assert_eq!(not_bool.code, code::TYPE_MISMATCH);
    let json = compile_error("SELECT id FROM app.tickets WHERE meta = '{}'", &[]);
    assert_eq!(json.code, code::TYPE_MISMATCH);
    let like = compile_error("SELECT id FROM app.tickets WHERE priority LIKE 'a'", &[]);
    assert_eq!(like.code, code::TYPE_MISMATCH);
    let bad_time = compile_error("SELECT id FROM app.tickets WHERE updated_at > 'soon'", &[]);
    assert_eq!(bad_time.code, code::TYPE_MISMATCH);
    let qualifier = compile_error("SELECT x.id FROM app.tickets", &[]);
    assert_eq!(qualifier.code, code::UNKNOWN_TABLE);
    let constant_error = compile_error("SELECT 1 / 0 FROM app.tickets", &[]);
    assert_eq!(
        (constant_error.code, constant_error.position),
        (code::DIVISION_BY_ZERO, Position::known(1, 8))
    );
}

#[test]
fn projection_schema_and_values() {
    let plan = select(
        "SELECT id, title AS name, priority + 1, _seq, _deleted, NULL FROM app.tickets",
        &[],
    );
    let schema: Vec<(&str, DataType)> = plan
        .columns()
        .iter()
        .map(|c| (c.name.as_str(), c.data_type))
        .collect();
    assert_eq!(
        schema,
        [
            ("id", DataType::BigInt),
            ("name", DataType::Text),
            ("priority + 1", DataType::Int),
            ("_seq", DataType::BigInt),
            ("_deleted", DataType::Boolean),
            ("NULL", DataType::Text),
        ]
    );
    let values = plan.project(&row(1, "t", Some(4), None), SYSTEM).unwrap();
    assert_eq!(
        values[..5],
        [
            Value::BigInt(1),
            Value::Text("t".into()),
            Value::Int(5),
            Value::BigInt(100),
            Value::Boolean(false)
        ]
    );
    let star = select("SELECT * FROM app.tickets", &[]);
    assert_eq!(star.columns().len(), 6, "* has no system columns");
}

fn collect_ids(sql: &str) -> Vec<Value> {
    let rows: Vec<Vec<Value>> = (0..20)
        .map(|i| {
            row(
                i,
                &format!("t{i}"),
                (i % 4 != 0).then_some((i % 5) as i32),
                None,
            )
        })
        .collect();
    let plan = select(sql, &[]);
    let mut collector = plan.collector();
    for r in &rows {
        collector.push(r, SYSTEM).unwrap();
    }
    collector
        .finish()
        .unwrap()
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

#[test]
fn order_by_limit_offset_with_the_collector() {
    // NULL priorities (ids 0, 4, 8, ...) sort last ascending, first descending.
    let cases: [(&str, &[i64]); 10] = [
        (
            "SELECT id FROM app.tickets WHERE id < 5 ORDER BY id DESC",
            &[4, 3, 2, 1, 0],
        ),
        (
            "SELECT id FROM app.tickets ORDER BY id LIMIT 3 OFFSET 2",
            &[2, 3, 4],
        ),
        ("SELECT id FROM app.tickets LIMIT 2 OFFSET 1", &[1, 2]),
        (
            "SELECT id FROM app.tickets ORDER BY priority, id LIMIT 2",
            &[5, 10],
        ),
        (
            "SELECT id FROM app.tickets ORDER BY priority DESC, id LIMIT 2",
            &[0, 4],
        ),
        (
            "SELECT id FROM app.tickets ORDER BY priority NULLS FIRST, id DESC LIMIT 1",
            &[16],
        ),
        (
            "SELECT id AS k FROM app.tickets ORDER BY k DESC LIMIT 1",
            &[19],
        ),
        ("SELECT id FROM app.tickets ORDER BY 1 DESC LIMIT 1", &[19]),
        (
            "SELECT id FROM app.tickets ORDER BY title LIMIT 3",
            &[0, 1, 10],
        ),
        ("SELECT id FROM app.tickets LIMIT 0", &[]),
    ];
    for (sql, ids) in cases {
        let expected: Vec<Value> = ids.iter().map(|&i| Value::BigInt(i)).collect();
        assert_eq!(collect_ids(sql), expected, "{sql}");
    }
}

#[test]
fn limit_and_offset_take_constants_and_parameters() {
    let params = [Value::BigInt(3), Value::Text("1".into())];
    let plan = select("SELECT id FROM app.tickets LIMIT $1 OFFSET $2", &params);
    assert_eq!((plan.limit(), plan.offset()), (Some(3), 1));
    let negative = compile_error("SELECT id FROM app.tickets LIMIT -1", &[]);
    assert_eq!(negative.code, code::INVALID_VALUE);
    let position = compile_error("SELECT id FROM app.tickets ORDER BY 9", &[]);
    assert_eq!(position.code, code::UNKNOWN_COLUMN);
}

#[test]
fn primary_key_lookups() {
    let keys = |sql: &str| select(sql, &[]).filter().key_values();
    assert_eq!(
        keys("SELECT * FROM app.tickets WHERE id = 3"),
        Some(vec![Value::BigInt(3)])
    );
    assert_eq!(
        keys("SELECT * FROM app.tickets WHERE id IN (2, 1) AND status = 'x'"),
        Some(vec![Value::BigInt(1), Value::BigInt(2)])
    );
    assert_eq!(
        keys("SELECT * FROM app.tickets WHERE id = 3 OR priority = 1"),
        None
    );
    assert_eq!(keys("SELECT * FROM app.tickets"), None);
}
