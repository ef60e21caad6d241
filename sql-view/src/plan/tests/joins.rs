//! Joins over `tickets` and a `people` table, run by the hash join of `join_exec.rs` into a
//! collector, against results worked out by hand.

use std::collections::HashMap;

use super::*;

fn people() -> TableDef {
    let column = |name: &str, data_type, not_null| ColumnDef {
        name: Name::new(name).unwrap(),
        data_type,
        not_null,
        default: None,
    };
    let name = TableName {
        namespace: Name::new("app").unwrap(),
        table: Name::new("people").unwrap(),
    };
    let columns = vec![
        column("id", DataType::Int, true),
        column("name", DataType::Text, false),
        column("team", DataType::Text, false),
    ];
    TableDef::new(name, TableKind::Shared, columns, Some(0)).unwrap()
}

pub(super) fn catalog() -> HashMap<TableName, Arc<TableDef>> {
    [tickets(), people()]
        .into_iter()
        .map(|t| (t.name().clone(), Arc::new(t)))
        .collect()
}

pub(super) fn person(id: i32, name: &str, team: Option<&str>) -> Vec<Value> {
    let team = team.map_or(Value::Null, |t| Value::Text(t.into()));
    vec![Value::Int(id), Value::Text(name.into()), team]
}

fn plan_of(sql: &str) -> Result<SelectPlan> {
    let Statement::Select(select) = parse_statement(sql)? else {
        panic!("{sql}: not a SELECT");
    };
    SelectPlan::compile(&select, &catalog(), &[])
}

