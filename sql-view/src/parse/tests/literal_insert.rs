//! The literal INSERT fast path against the general path (sqlparser + convert): on random
//! INSERT texts, whenever the fast path takes a statement, the general path parses it into
//! exactly the same [`Statement`]; and the fast path takes the plain forms it was built for.

use proptest::prelude::*;

use super::super::{literal_insert, parse_general};

/// Pieces of INSERT text: some in the fast path's form, some just outside it.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => "[a-z][a-z0-9_]{0,6}",
        4 => "[A-Z][a-zA-Z]{0,5}",
        1 => Just("\"Quoted Name\"".to_owned()),
        1 => Just("\"a\"\"b\"".to_owned()),
        1 => Just("\"\"".to_owned()),
        1 => Just("café".to_owned()),
        2 => prop::sample::select(&[
            "select", "values", "user", "table", "null", "with", "default", "from", "id", "key",
            "order", "limit", "set", "on", "into", "returning", "true", "as", "end", "all", "local", "directory", "overwrite",
        ][..])
            .prop_map(str::to_owned),
        1 => Just("9bad".to_owned()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        60 => any::<i64>().prop_map(|n| n.to_string()),
        10 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        1 => Just("-9223372036854775808".to_owned()),
        1 => Just("+5".to_owned()),
        1 => Just("- 7".to_owned()),
        30 => "[a-z 'é\\\\\n]{0,8}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        1 => prop_oneof![Just("1."), Just(".5"), Just("1e5"), Just("2.5E-3"), Just("1_000"),
            Just("0x1f"), Just("1abc"), Just("00012"), Just("1e"), Just("$1a"), Just("$$x$$")]
            .prop_map(str::to_owned),
        8 => prop_oneof![Just("NULL"), Just("true"), Just("FALSE"), Just("\"null\"")]
            .prop_map(str::to_owned),
        5 => (0usize..70_000).prop_map(|n| format!("${n}")),
        5 => (1usize..100).prop_map(|n| format!("${n}")),
        1 => prop_oneof![Just("1 + 2"), Just("now()"), Just("X'00ff'"), Just("DATE '2026-01-01'"),
            Just("E'a\\nb'"), Just("(3)"), Just("-x")]
            .prop_map(str::to_owned),
    ]
}

fn insert_text() -> impl Strategy<Value = String> {
    let columns = prop::option::of(prop::collection::vec(name(), 1..4));
    let rows = prop::collection::vec(prop::collection::vec(value(), 1..4), 1..4);
    let tail = prop_oneof![
        40 => Just(""),
        10 => Just(";"),
        1 => Just(" ;\n "),
        1 => Just("; SELECT 1"),
        1 => Just(" -- comment"),
        1 => Just(" /* c */"),
        1 => Just(" RETURNING id"),
        1 => Just(" ON CONFLICT DO NOTHING"),
        1 => Just(","),
    ];
    (
        name(),
        name(),
        prop::bool::weighted(0.97),
        columns,
        rows,
        tail,
    )
        .prop_map(|(namespace, table, qualified, columns, rows, tail)| {
            let table = if qualified {
                format!("{namespace}.{table}")
            } else {
                table
            };
            let columns = columns.map_or(String::new(), |c| format!(" ({})", c.join(", ")));
            let rows: Vec<String> = rows.iter().map(|r| format!("({})", r.join(", "))).collect();
            format!(
                "INSERT INTO {table}{columns} VALUES {}{tail}",
                rows.join(", ")
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn fast_path_agrees_with_the_general_path(sql in insert_text()) {
        if let Some(fast) = literal_insert::recognize(&sql) {
            let general = parse_general(&sql);
            prop_assert_eq!(general.as_deref().ok(), Some(&[fast][..]), "{}: {:?}", sql, general);
        }
    }
}

#[test]
fn fast_path_takes_the_plain_forms() {
    for sql in [
        "INSERT INTO app.t VALUES (1, 'a', NULL, true, -2.5e3, $1)",
        "insert into App.T (id, \"Name\") values (1, 'x'), (2, 'y')",
        "INSERT INTO app.t (id) VALUES (-9223372036854775808);",
        "INSERT INTO app.t (\"a\"\"b\") VALUES ('it''s', 'é')",
        "INSERT INTO app.t\n  (id)\nVALUES\n  (1),\n  (2) ;",
    ] {
        assert!(literal_insert::recognize(sql).is_some(), "{sql}");
    }
    for sql in [
        "INSERT INTO t VALUES (1)",
        "INSERT INTO app.t VALUES (1 + 2)",
        "INSERT INTO app.t VALUES (1) RETURNING id",
        "INSERT INTO app.t SELECT * FROM app.u",
        "INSERT INTO app.t VALUES ($0)",
        "INSERT INTO app.t VALUES (1); INSERT INTO app.t VALUES (2)",
        "INSERT INTO app.t VALUES (1) -- note",
    ] {
        assert!(literal_insert::recognize(sql).is_none(), "{sql}");
    }
}
