//! The fast path for the most common write: `INSERT INTO ns.t [(columns)] VALUES (...), ...`
//! whose values are all literals or parameters. It builds the same [`Insert`] that sqlparser
//! plus `convert.rs` would, straight from the tokens.
//!
//! Why: sqlparser tries a typed literal (`DATE '...'`) before every value and builds an error
//! message each time that fails; for a 1000-row INSERT that was over a third of the server's
//! CPU per row. Anything outside the simple form (expressions, quoted keywords, ON CONFLICT,
//! RETURNING, too many rows, a name that does not validate) returns `None` and takes the
//! general path, which also produces every error message, so both paths agree on errors.

use sqlparser::keywords::{Keyword, RESERVED_FOR_COLUMN_ALIAS};
use sqlparser::tokenizer::{Token, TokenWithSpan, Word};

use super::cursor::{fold_identifier, position_of};
use crate::ast::{Expr, ExprKind, Insert, Literal, Statement, TableRef};
use crate::catalog::{Name, TableName};
use crate::error::Position;
use crate::limits;

/// The statement, if `tokens` (significant tokens of one statement) are a literal INSERT.
pub(crate) fn recognize(tokens: &[TokenWithSpan]) -> Option<Statement> {
    let mut at = Tokens { tokens, at: 0 };
    if !(at.keyword(Keyword::INSERT) && at.keyword(Keyword::INTO)) {
        return None;
    }
    let table = at.table()?;
    let columns = if at.eat(&Token::LParen) {
        let mut columns = Vec::new();
        loop {
            let (word, position) = at.plain_word()?;
            columns.push((fold_identifier(&word.value, word.quote_style), position));
            if !at.eat(&Token::Comma) {
                break;
            }
        }
        at.expect(&Token::RParen)?;
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
        at.expect(&Token::LParen)?;
        let mut row = Vec::with_capacity(rows.last().map_or(4, Vec::len));
        loop {
            row.push(at.value()?);
            if !at.eat(&Token::Comma) {
                break;
            }
        }
        at.expect(&Token::RParen)?;
        rows.push(row);
        if !at.eat(&Token::Comma) {
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

struct Tokens<'a> {
    tokens: &'a [TokenWithSpan],
    at: usize,
}

impl<'a> Tokens<'a> {
    fn peek(&self) -> Option<&'a TokenWithSpan> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, token: &Token) -> bool {
        let found = self.peek().is_some_and(|t| &t.token == token);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, token: &Token) -> Option<()> {
        self.eat(token).then_some(())
    }

    fn keyword(&mut self, keyword: Keyword) -> bool {
        let found = matches!(self.peek().map(|t| &t.token),
            Some(Token::Word(w)) if w.quote_style.is_none() && w.keyword == keyword);
        self.at += usize::from(found);
        found
    }

    /// A name, quoted or not. Unquoted keywords are names too (`id`, `key`, `user`), as they
    /// are to sqlparser, except those sqlparser reserves (`(SELECT ...)` is a query there).
    fn plain_word(&mut self) -> Option<(&'a Word, Option<Position>)> {
        let token = self.peek()?;
        match &token.token {
            Token::Word(word)
                if word.quote_style.is_some()
                    || !RESERVED_FOR_COLUMN_ALIAS.contains(&word.keyword) =>
            {
                self.at += 1;
                Some((word, position_of(token)))
            }
            _ => None,
        }
    }

    fn name(&mut self) -> Option<(Name, Option<Position>)> {
        let (word, position) = self.plain_word()?;
        let name = Name::new(&fold_identifier(&word.value, word.quote_style)).ok()?;
        Some((name, position))
    }

    fn table(&mut self) -> Option<TableRef> {
        // After INTO, sqlparser reads these as clauses (Hive's `INTO TABLE`, `LOCAL DIRECTORY`).
        for keyword in [Keyword::TABLE, Keyword::LOCAL, Keyword::DIRECTORY] {
            if self.keyword(keyword) {
                return None;
            }
        }
        let (namespace, position) = self.name()?;
        self.expect(&Token::Period)?;
        let (table, _) = self.name()?;
        Some(TableRef {
            name: TableName { namespace, table },
            position,
        })
    }

    /// A literal, `-`/`+` before a number, or a parameter; positioned like `convert.rs` does
    /// (a signed number at its digits).
    fn value(&mut self) -> Option<Expr> {
        let sign = if self.eat(&Token::Minus) {
            "-"
        } else if self.eat(&Token::Plus) {
            "+"
        } else {
            ""
        };
        let token = self.peek()?;
        let position = position_of(token);
        let kind = match (&token.token, sign) {
            (Token::Number(text, _), "-") => ExprKind::Literal(Literal::Number(format!("-{text}"))),
            (Token::Number(text, _), "") => ExprKind::Literal(Literal::Number(text.clone())),
            (Token::SingleQuotedString(text), "") => ExprKind::Literal(Literal::Text(text.clone())),
            (Token::Placeholder(text), "") => ExprKind::Parameter(parameter(text)?),
            (Token::Word(word), "") if word.quote_style.is_none() => match word.keyword {
                Keyword::NULL => ExprKind::Literal(Literal::Null),
                Keyword::TRUE => ExprKind::Literal(Literal::Boolean(true)),
                Keyword::FALSE => ExprKind::Literal(Literal::Boolean(false)),
                _ => return None,
            },
            // `+5` is a unary plus in the general path; leave it there.
            _ => return None,
        };
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
