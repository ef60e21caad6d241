//! Live joins (`live_join.rs`): a write on either side changes exactly the joined rows it
//! touches; the result always equals the one-shot join over the same rows.

use super::joins::{catalog, person};
use super::*;

fn live(sql: &str) -> Result<SelectPlan> {
    let Statement::Select(select) = parse_statement(sql)? else {
        panic!("{sql}: not a SELECT");
    };
    SelectPlan::compile_live(&select, &catalog(), &[])
}

fn key(id: i64) -> Vec<u8> {
    crate::row::encode_key(Value::BigInt(id).as_ref()).unwrap()
}

fn person_key(id: i32) -> Vec<u8> {
    crate::row::encode_key(Value::Int(id).as_ref()).unwrap()
}

/// The outputs by ticket id: (ticket id, person name).
fn outputs(join: &LiveJoin) -> Vec<(Value, Value)> {
    let mut rows: Vec<(Value, Value)> = join
        .outputs()
        .map(|(_, values, _)| (values[0].clone(), values[1].clone()))
        .collect();
    rows.sort_by(|a, b| crate::value::sort_order(a.0.as_ref(), b.0.as_ref()));
    rows
}

#[test]
fn writes_on_either_side_change_the_joined_rows_they_touch() {
    let plan = live(
        "SELECT t.id, p.name FROM app.tickets t JOIN app.people p ON p.id = t.priority \
         WHERE t.status = 'open'",
    )
    .unwrap();
    let mut join = plan.live_join().expect("a live join");
    let mut change = JoinChange::default();
    join.apply_partner(
        &plan,
        1,
        &person_key(3),
        Some((&person(3, "bob", None)[..], 1)),
        &mut change,
    )
    .unwrap();
    assert!(change.is_empty(), "no ticket looks bob up yet");
    for (id, priority, status, seq) in [(1, 3, "open", 2), (2, 3, "done", 3), (3, 9, "open", 4)] {
        let row = row(id, "x", Some(priority), Some(status));
        join.apply_first(&plan, &key(id), Some((&row[..], seq)), &mut change)
            .unwrap();
    }
    assert_eq!(
        outputs(&join),
        [(Value::BigInt(1), Value::Text("bob".into()))]
    );
    assert_eq!(change.entered.len(), 1);

    // Renaming the person updates the one joined row that shows it.
    let mut change = JoinChange::default();
    join.apply_partner(
        &plan,
        1,
        &person_key(3),
        Some((&person(3, "rob", None)[..], 5)),
        &mut change,
    )
    .unwrap();
    assert_eq!(change.left.len(), 1);
    assert_eq!(change.entered.len(), 1);
    assert_eq!(
        change.entered[0].2, 5,
        "the joined row's _seq is its newest part's"
    );
    // A partner appearing brings in the ticket that looked it up.
    let mut change = JoinChange::default();
    join.apply_partner(
        &plan,
        1,
        &person_key(9),
        Some((&person(9, "zed", None)[..], 6)),
        &mut change,
    )
    .unwrap();
    assert_eq!(outputs(&join).len(), 2);
    assert_eq!((change.left.len(), change.entered.len()), (0, 1));
    // Deleting a partner removes its rows (inner join); a ticket moving away leaves.
    let mut change = JoinChange::default();
    join.apply_partner::<[Value]>(&plan, 1, &person_key(3), None, &mut change)
        .unwrap();
    assert_eq!((change.left.len(), change.entered.len()), (1, 0));
    let mut change = JoinChange::default();
    let moved = row(3, "x", Some(9), Some("done"));
    join.apply_first(&plan, &key(3), Some((&moved[..], 7)), &mut change)
        .unwrap();
    assert_eq!((change.left.len(), change.entered.len()), (1, 0));
    assert!(outputs(&join).is_empty());
}

#[test]
fn a_left_join_keeps_rows_without_a_partner() {
    let plan =
        live("SELECT t.id, p.name FROM app.tickets t LEFT JOIN app.people p ON p.id = t.priority")
            .unwrap();
    let mut join = plan.live_join().unwrap();
    let mut change = JoinChange::default();
    let ticket = row(1, "x", Some(3), None);
    join.apply_first(&plan, &key(1), Some((&ticket[..], 1)), &mut change)
        .unwrap();
    assert_eq!(outputs(&join), [(Value::BigInt(1), Value::Null)]);
    join.apply_partner(
        &plan,
        1,
        &person_key(3),
        Some((&person(3, "bob", None)[..], 2)),
        &mut change,
    )
    .unwrap();
    assert_eq!(
        outputs(&join),
        [(Value::BigInt(1), Value::Text("bob".into()))]
    );
}

#[test]
fn joins_a_subscription_cannot_keep_live_are_refused_by_name() {
    for sql in [
        // Not by the joined table's primary key.
        "SELECT t.id FROM app.tickets t JOIN app.people p ON p.team = t.status",
        // From a joined table's column, not the first table's.
        "SELECT t.id FROM app.tickets t JOIN app.people p ON p.id = t.priority \
         JOIN app.people q ON q.id = p.id",
        "SELECT t.id FROM app.tickets t JOIN app.people p ON p.id = t.priority ORDER BY t.id LIMIT 3",
        "SELECT p.name, COUNT(*) FROM app.tickets t JOIN app.people p ON p.id = t.priority GROUP BY p.name",
    ] {
        let error = live(sql).expect_err(sql);
        assert_eq!(error.code, code::UNSUPPORTED, "{sql}: {error}");
    }
}
