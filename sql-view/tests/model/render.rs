//! WHERE trees as SQL text: literals rendered, parameters collected as `$n`.

use strand_sql_view::{render_date, render_rfc3339, render_uuid, Value};

use super::{Operand, Pred};

pub struct Sql {
    pub params: Vec<Value>,
}

impl Sql {
    fn literal(&self, value: &Value) -> String {
        match value {
            Value::Null => "NULL".into(),
            Value::Boolean(v) => if *v { "TRUE" } else { "FALSE" }.into(),
            Value::Int(v) => v.to_string(),
            Value::BigInt(v) => v.to_string(),
            Value::Double(v) => format!("{v:?}"),
            Value::Text(v) => format!("'{}'", v.replace('\'', "''")),
            Value::Timestamp(v) => format!("'{}'", render_rfc3339(*v)),
            Value::Json(v) => format!("'{v}'"),
            Value::Bytes(v) => format!(
                "X'{}'",
                v.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
            Value::Uuid(v) => format!("'{}'", render_uuid(v)),
            Value::Decimal(v) => v.to_string(),
            Value::Date(v) => format!("'{}'", render_date(*v)),
        }
    }

    fn constant(&mut self, value: &Value, parameter: bool) -> String {
        if parameter {
            self.params.push(value.clone());
            format!("${}", self.params.len())
        } else {
            self.literal(value)
        }
    }

    fn operand(&mut self, operand: &Operand) -> String {
        match operand {
            Operand::Column(i) => format!("c{i}"),
            Operand::Seq => "_seq".into(),
            Operand::Constant { value, parameter } => self.constant(value, *parameter),
            Operand::Arith { op, column, value } => {
                format!("(c{column} {op} {})", self.literal(value))
            }
        }
    }

    pub fn pred(&mut self, pred: &Pred) -> String {
        let not = |negated: bool| if negated { "NOT " } else { "" };
        match pred {
            Pred::Compare(op, a, b) => format!("{} {op} {}", self.operand(a), self.operand(b)),
            Pred::InList(a, list, negated) => {
                let items: Vec<String> = list.iter().map(|v| self.literal(v)).collect();
                format!(
                    "{} {}IN ({})",
                    self.operand(a),
                    not(*negated),
                    items.join(", ")
                )
            }
            Pred::Between(a, low, high, negated) => format!(
                "{} {}BETWEEN {} AND {}",
                self.operand(a),
                not(*negated),
                self.literal(low),
                self.literal(high)
            ),
            Pred::Like(i, pattern, negated) => format!("c{i} {}LIKE '{pattern}'", not(*negated)),
            Pred::IsNull(a, negated) => format!("{} IS {}NULL", self.operand(a), not(*negated)),
            Pred::BoolColumn(i) => format!("c{i}"),
            Pred::Deleted => "_deleted".into(),
            Pred::Const(Some(v)) => if *v { "TRUE" } else { "FALSE" }.into(),
            Pred::Const(None) => "NULL".into(),
            Pred::Not(p) => format!("NOT ({})", self.pred(p)),
            Pred::And(items) => self.join(items, " AND "),
            Pred::Or(items) => self.join(items, " OR "),
        }
    }

    fn join(&mut self, items: &[Pred], separator: &str) -> String {
        let parts: Vec<String> = items
            .iter()
            .map(|p| format!("({})", self.pred(p)))
            .collect();
        parts.join(separator)
    }
}