/// Tickets use `priority` as the person it is assigned to.
fn run(sql: &str) -> (Vec<String>, Vec<Vec<Value>>) {
    let plan = plan_of(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let join = plan.join().expect("a join");
    let mut build = join.start();
    let people = [
        person(1, "ann", Some("red")),
        person(3, "bob", Some("blue")),
        person(5, "cy", None),
        person(6, "dee", Some("red")),
    ];
    for (seq, row) in people.iter().enumerate() {
        for source in 1..join.sources().len() {
            build.add(source, row, seq as i64).unwrap();
        }
    }
    let tickets = [
        row(1, "a", Some(3), Some("open")),
        row(2, "b", Some(5), Some("open")),
        row(3, "c", None, Some("done")),
        row(4, "d", Some(1), None),
        row(5, "e", Some(5), Some("open")),
        row(6, "f", Some(9), Some("done")),
    ];
    let mut collector = plan.collector();
    for (seq, row) in tickets.iter().enumerate() {
        let bytes = encode_row(row).unwrap();
        let view = RowView::new(&bytes).unwrap();
        build
            .probe(&view, 100 + seq as i64, &mut |joined, system| {
                collector.push(joined, system)?;
                Ok(!collector.is_full())
            })
            .unwrap();
    }
    let names = plan.columns().iter().map(|c| c.name.clone()).collect();
    (names, collector.finish().unwrap())
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn inner_join_keeps_pairs_that_match() {
    let (names, rows) = run(
        "SELECT t.id, p.name FROM app.tickets t JOIN app.people p ON t.priority = p.id \
         ORDER BY t.id",
    );
    assert_eq!(names, ["id", "name"]);
    let expected = [(1, "bob"), (2, "cy"), (4, "ann"), (5, "cy")];
    let expected: Vec<Vec<Value>> = expected
        .iter()
        .map(|(id, name)| vec![Value::BigInt(*id), text(name)])
        .collect();
    assert_eq!(rows, expected);
}

#[test]
fn left_join_keeps_every_ticket_with_nulls_for_no_person() {
    let (_, rows) = run(
        "SELECT t.id, p.name, p._seq IS NULL AS alone FROM app.tickets AS t \
         LEFT JOIN app.people AS p ON p.id = t.priority ORDER BY 1",
    );
    let names: Vec<(Value, Value, Value)> = rows
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    assert_eq!(names.len(), 6);
    assert_eq!(
        names[2],
        (Value::BigInt(3), Value::Null, Value::Boolean(true))
    );
    assert_eq!(
        names[5],
        (Value::BigInt(6), Value::Null, Value::Boolean(true))
    );
    assert_eq!(
        names[0],
        (Value::BigInt(1), text("bob"), Value::Boolean(false))
    );
}

#[test]
fn on_conditions_beyond_the_equality_and_where_after_the_join() {
    // ON's extra condition only removes partners (LEFT keeps the ticket); WHERE removes rows.
    let (_, rows) = run(
        "SELECT t.id, p.name FROM app.tickets t LEFT JOIN app.people p \
         ON t.priority = p.id AND p.team = 'blue' WHERE t.status = 'open' ORDER BY t.id",
    );
    let expected = vec![
        vec![Value::BigInt(1), text("bob")],
        vec![Value::BigInt(2), Value::Null],
        vec![Value::BigInt(5), Value::Null],
    ];
    assert_eq!(rows, expected);
}

#[test]
fn star_spells_out_both_tables_and_qualifies_shared_names() {
    let (names, rows) =
        run("SELECT * FROM app.tickets t JOIN app.people p ON t.priority = p.id WHERE t.id = 1");
    assert_eq!(
        names,
        [
            "t.id",
            "title",
            "priority",
            "status",
            "updated_at",
            "meta",
            "p.id",
            "name",
            "team"
        ]
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][6], Value::Int(3));
    let (names, _) =
        run("SELECT p.*, t.title FROM app.tickets t JOIN app.people p ON t.priority = p.id");
    assert_eq!(names, ["id", "name", "team", "title"]);
}

#[test]
fn grouping_over_a_join() {
    let (_, rows) = run(
        "SELECT p.team, COUNT(*) AS n FROM app.tickets t JOIN app.people p \
         ON t.priority = p.id GROUP BY p.team ORDER BY p.team",
    );
    let expected = vec![
        vec![text("blue"), Value::BigInt(1)],
        vec![text("red"), Value::BigInt(1)],
        vec![Value::Null, Value::BigInt(2)],
    ];
    assert_eq!(rows, expected);
}

#[test]
fn ties_are_broken_by_each_tables_key() {
    // Tickets 2 and 5 are both cy's (team NULL, first in DESC): ticket key order.
    let (_, rows) = run(
        "SELECT t.id FROM app.tickets t JOIN app.people p ON t.priority = p.id \
         ORDER BY p.team DESC LIMIT 3",
    );
    let ids: Vec<Value> = rows.into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids, [Value::BigInt(2), Value::BigInt(5), Value::BigInt(4)]);
    let (_, rows) = run(
        "SELECT t.id AS ticket, q.id AS other FROM app.tickets t JOIN app.people p ON t.priority = p.id \
         JOIN app.people q ON q.team = p.team ORDER BY p.team, 1 DESC, 2",
    );
    // Ticket 4 (ann, red) pairs with ann and dee; ticket 1 (bob, blue) with bob; cy has no team.
    let pairs: Vec<(Value, Value)> = rows
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(
        pairs,
        [
            (Value::BigInt(1), Value::Int(3)),
            (Value::BigInt(4), Value::Int(1)),
            (Value::BigInt(4), Value::Int(6)),
        ]
    );
}

#[test]
fn names_errors_are_precise() {
    let error = |sql: &str| plan_of(sql).expect_err(sql);
    let e = error("SELECT id FROM app.tickets t JOIN app.people p ON t.priority = p.id");
    assert_eq!(e.code, code::AMBIGUOUS_NAME, "{e}");
    assert_eq!(e.position, Position::known(1, 8));
    let e = error("SELECT t.id FROM app.tickets t JOIN app.people t ON t.priority = t.id");
    assert_eq!(e.code, code::AMBIGUOUS_NAME, "{e}");
    let e = error("SELECT t.id FROM app.tickets t JOIN app.people p ON t.priority > p.id");
    assert_eq!(e.code, code::UNSUPPORTED, "{e}");
    assert!(e.message.contains("equality"), "{e}");
    let e = error("SELECT t.id FROM app.tickets t JOIN app.people p ON t.title = p.id");
    assert_eq!(e.code, code::TYPE_MISMATCH, "{e}");
    let e = error("SELECT x.id FROM app.tickets t JOIN app.people p ON t.priority = p.id");
    assert_eq!(e.code, code::UNKNOWN_TABLE, "{e}");
    let e = error("SELECT t.nope FROM app.tickets t JOIN app.people p ON t.priority = p.id");
    assert_eq!(e.code, code::UNKNOWN_COLUMN, "{e}");
    let e = error("SELECT x.* FROM app.tickets t JOIN app.people p ON t.priority = p.id");
    assert_eq!(e.code, code::UNKNOWN_TABLE, "{e}");
    // ON sees only the tables up to its own.
    let e = error(
        "SELECT t.id FROM app.tickets t JOIN app.people p ON t.priority = q.id \
         JOIN app.people q ON q.id = p.id",
    );
    assert_eq!(e.code, code::UNKNOWN_TABLE, "{e}");
    for sql in [
        "SELECT * FROM app.tickets t RIGHT JOIN app.people p ON t.priority = p.id",
        "SELECT * FROM app.tickets t FULL JOIN app.people p ON t.priority = p.id",
        "SELECT * FROM app.tickets t CROSS JOIN app.people p",
        "SELECT * FROM app.tickets t JOIN app.people p USING (id)",
        "SELECT * FROM app.tickets t, app.people p",
    ] {
        assert_eq!(error(sql).code, code::UNSUPPORTED, "{sql}");
    }
}

