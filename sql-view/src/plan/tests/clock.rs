//! Subscriptions' time-relative filters (`clock.rs`): `now()` read per evaluation, the
//! instants at which a row's match flips, and the uses of `now()` that are refused.

use super::*;

fn live(sql: &str) -> Result<SelectPlan> {
    let Statement::Select(select) = parse_statement(sql)? else {
        panic!("{sql}: not a SELECT");
    };
    SelectPlan::compile_live(&select, &tickets(), &[])
}

const MINUTE: i64 = 60_000_000;

#[test]
fn a_rows_match_follows_the_clock_and_flips_at_its_instant() {
    let plan =
        live("SELECT id FROM app.tickets WHERE updated_at > now() - INTERVAL '1 minute'").unwrap();
    assert!(plan.reads_clock());
    let clock = plan.clock().expect("clock terms");
    let mut row = row(1, "a", None, None);
    let written = 1_700_000_000_000_000;
    row[4] = Value::Timestamp(written);
    let at = |now| SystemColumns { now, ..SYSTEM };
    assert!(plan.matches(&row, at(written)).unwrap());
    assert!(plan.matches(&row, at(written + MINUTE - 1)).unwrap());
    assert!(!plan.matches(&row, at(written + MINUTE)).unwrap());
    let mut instants = Vec::new();
    clock.instants(&row, at(written), &mut instants);
    assert_eq!(instants, [written + MINUTE]);
}

#[test]
fn entering_by_time_and_combined_conditions() {
    let plan = live(
        "SELECT id FROM app.tickets WHERE (updated_at <= now() AND status = 'open') \
         OR priority > 3",
    )
    .unwrap();
    let mut row = row(1, "a", Some(1), Some("open"));
    row[4] = Value::Timestamp(5_000_000);
    let at = |now| SystemColumns { now, ..SYSTEM };
    assert!(!plan.matches(&row, at(4_999_999)).unwrap());
    assert!(plan.matches(&row, at(5_000_000)).unwrap());
    let mut instants = Vec::new();
    plan.clock().unwrap().instants(&row, at(0), &mut instants);
    assert_eq!(instants, [5_000_000]);
}

#[test]
fn other_uses_of_now_are_refused_by_name() {
    for sql in [
        "SELECT id, now() FROM app.tickets",
        "SELECT id FROM app.tickets WHERE CAST(now() AS TEXT) = title",
        "SELECT id FROM app.tickets WHERE now() > now() - INTERVAL '1 second'",
        "SELECT status, COUNT(*) FROM app.tickets WHERE updated_at > now() GROUP BY status",
        "SELECT id FROM app.tickets ORDER BY now() LIMIT 3",
    ] {
        let error = live(sql).expect_err(sql);
        assert_eq!(error.code, code::UNSUPPORTED, "{sql}: {error}");
        assert!(error.message.contains("now()"), "{sql}: {error}");
    }
    // Without now(), a subscription's plan has no clock.
    assert!(live("SELECT id FROM app.tickets WHERE priority > 1")
        .unwrap()
        .clock()
        .is_none());
}
