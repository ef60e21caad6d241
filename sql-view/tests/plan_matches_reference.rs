//! Model-based test: a compiled filter agrees with a plain reference interpreter. Random
//! tables, rows (some written "before ADD COLUMN", with fewer fields) and WHERE trees are
//! generated; the WHERE is rendered as SQL text (literals and `$n` parameters), parsed,
//! compiled and evaluated over the encoded rows through `RowView`, and compared with a
//! straightforward interpreter over `Vec<Value>` written here (three-valued logic, exact
//! numeric comparison, checked arithmetic, LIKE by recursion). When the filter pins the
//! primary key, every matching row's key must be among the pinned values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use proptest::prelude::*;
use strand_sql_view::{encode_key, encode_row, parse_statement, DataType, Plan, RowView};

use model::case;
use model::reference::Reference;
use model::render::Sql;

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn plan_matches_reference(case in case()) {
        let mut sql = Sql { params: Vec::new() };
        let text = format!("SELECT * FROM app.t WHERE {}", sql.pred(&case.pred));
        let statement = parse_statement(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let plan = match Plan::compile(&statement, &case.table, &sql.params) {
            Ok(Some(Plan::Select(plan))) => plan,
            other => return Err(TestCaseError::fail(format!("{text}: {other:?}"))),
        };
        let types: Vec<DataType> = case.table.columns().iter().map(|c| c.data_type).collect();
        let pinned = plan.filter().key_values();
        for (row, system) in &case.rows {
            let bytes = encode_row(row).unwrap();
            let view = RowView::new(&bytes).unwrap();
            let got = plan.matches(&view, *system).map_err(|e| e.code);
            let reference = Reference { types: &types, row, system: *system };
            let expected = reference.pred(&case.pred).map(|v| v == Some(true));
            prop_assert_eq!(got, expected, "{} over {:?} {:?}", text, row, system);
            if let (Some(keys), Ok(true)) = (&pinned, got) {
                let key = encode_key(row[0].as_ref());
                let pinned = keys.iter().any(|k| encode_key(k.as_ref()) == key);
                prop_assert!(pinned, "{} pinned {:?}", text, keys);
            }
        }
    }
}
