//! The fast path for the most common write: a text that is exactly one
//! `INSERT INTO ns.t [(columns)] VALUES (...), ...` whose values are all literals or
//! parameters. It builds the same [`Insert`] that sqlparser plus `convert.rs` would, from
//! [`literal_scan`](super::literal_scan)'s tokens, without sqlparser's tokenizer or parser.
//!
//! Why: tokenizing and parsing with sqlparser was over half of the server's CPU per row of a
//! 1000-row INSERT (a `String` per token, and a failed typed-literal parse, with its error
//! message, before every value). Anything outside the simple form (expressions, comments,
//! ON CONFLICT, RETURNING, several statements, too many rows, a name that does not validate)
//! returns `None` and takes the general path, which also produces every error message, so
//! both paths agree on errors. A property test holds the two paths to the same result.

use sqlparser::keywords::{Keyword, RESERVED_FOR_COLUMN_ALIAS};

use super::literal_scan::{scan, Lexeme};
use crate::ast::{Expr, ExprKind, Insert, Literal, Statement, TableRef};
use crate::catalog::{Name, TableName};
use crate::error::Position;
use crate::limits;

/// The statement, if `sql` is one literal INSERT (a trailing `;` allowed).
pub(crate) fn recognize(sql: &str) -> Option<Statement> {
    if sql.len() > limits::STATEMENT_BYTES_MAX {
        return None;
    }
    let mut tokens = scan(sql)?;
    while tokens.last().is_some_and(|(l, _)| *l == Lexeme::SemiColon) {
        tokens.pop();
    }
    let mut at = Tokens {
        tokens: &tokens,
        at: 0,
    };
    if !(at.keyword(Keyword::INSERT) && at.keyword(Keyword::INTO)) {
        return None;
    }
    let table = at.table()?;
    let columns = if at.eat(&Lexeme::LParen) {
        let mut columns = Vec::new();
        loop {
            let (name, position) = at.plain_word()?;
            columns.push((name, Some(position)));
            if !at.eat(&Lexeme::Comma) {
                break;
            }
        }
        at.expect(&Lexeme::RParen)?;
        Some(columns)
    } else {
        None
    };
    if !at.keyword(Keyword::VALUES) {
        return None;
    }
    let mut rows = Vec::new();
    loop {
        if rows.len() == limits::ROWS_PER_INSERT_MAX {
            return None;
        }
        at.expect(&Lexeme::LParen)?;
        let mut row = Vec::with_capacity(rows.last().map_or(4, Vec::len));
        loop {
            row.push(at.value()?);
            if !at.eat(&Lexeme::Comma) {
                break;
            }
        }
        at.expect(&Lexeme::RParen)?;
        rows.push(row);
        if !at.eat(&Lexeme::Comma) {
            break;
        }
    }
    if at.at != tokens.len() {
        return None;
    }
    Some(Statement::Insert(Insert {
        table,
        columns,
        rows,
    }))
}

struct Tokens<'t, 's> {
    tokens: &'t [(Lexeme<'s>, Position)],
    at: usize,
}

impl<'t, 's> Tokens<'t, 's> {
    fn peek(&self) -> Option<&'t (Lexeme<'s>, Position)> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, lexeme: &Lexeme<'_>) -> bool {
        let found = self.peek().is_some_and(|(l, _)| l == lexeme);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, lexeme: &Lexeme<'_>) -> Option<()> {
        self.eat(lexeme).then_some(())
    }

    fn keyword(&mut self, keyword: Keyword) -> bool {
        let found = matches!(self.peek(), Some((Lexeme::Word(_, k), _)) if *k == keyword);
        self.at += usize::from(found);
        found
    }

    /// A name, folded like `fold_identifier`. Unquoted keywords are names too (`id`, `key`,
    /// `user`), as they are to sqlparser, except those it reserves (`(SELECT ...)` is a query
    /// there).
    fn plain_word(&mut self) -> Option<(String, Position)> {
        let (lexeme, position) = self.peek()?;
        let name = match lexeme {
            Lexeme::Word(word, keyword) if !RESERVED_FOR_COLUMN_ALIAS.contains(keyword) => {
                word.to_ascii_lowercase()
            }
            Lexeme::Quoted(text) => text.replace("\"\"", "\""),
            _ => return None,
        };
        self.at += 1;
        Some((name, *position))
    }

    fn name(&mut self) -> Option<(Name, Position)> {
        let (text, position) = self.plain_word()?;
        Some((Name::new(&text).ok()?, position))
    }

    fn table(&mut self) -> Option<TableRef> {
        // After INTO, sqlparser reads these as clauses (Hive's `INTO TABLE`, `LOCAL DIRECTORY`).
        for keyword in [Keyword::TABLE, Keyword::LOCAL, Keyword::DIRECTORY] {
            if self.keyword(keyword) {
                return None;
            }
        }
        let (namespace, position) = self.name()?;
        self.expect(&Lexeme::Period)?;
        let (table, _) = self.name()?;
        Some(TableRef {
            name: TableName { namespace, table },
            position: Some(position),
        })
    }

    /// A literal, `-` before a number, or a parameter; positioned like `convert.rs` does (a
    /// negative number at its digits).
    fn value(&mut self) -> Option<Expr> {
        let negative = self.eat(&Lexeme::Minus);
        let (lexeme, position) = self.peek()?;
        let kind = match (lexeme, negative) {
            (Lexeme::Number(text), true) => ExprKind::Literal(Literal::Number(format!("-{text}"))),
            (Lexeme::Number(text), false) => ExprKind::Literal(Literal::Number((*text).to_owned())),
            (Lexeme::Text(text), false) => {
                ExprKind::Literal(Literal::Text(text.replace("''", "'")))
            }
            (Lexeme::Placeholder(text), false) => ExprKind::Parameter(parameter(text)?),
            (Lexeme::Word(_, keyword), false) => match keyword {
                Keyword::NULL => ExprKind::Literal(Literal::Null),
                Keyword::TRUE => ExprKind::Literal(Literal::Boolean(true)),
                Keyword::FALSE => ExprKind::Literal(Literal::Boolean(false)),
                _ => return None,
            },
            // `+5` is a unary plus in the general path; leave it there.
            _ => return None,
        };
        let position = Some(*position);
        self.at += 1;
        Some(Expr { kind, position })
    }
}

/// `$n` within the allowed range; anything else is the general path's error to report.
fn parameter(text: &str) -> Option<usize> {
    let number = text.strip_prefix('$')?.parse::<usize>().ok()?;
    (1..=limits::PARAMETERS_MAX)
        .contains(&number)
        .then_some(number)
}
