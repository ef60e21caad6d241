//! INSERT, UPDATE and DELETE plans.

use super::*;

#[test]
fn insert_coerces_and_checks_not_null() {
    let Ok(Some(Plan::Insert(plan))) = compile(
        "INSERT INTO app.tickets (title, id, updated_at, meta) \
         VALUES ('a', 1, '1970-01-01T00:00:01Z', '[1]'), ($1, -2, NULL, NULL)",
        &[Value::Text("b".into())],
    ) else {
        panic!()
    };
    assert_eq!(plan.rows().len(), 2);
    assert_eq!(plan.rows()[0][4], Value::Timestamp(1_000_000));
    assert_eq!(plan.rows()[0][5], Value::Json("[1]".into()));
    assert_eq!(plan.rows()[1][2], Value::Null);
    assert_eq!(plan.primary_key(&plan.rows()[1]), Some(&Value::BigInt(-2)));
    let null_title = compile_error("INSERT INTO app.tickets (id, title) VALUES (1, NULL)", &[]);
    assert_eq!(
        (null_title.code, null_title.position),
        (code::NOT_NULL_VIOLATION, Position::known(1, 48))
    );
    let omitted = compile_error("INSERT INTO app.tickets (id) VALUES (1)", &[]);
    assert_eq!(omitted.code, code::NOT_NULL_VIOLATION);
    let text_into_int = compile_error(
        "INSERT INTO app.tickets (id, title, priority) VALUES (1, 'a', 'high')",
        &[],
    );
    assert_eq!(
        (text_into_int.code, text_into_int.position),
        (code::TYPE_MISMATCH, Position::known(1, 63))
    );
    let arity = compile_error("INSERT INTO app.tickets (id, title) VALUES (1)", &[]);
    assert_eq!(arity.code, code::SYNTAX_ERROR);
    let system = compile_error("INSERT INTO app.tickets (_seq) VALUES (1)", &[]);
    assert_eq!(system.code, code::INVALID_VALUE);
    let reference = compile_error("INSERT INTO app.tickets (id, title) VALUES (id, 'a')", &[]);
    assert_eq!(reference.code, code::UNKNOWN_COLUMN);
}

#[test]
fn update_applies_to_the_old_row() {
    let Ok(Some(Plan::Update(plan))) = compile(
        "UPDATE app.tickets SET priority = priority + 1, status = title WHERE id = 1",
        &[],
    ) else {
        panic!()
    };
    let old = row(1, "t", Some(1), None);
    assert!(plan.matches(&old, SYSTEM).unwrap());
    assert_eq!(plan.filter().key_values(), Some(vec![Value::BigInt(1)]));
    let new = plan.apply(&old, SYSTEM).unwrap();
    assert_eq!(
        (new[2].clone(), new[3].clone()),
        (Value::Int(2), Value::Text("t".into()))
    );
    // Rows written before ADD COLUMN have fewer fields: they read as NULL.
    let short = encode_row(&old[..2]).unwrap();
    let new = plan.apply(&RowView::new(&short).unwrap(), SYSTEM).unwrap();
    assert_eq!((new.len(), new[2].clone()), (6, Value::Null));
    let overflow = compile(
        "UPDATE app.tickets SET priority = priority * 2147483647",
        &[],
    )
    .unwrap();
    let Some(Plan::Update(overflow)) = overflow else {
        panic!()
    };
    assert_eq!(overflow.apply(&old, SYSTEM).map(|_| ()), Ok(()));
    assert_eq!(
        overflow
            .apply(&row(1, "t", Some(2), None), SYSTEM)
            .unwrap_err()
            .code,
        code::NUMERIC_OVERFLOW
    );
    let key = compile_error("UPDATE app.tickets SET id = 2", &[]);
    assert_eq!(key.code, code::UNSUPPORTED);
    let null = compile_error("UPDATE app.tickets SET title = NULL", &[]);
    assert_eq!(null.code, code::NOT_NULL_VIOLATION);
    let mismatch = compile_error("UPDATE app.tickets SET priority = title", &[]);
    assert_eq!(mismatch.code, code::TYPE_MISMATCH);
}

#[test]
fn delete_and_other_statements() {
    let Ok(Some(Plan::Delete(plan))) =
        compile("DELETE FROM app.tickets WHERE status = 'done'", &[])
    else {
        panic!()
    };
    assert!(plan
        .matches(&row(1, "t", None, Some("done")), SYSTEM)
        .unwrap());
    assert!(!plan.matches(&row(1, "t", None, None), SYSTEM).unwrap());
    assert!(matches!(compile("SHOW TABLES", &[]), Ok(None)));
    let inner = compile("EXECUTE AS USER 'a' (DELETE FROM app.tickets)", &[]);
    assert!(matches!(inner, Ok(Some(Plan::Delete(_)))));
    let Statement::Select(parsed) = parse_statement("SELECT * FROM app.tickets").unwrap() else {
        panic!()
    };
    assert_eq!(
        SelectPlan::compile(&parsed, &std::collections::HashMap::new(), &[])
            .unwrap_err()
            .code,
        code::UNKNOWN_TABLE
    );
}

#[test]
fn insert_fills_omitted_columns_with_their_defaults() {
    let Ok(crate::ast::Statement::CreateTable { table, .. }) = crate::parse_statement(
        "CREATE TABLE app.orders (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), \
         at TIMESTAMP NOT NULL DEFAULT now(), status TEXT DEFAULT 'open', \
         price DECIMAL(10,2) NOT NULL, n INT)",
    ) else {
        panic!()
    };
    let insert = |sql: &str| match crate::parse_statement(sql) {
        Ok(crate::ast::Statement::Insert(insert)) => InsertPlan::compile(&insert, &table, &[]),
        other => panic!("{other:?}"),
    };
    let mut plan =
        insert("INSERT INTO app.orders (price, status) VALUES (1.5, NULL), (2, 'done'), (3, 'x')")
            .unwrap();
    assert_eq!(plan.ids_needed(), 3);
    plan.fill_ids(&[10, 11, 12]);
    let rows = plan.rows();
    let ids: Vec<&Value> = rows.iter().map(|row| &row[0]).collect();
    assert_eq!(
        ids,
        [&Value::BigInt(10), &Value::BigInt(11), &Value::BigInt(12)]
    );
    // One now() for the whole statement; an explicit NULL is not replaced by the default.
    assert!(matches!(rows[0][1], Value::Timestamp(t) if t > 1_700_000_000_000_000));
    assert!(rows.iter().all(|row| row[1] == rows[0][1]));
    assert_eq!(rows[0][2], Value::Null);
    assert_eq!(rows[1][2], Value::Text("done".into()));
    assert_eq!(rows[0][3].to_json(), "1.50");
    assert_eq!(rows[0][4], Value::Null);
    let given = insert("INSERT INTO app.orders (id, price) VALUES (5, 1)").unwrap();
    assert_eq!(given.ids_needed(), 0);
    assert_eq!(given.rows()[0][2], Value::Text("open".into()));
    let missing = insert("INSERT INTO app.orders (status) VALUES ('x')").unwrap_err();
    assert_eq!(missing.code, code::NOT_NULL_VIOLATION);
    assert!(missing.message.contains("price"), "{}", missing.message);
}
