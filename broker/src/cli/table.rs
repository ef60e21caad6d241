//! psql-like rendering of statement results and errors for the `strand sql` CLI. Pure:
//! values in, text out.

use serde_json::{Map, Value};

use strand_broker::error::ErrorDetail;
use strand_broker::sql::StatementResult;

/// A result as text: an aligned table with a `(n rows)` footer, or the statement's message.
pub fn render_result(result: &StatementResult) -> String {
    let columns = column_names(result);
    if columns.is_empty() {
        let message = result.message.clone().unwrap_or_else(|| "OK".to_string());
        return format!("{message}\n");
    }
    let cells: Vec<Vec<Cell>> = result
        .rows
        .iter()
        .map(|row| columns.iter().map(|c| Cell::of(row.get(c))).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let widest = cells.iter().map(|row| row[i].text.chars().count()).max();
            widest.unwrap_or(0).max(name.chars().count())
        })
        .collect();
    let mut out = String::new();
    let header: Vec<String> = columns
        .iter()
        .zip(&widths)
        .map(|(n, w)| center(n, *w))
        .collect();
    out.push_str(&format!(" {} \n", header.join(" | ")));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    out.push_str(&format!("{}\n", rule.join("+")));
    for row in &cells {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| c.padded(*w)).collect();
        out.push_str(&format!(" {}\n", line.join(" | ").trim_end()));
    }
    let count = result.rows.len();
    out.push_str(&format!(
        "({count} row{})\n",
        if count == 1 { "" } else { "s" }
    ));
    if let Some(message) = &result.message {
        out.push_str(&format!("{message}\n"));
    }
    out
}

/// An error as psql shows it: `ERROR [code]: message`, with the position when there is one.
pub fn render_error(error: &ErrorDetail) -> String {
    let mut out = format!("ERROR [{}]: {}", error.code, error.message);
    if let Some(position) = error.position {
        out.push_str(&format!(
            " (line {}, column {})",
            position.line, position.column
        ));
    }
    out
}

/// The declared columns, or the first row's keys when the engine declared none.
fn column_names(result: &StatementResult) -> Vec<String> {
    if !result.columns.is_empty() {
        return result.columns.iter().map(|c| c.name.clone()).collect();
    }
    result
        .rows
        .first()
        .map(|row: &Map<String, Value>| row.keys().cloned().collect())
        .unwrap_or_default()
}

struct Cell {
    text: String,
    numeric: bool,
}

impl Cell {
    fn of(value: Option<&Value>) -> Cell {
        let (text, numeric) = match value {
            None | Some(Value::Null) => (String::new(), false),
            Some(Value::String(s)) => (s.clone(), false),
            Some(Value::Number(n)) => (n.to_string(), true),
            Some(Value::Bool(b)) => (if *b { "t" } else { "f" }.to_string(), false),
            Some(other) => (other.to_string(), false),
        };
        // Keep the table's rows on one line each.
        let text = text.replace('\n', "\\n");
        Cell { text, numeric }
    }

    fn padded(&self, width: usize) -> String {
        match self.numeric {
            true => format!("{:>width$}", self.text),
            false => format!("{:<width$}", self.text),
        }
    }
}

fn center(text: &str, width: usize) -> String {
    let len = text.chars().count();
    let left = (width.saturating_sub(len)) / 2;
    format!(
        "{}{text}{}",
        " ".repeat(left),
        " ".repeat(width.saturating_sub(len + left))
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use strand_broker::error::Position;
    use strand_broker::sql::Column;

    use super::*;

    #[test]
    fn rows_render_as_an_aligned_table() {
        let rows = [
            json!({"id": 1, "title": "hello"}),
            json!({"id": 20, "title": null}),
        ];
        let result = StatementResult {
            columns: ["id", "title"]
                .map(|n| Column {
                    name: n.into(),
                    data_type: "TEXT".into(),
                })
                .to_vec(),
            rows: rows.iter().filter_map(|r| r.as_object().cloned()).collect(),
            row_count: 2,
            message: None,
        };
        let expected = " id | title \n----+-------\n  1 | hello\n 20 |\n(2 rows)\n";
        assert_eq!(render_result(&result), expected);
    }

    #[test]
    fn messages_and_errors() {
        assert_eq!(
            render_result(&StatementResult::message("User alice created")),
            "User alice created\n"
        );
        let error = ErrorDetail {
            code: "syntax_error".into(),
            message: "expected FROM".into(),
            position: Some(Position {
                line: 1,
                column: 10,
            }),
            statement: None,
            committed_statements: None,
        };
        assert_eq!(
            render_error(&error),
            "ERROR [syntax_error]: expected FROM (line 1, column 10)"
        );
    }
}