#[test]
fn where_pins_the_first_tables_key_for_lookups() {
    let plan = plan_of(
        "SELECT t.id FROM app.tickets t JOIN app.people p ON t.priority = p.id WHERE t.id = 4",
    )
    .unwrap();
    assert_eq!(plan.filter().key_values(), Some(vec![Value::BigInt(4)]));
    let plan = plan_of(
        "SELECT t.id FROM app.tickets t JOIN app.people p ON t.priority = p.id WHERE p.id = 4",
    )
    .unwrap();
    assert_eq!(plan.filter().key_values(), None);
}

#[test]
fn where_conditions_on_one_table_are_pushed_down_only_where_that_is_sound() {
    let ids = |sql: &str| -> Vec<Value> { run(sql).1.into_iter().map(|r| r[0].clone()).collect() };
    // An anti-join: the LEFT-joined side's condition must see the missing (NULL) side.
    assert_eq!(
        ids(
            "SELECT t.id FROM app.tickets t LEFT JOIN app.people p ON t.priority = p.id \
             WHERE p.name IS NULL ORDER BY t.id"
        ),
        [Value::BigInt(3), Value::BigInt(6)]
    );
    assert_eq!(
        ids(
            "SELECT t.id FROM app.tickets t JOIN app.people p ON t.priority = p.id \
             WHERE p.team IS NULL AND t.status = 'open' ORDER BY t.id"
        ),
        [Value::BigInt(2), Value::BigInt(5)]
    );
    assert_eq!(
        ids(
            "SELECT t.id FROM app.tickets t JOIN app.people p ON t.priority = p.id \
             WHERE p.team = 'red' OR t.id = 1 ORDER BY t.id"
        ),
        [Value::BigInt(1), Value::BigInt(4)]
    );
    assert_eq!(
        ids(
            "SELECT t.id FROM app.tickets t LEFT JOIN app.people p ON t.priority = p.id \
             WHERE t.status = 'done' AND p._seq IS NULL ORDER BY t.id"
        ),
        [Value::BigInt(3), Value::BigInt(6)]
    );
}

#[test]
fn pushed_down_conditions_land_on_the_right_table() {
    let plan = plan_of(
        "SELECT t.id FROM app.tickets t JOIN app.people p ON t.priority = p.id \
         LEFT JOIN app.people q ON q.id = t.id \
         WHERE t.status = 'open' AND p.team = 'red' AND q.team = 'red' AND t.id + p.id > 1",
    )
    .unwrap();
    let join = plan.join().unwrap();
    // `t.status = 'open'` over the ticket's own row: `status` is its field 3.
    assert!(
        matches!(&join.first_filter, Some(Node::Compare { left, .. }) if **left == Node::Column(3))
    );
    // `p.team = 'red'` over the person's own row (field 2), inner join only.
    assert!(
        matches!(&join.steps[0].build_filter, Some(Node::Compare { left, .. }) if **left == Node::Column(2))
    );
    assert_eq!(join.steps[1].build_filter, None, "not into a LEFT JOIN");
}
