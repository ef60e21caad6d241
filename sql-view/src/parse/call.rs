//! sqlparser's function calls, `SUBSTRING(... FROM ... FOR ...)` and `CASE` to ours: a known
//! scalar function with a fitting number of plain arguments, or an `unsupported` error naming
//! what is not (aggregates, window functions, `FILTER`, `DISTINCT` arguments, named ones).

use sqlparser::ast::{
    CaseWhen, DuplicateTreatment, Expr as SqlExpr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments,
};

use super::cursor::fold_identifier;
use super::expr::{boxed, convert, leftmost_position};
use super::unsupported::unsupported_form;
use crate::ast::{AggregateFunction, Expr, ExprKind, ScalarFunction};
use crate::error::{code, Result, SqlError};

/// A call of a scalar function.
pub(super) fn function(sql: &SqlExpr, call: &Function, depth: usize) -> Result<ExprKind> {
    let position = leftmost_position(sql);
    let name = match call.name.0.as_slice() {
        [part] => part
            .as_ident()
            .map(|ident| fold_identifier(&ident.value, ident.quote_style)),
        _ => None,
    };
    if let Some(aggregate) = name.as_deref().and_then(AggregateFunction::from_name) {
        return self::aggregate(sql, call, aggregate, depth);
    }
    let function = name.as_deref().and_then(ScalarFunction::from_name);
    let plain = call.over.is_none()
        && call.filter.is_none()
        && call.within_group.is_empty()
        && call.null_treatment.is_none()
        && matches!(call.parameters, FunctionArguments::None);
    let (Some(function), true) = (function, plain) else {
        return Err(unsupported_form(sql));
    };
    let list = match &call.args {
        FunctionArguments::List(list)
            if list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
        {
            &list.args
        }
        FunctionArguments::None => &Vec::new(),
        _ => {
            let what = format!("this form of arguments to {}", function.name());
            return Err(SqlError::unsupported(what, position));
        }
    };
    let mut args = Vec::with_capacity(list.len());
    for arg in list {
        match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => {
                args.push(convert(expr, depth + 1)?)
            }
            _ => {
                let what = format!("named or * arguments to {}", function.name());
                return Err(SqlError::unsupported(what, position));
            }
        }
    }
    arity(function, args.len(), position)?;
    Ok(ExprKind::Function { function, args })
}

/// `COUNT(*)`, `COUNT([DISTINCT] e)`, `SUM(e)`, ...: one plain argument (or `*` for COUNT).
fn aggregate(
    sql: &SqlExpr,
    call: &Function,
    function: AggregateFunction,
    depth: usize,
) -> Result<ExprKind> {
    let position = leftmost_position(sql);
    if call.over.is_some() {
        let what = format!("window function {}", function.name());
        return Err(SqlError::unsupported(what, position));
    }
    if call.filter.is_some() || !call.within_group.is_empty() || call.null_treatment.is_some() {
        let what = format!("FILTER / WITHIN GROUP on {}", function.name());
        return Err(SqlError::unsupported(what, position));
    }
    let FunctionArguments::List(list) = &call.args else {
        let what = format!("{} without an argument list", function.name());
        return Err(SqlError::unsupported(what, position));
    };
    if !list.clauses.is_empty() {
        let what = format!("ORDER BY / LIMIT inside {}", function.name());
        return Err(SqlError::unsupported(what, position));
    }
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    let arg = match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
            if function == AggregateFunction::Count && !distinct =>
        {
            None
        }
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(expr))] => {
            Some(Box::new(convert(expr, depth + 1)?))
        }
        _ => {
            return Err(SqlError::new(
                code::INVALID_VALUE,
                format!("{} takes 1 argument (COUNT also *)", function.name()),
                position,
            ))
        }
    };
    Ok(ExprKind::Aggregate {
        function,
        arg,
        distinct,
    })
}

/// `SUBSTRING(e FROM start [FOR count])` (and its comma form).
pub(super) fn substring(
    expr: &SqlExpr,
    from: Option<&SqlExpr>,
    count: Option<&SqlExpr>,
    depth: usize,
) -> Result<ExprKind> {
    let mut args = vec![convert(expr, depth + 1)?];
    match from {
        Some(from) => args.push(convert(from, depth + 1)?),
        None => {
            // `SUBSTRING(s FOR n)` starts at the first character.
            let one = crate::ast::Literal::Number("1".into());
            args.push(Expr {
                kind: ExprKind::Literal(one),
                position: leftmost_position(expr),
            });
        }
    }
    if let Some(count) = count {
        args.push(convert(count, depth + 1)?);
    }
    Ok(ExprKind::Function {
        function: ScalarFunction::Substring,
        args,
    })
}

/// `CASE [operand] WHEN ... THEN ... [ELSE ...] END`.
pub(super) fn case(
    operand: Option<&SqlExpr>,
    conditions: &[CaseWhen],
    else_result: Option<&SqlExpr>,
    depth: usize,
) -> Result<ExprKind> {
    let operand = operand.map(|e| boxed(e, depth)).transpose()?;
    let branches = conditions
        .iter()
        .map(|when| {
            Ok((
                convert(&when.condition, depth + 1)?,
                convert(&when.result, depth + 1)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let otherwise = else_result.map(|e| boxed(e, depth)).transpose()?;
    Ok(ExprKind::Case {
        operand,
        branches,
        otherwise,
    })
}

fn arity(
    function: ScalarFunction,
    given: usize,
    position: Option<crate::error::Position>,
) -> Result<()> {
    let (fewest, most) = function.arity();
    if (fewest..=most).contains(&given) {
        return Ok(());
    }
    let wanted = match (fewest, most) {
        (0, 0) => "no arguments".to_owned(),
        (1, 1) => "1 argument".to_owned(),
        (a, b) if a == b => format!("{a} arguments"),
        (a, usize::MAX) => format!("at least {a} argument{}", if a == 1 { "" } else { "s" }),
        (a, b) => format!("{a} to {b} arguments"),
    };
    Err(SqlError::new(
        code::INVALID_VALUE,
        format!("{} takes {wanted}, given {given}", function.name()),
        position,
    ))
}
