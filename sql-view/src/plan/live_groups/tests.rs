//! The model check of [`LiveGroups`]: after any sequence of inserts, updates and deletes, the
//! live groups' rows equal the one-shot query over the table, and a client that applies the
//! [`GroupChange`]s holds exactly those rows.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::plan::tests::{row, select, SYSTEM};
use crate::value::Value;

const QUERIES: [&str; 5] = [
    "SELECT status, COUNT(*) AS n, SUM(priority) AS s, MIN(priority) AS lo, MAX(title) AS hi \
     FROM app.tickets GROUP BY status",
    "SELECT status, AVG(priority) AS a, COUNT(DISTINCT priority) AS d FROM app.tickets \
     WHERE id > 2 GROUP BY status HAVING COUNT(*) > 1",
    "SELECT COUNT(*) AS n, MAX(priority) AS m FROM app.tickets WHERE priority > 1",
    "SELECT priority % 2 AS parity, SUM(DISTINCT priority) AS s FROM app.tickets GROUP BY priority % 2",
    "SELECT DISTINCT status FROM app.tickets",
];

#[derive(Clone, Debug)]
struct Write {
    id: i64,
    new: Option<(Option<i32>, Option<&'static str>)>,
}

fn write() -> impl Strategy<Value = Write> {
    let status = prop::option::of(prop::sample::select(vec!["open", "done", "wip"]));
    let fields = (prop::option::of(0i32..5), status);
    (0i64..10, prop::option::weighted(0.8, fields)).prop_map(|(id, new)| Write { id, new })
}

fn one_shot(sql: &str, table: &BTreeMap<i64, Vec<Value>>) -> Vec<Vec<Value>> {
    let plan = select(sql, &[]);
    let mut collector = plan.collector();
    for row in table.values() {
        collector.push(row, SYSTEM).unwrap();
    }
    let mut rows = collector.finish().unwrap();
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    rows
}

proptest! {
    #[test]
    fn live_groups_follow_every_write(
        query in 0usize..QUERIES.len(),
        writes in prop::collection::vec(write(), 0..120),
    ) {
        let sql = QUERIES[query];
        let plan = select(sql, &[]);
        let mut live = plan.live_groups().expect("a grouping query");
        let mut table: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
        // The client's rows by group key.
        let mut client: BTreeMap<String, Vec<Value>> = live
            .rows(&plan)
            .unwrap()
            .into_iter()
            .map(|(key, row)| (format!("{key:?}"), row))
            .collect();
        for w in writes {
            let old = table.get(&w.id).cloned();
            let new = w.new.map(|(priority, status)| row(w.id, &format!("t{}", w.id % 3), priority, status));
            let matching = |r: &Option<Vec<Value>>| r.clone().filter(|r| plan.matches(r, SYSTEM).unwrap());
            let (old_m, new_m) = (matching(&old), matching(&new));
            let changes = live
                .apply(&plan, old_m.as_ref().map(|r| (r, SYSTEM)), new_m.as_ref().map(|r| (r, SYSTEM)))
                .unwrap();
            for change in changes {
                let key = format!("{:?}", change.key);
                prop_assert_eq!(client.get(&key), change.before.as_ref(), "before is what the client held");
                match change.after {
                    Some(row) => client.insert(key, row),
                    None => client.remove(&key),
                };
            }
            match new {
                Some(r) => table.insert(w.id, r),
                None => table.remove(&w.id),
            };
            let mut held: Vec<Vec<Value>> = client.values().cloned().collect();
            held.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
            let expected = one_shot(sql, &table);
            prop_assert_eq!(&held, &expected, "{}", sql);
            let mut shown: Vec<Vec<Value>> = live.rows(&plan).unwrap().into_iter().map(|(_, r)| r).collect();
            shown.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
            prop_assert_eq!(&shown, &expected);
        }
    }
}
