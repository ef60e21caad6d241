//! Expressions over UUID, DECIMAL and DATE columns, evaluated on stored rows.

use super::*;
use crate::decimal::Decimal;

fn orders() -> TableDef {
    match parse_statement(
        "CREATE TABLE app.orders (id UUID PRIMARY KEY, price DECIMAL(10,2), due DATE, \
         at TIMESTAMP)",
    ) {
        Ok(Statement::CreateTable { table, .. }) => table,
        other => panic!("{other:?}"),
    }
}

fn order() -> Vec<Value> {
    vec![
        Value::Uuid([7; 16]),
        Value::Decimal(Decimal::new(1235, 2).unwrap()),
        Value::Date(19_844),
        Value::Timestamp(19_844 * 86_400_000_000 + 1),
    ]
}

/// The first projected value of `SELECT <expr> FROM app.orders` on [`order`], as JSON.
fn eval(expr: &str) -> Result<serde_json::Value> {
    let sql = format!("SELECT {expr} FROM app.orders");
    let plan = match Plan::compile(&parse_statement(&sql)?, &orders(), &[])? {
        Some(Plan::Select(plan)) => plan,
        other => panic!("{sql}: {other:?}"),
    };
    let bytes = encode_row(&order()).unwrap();
    let view = RowView::new(&bytes).unwrap();
    Ok(plan.project(&view, SYSTEM)?[0].to_json())
}

#[test]
fn decimal_expressions_stay_exact_and_mix_with_doubles_as_doubles() {
    let cases = [
        ("price * '0.5'", serde_json::json!("6.175")),
        ("price / 2", serde_json::json!("6.175000")),
        ("price + 1", serde_json::json!("13.35")),
        ("price * 0.5", serde_json::json!(6.175)),
        ("-price", serde_json::json!("-12.35")),
        ("price % 5", serde_json::json!("2.35")),
        ("ROUND(price)", serde_json::json!("12")),
        ("ROUND(price, -1)", serde_json::json!("10")),
        ("COALESCE(price, 0)", serde_json::json!("12.35")),
        ("CAST(price AS DECIMAL(3,0))", serde_json::json!("12")),
        ("price = 12.35", serde_json::json!(true)),
        ("price IN ('12.350', 1)", serde_json::json!(true)),
        ("due = DATE '2024-05-01'", serde_json::json!(true)),
        ("due < at", serde_json::json!(true)),
        ("CAST(at AS DATE) = due", serde_json::json!(true)),
    ];
    for (expr, expected) in cases {
        assert_eq!(eval(expr).unwrap(), expected, "{expr}");
    }
}

#[test]
fn overflow_and_division_by_zero_are_errors() {
    let error = eval("CAST(price AS DECIMAL(2,1))").unwrap_err();
    assert_eq!(error.code, code::NUMERIC_OVERFLOW);
    let error = eval("price / 0").unwrap_err();
    assert_eq!(error.code, code::DIVISION_BY_ZERO);
    let error = eval("price * CAST('99999999999999999999999999999999999999' AS DECIMAL(38,0))");
    assert_eq!(error.unwrap_err().code, code::NUMERIC_OVERFLOW);
    let error = eval("id = 'not a uuid'").unwrap_err();
    assert_eq!(
        (error.code, error.position),
        (code::INVALID_VALUE, Position::known(1, 13))
    );
    let error = eval("id < 3").unwrap_err();
    assert_eq!(error.code, code::TYPE_MISMATCH);
    // INTERVAL arithmetic is TIMESTAMP's: a DATE column must be CAST first.
    let error = eval("due + INTERVAL '1 day'").unwrap_err();
    assert_eq!(error.code, code::TYPE_MISMATCH);
}

/// ABS and ROUND of an integer whose result does not fit its type are `numeric_overflow`, as
/// arithmetic is (PostgreSQL: "integer out of range"); `-2147483648` is one INT literal, as in
/// PostgreSQL, and a BIGINT holds the rounded value.
#[test]
fn integer_functions_past_their_type_are_numeric_overflow() {
    for expr in [
        "ABS(-2147483648)",
        "ROUND(-2147483648, -1)",
        "ROUND(2147483647, -1)",
        "ABS(-9223372036854775808)",
    ] {
        assert_eq!(
            eval(expr).unwrap_err().code,
            code::NUMERIC_OVERFLOW,
            "{expr}"
        );
    }
    let rounded = eval("ROUND(CAST(-2147483648 AS BIGINT), -1)").unwrap();
    assert_eq!(rounded, serde_json::json!(-2147483650i64));
}
