//! SELECT, INSERT, UPDATE, DELETE, several statements, syntax errors and limits.

use super::*;

#[test]
fn select_with_everything() {
    let sql = "SELECT id, title AS t, priority + 1, * , _seq FROM app.tickets AS tk \
               WHERE status = $1 AND NOT (priority BETWEEN 1 AND 3) OR title LIKE 'a%' \
               ORDER BY priority DESC NULLS LAST, 1 LIMIT 10 OFFSET 5";
    let Statement::Select(select) = one(sql) else {
        panic!()
    };
    assert_eq!(select.table.name, table("app", "tickets"));
    assert_eq!(select.alias.as_deref(), Some("tk"));
    assert_eq!(select.projection.len(), 5);
    let SelectItem::Expr {
        text, alias: None, ..
    } = &select.projection[2]
    else {
        panic!()
    };
    assert_eq!(text, "priority + 1");
    assert_eq!(select.projection[3], SelectItem::Wildcard);
    let Some(Expr {
        kind: ExprKind::Or(operands),
        ..
    }) = &select.filter
    else {
        panic!()
    };
    assert_eq!(operands.len(), 2);
    assert_eq!(select.order_by.len(), 2);
    assert!(select.order_by[0].descending);
    assert_eq!(select.order_by[0].nulls_first, Some(false));
    assert!(select.limit.is_some() && select.offset.is_some());
}

#[test]
fn insert_update_delete() {
    let Statement::Insert(insert) =
        one("INSERT INTO app.t (id, title) VALUES (1, 'a'), (2, NULL), ($1, $2)")
    else {
        panic!()
    };
    assert_eq!(insert.rows.len(), 3);
    let columns = insert.columns.unwrap();
    assert_eq!(columns[1], ("title".to_owned(), at(1, 24)));
    let Statement::Insert(insert) = one("INSERT INTO app.t VALUES (-9223372036854775808)") else {
        panic!()
    };
    assert!(insert.columns.is_none());
    let literal = &insert.rows[0][0].kind;
    assert_eq!(
        *literal,
        ExprKind::Literal(Literal::Number("-9223372036854775808".into()))
    );
    let Statement::Update(update) = one("UPDATE app.t SET title = 'b', n = n + 1 WHERE id = 1")
    else {
        panic!()
    };
    assert_eq!(update.assignments.len(), 2);
    assert_eq!(update.assignments[1].position, at(1, 31));
    let Statement::Delete(delete) = one("DELETE FROM app.t WHERE id IN (1, 2, 3)") else {
        panic!()
    };
    assert!(delete.filter.is_some());
}

#[test]
fn several_statements_and_empty_ones() {
    let statements = parse_statements("SHOW NAMESPACES;; SHOW TABLES ;\n").unwrap();
    assert_eq!(statements.len(), 2);
    assert_eq!(error("  ;  ").code, code::SYNTAX_ERROR);
    assert_eq!(error("-- only a comment").code, code::SYNTAX_ERROR);
    let second = error("SHOW TABLES;\nSELECT * FROM app.t WHERE");
    assert_eq!(
        (second.code, second.position),
        (code::SYNTAX_ERROR, at(2, 26))
    );
}

#[test]
fn syntax_errors_have_positions() {
    let typo = error("SELEC * FROM t");
    assert_eq!((typo.code, typo.position), (code::SYNTAX_ERROR, at(1, 1)));
    let later = error("SELECT a\nFROM app.t\nWHERE a = = 1");
    assert_eq!(
        (later.code, later.position),
        (code::SYNTAX_ERROR, at(3, 11))
    );
    let unterminated = error("SELECT 'abc FROM app.t");
    assert_eq!(
        (unterminated.code, unterminated.position.map(|p| p.line)),
        (code::SYNTAX_ERROR, Some(1))
    );
    let trailing = error("SHOW TABLES IN app extra");
    assert_eq!(
        (trailing.code, trailing.position),
        (code::SYNTAX_ERROR, at(1, 20))
    );
}

#[test]
fn unsupported_features_are_named() {
    let cases = [
        (
            "SELECT a FROM app.t RIGHT JOIN app.u ON t.a = u.a",
            "RIGHT JOIN",
        ),
        ("SELECT a FROM app.t, app.u", "several tables in FROM"),
        (
            "SELECT COUNT(*) OVER () FROM app.t",
            "window function COUNT",
        ),
        ("SELECT a FROM app.t GROUP BY ROLLUP (a)", "ROLLUP"),
        (
            "SELECT a FROM app.t WHERE a IN (SELECT b FROM app.u)",
            "subqueries",
        ),
        ("SELECT ROW_NUMBER() OVER () FROM app.t", "window function"),
        ("SELECT DISTINCT ON (a) a FROM app.t", "DISTINCT ON"),
        ("SELECT a FROM app.t UNION SELECT a FROM app.u", "UNION"),
        ("SELECT 1", "without a table"),
        ("SELECT md5(a) FROM app.t", "function md5"),
        ("SELECT lower(DISTINCT a) FROM app.t", "LOWER"),
        ("TRUNCATE app.t", "TRUNCATE"),
        ("DELETE FROM app.t RETURNING *", "RETURNING"),
        ("INSERT INTO app.t SELECT * FROM app.u", "INSERT ... SELECT"),
    ];
    for (sql, named) in cases {
        let error = error(sql);
        assert_eq!(error.code, code::UNSUPPORTED, "{sql}: {error}");
        assert!(error.message.contains(named), "{sql}: {}", error.message);
        assert!(error.position.is_some(), "{sql}: no position");
    }
}

#[test]
fn limits_are_enforced() {
    let chain = format!(
        "SELECT * FROM app.t WHERE {}1",
        "a + ".repeat(limits::OPERATOR_CHAIN_LEN_MAX + 1)
    );
    assert_eq!(error(&chain).code, code::LIMIT_EXCEEDED);
    let deep = format!(
        "SELECT * FROM app.t WHERE {}1",
        "a + ".repeat(limits::EXPRESSION_DEPTH_MAX + 2)
    );
    assert_eq!(error(&deep).code, code::LIMIT_EXCEEDED);
    let ors = vec!["a = 1"; 1000].join(" OR ");
    assert!(
        parse_statement(&format!("SELECT * FROM app.t WHERE {ors}")).is_ok(),
        "flat chains"
    );
    let parens = format!(
        "SELECT * FROM app.t WHERE {}1{}",
        "(".repeat(200),
        ")".repeat(200)
    );
    assert_eq!(error(&parens).code, code::LIMIT_EXCEEDED);
    let many = "SHOW TABLES;".repeat(limits::STATEMENTS_PER_REQUEST_MAX + 1);
    assert_eq!(error(&many).code, code::LIMIT_EXCEEDED);
    let big = format!(
        "SELECT '{}' FROM app.t",
        "x".repeat(limits::STATEMENT_BYTES_MAX)
    );
    assert_eq!(error(&big).code, code::LIMIT_EXCEEDED);
    let list = vec!["1"; limits::IN_LIST_LEN_MAX + 1].join(",");
    assert_eq!(
        error(&format!("SELECT * FROM app.t WHERE a IN ({list})")).code,
        code::LIMIT_EXCEEDED
    );
}

#[test]
fn byte_offsets_follow_lines_and_characters() {
    let sql = "é;\nab";
    let locations = [
        Location::new(1, 1),
        Location::new(1, 2),
        Location::new(2, 2),
        Location::new(9, 9),
    ];
    assert_eq!(byte_offsets(sql, &locations), vec![0, 2, 5, 6]);
}
