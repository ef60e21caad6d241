//! SQL text to [`Statement`]s. A pass over the raw text (`prescan.rs`) first refuses lists,
//! nesting and token counts over their limits, before anything is built for them. The text is
//! then tokenized once with sqlparser's tokenizer (so every
//! token keeps its line and column), split at top-level `;`, and each statement is recognized
//! by its head: our hand-written recognizers (`custom.rs`) for namespaces, users, grants,
//! SHOW / DESCRIBE, topics and EXECUTE AS; sqlparser (PostgreSQL dialect) for the rest, then
//! converted into our types (`convert.rs`, `ddl.rs`, `expr.rs`), refusing what we do not run.
//!
//! It does not own typing against a table or evaluation (that is `plan/`).

mod call;
mod column_types;
mod convert;
mod cursor;
mod custom;
mod ddl;
mod expr;
mod from;
mod interval;
mod literal_insert;
mod literal_scan;
mod prescan;
mod select;
mod unsupported;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::ast::Statement;
use crate::error::{code, Position, Result, SqlError};
use crate::limits;
use cursor::{position_of, Cursor};

/// Parses one or more statements separated by `;`. Empty statements (`;;`) are skipped; text
/// with no statement at all is a `syntax_error`.
///
/// Lists, nesting and (for sqlparser) the number of tokens are checked on the raw text first
/// (`prescan.rs`), so a refused text costs no more memory than its own size.
pub fn parse_statements(sql: &str) -> Result<Vec<Statement>> {
    check_text_bytes(sql)?;
    let counts = prescan::prescan(sql)?;
    if let Some(statement) = literal_insert::recognize(sql) {
        return Ok(vec![statement]);
    }
    prescan::check_tokens(sql, counts, &prescan::Bounds::LIMITS)?;
    parse_tokens_of(sql)
}

/// [`parse_statements`] without the literal INSERT fast path (which must agree with it).
#[cfg(test)]
fn parse_general(sql: &str) -> Result<Vec<Statement>> {
    check_text_bytes(sql)?;
    let counts = prescan::prescan(sql)?;
    prescan::check_tokens(sql, counts, &prescan::Bounds::LIMITS)?;
    parse_tokens_of(sql)
}

fn check_text_bytes(sql: &str) -> Result<()> {
    if sql.len() > limits::SQL_TEXT_BYTES_MAX {
        return Err(SqlError::limit(
            "SQL text bytes",
            limits::SQL_TEXT_BYTES_MAX,
            None,
        ));
    }
    Ok(())
}

/// The general path, once the pre-scan passed: sqlparser's tokens, split into statements,
/// each parsed by our recognizers or sqlparser.
fn parse_tokens_of(sql: &str) -> Result<Vec<Statement>> {
    let tokens = tokenize(sql)?;
    let pieces = split(tokens);
    if pieces.is_empty() {
        return Err(SqlError::syntax(
            "no statement in the SQL text",
            Position::known(1, 1),
        ));
    }
    if pieces.len() > limits::STATEMENTS_PER_REQUEST_MAX {
        let position = pieces
            .get(limits::STATEMENTS_PER_REQUEST_MAX)
            .and_then(|p| start(p));
        let what = "statements per request";
        return Err(SqlError::limit(
            what,
            limits::STATEMENTS_PER_REQUEST_MAX,
            position,
        ));
    }
    check_statement_bytes(sql, &pieces)?;
    let mut statements = Vec::with_capacity(pieces.len());
    for piece in &pieces {
        check_operator_chains(piece)?;
        statements.push(parse_tokens(piece, end(piece))?);
    }
    Ok(statements)
}

/// Parses exactly one statement (a trailing `;` is allowed).
pub fn parse_statement(sql: &str) -> Result<Statement> {
    let mut statements = parse_statements(sql)?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        n => Err(SqlError::syntax(
            format!("expected one statement, found {n}"),
            None,
        )),
    }
}

fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>> {
    Tokenizer::new(&PostgreSqlDialect {}, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|error| {
            let position = Position::known(error.location.line, error.location.column);
            SqlError::syntax(error.message, position)
        })
}

/// Significant tokens (no whitespace or comments) of each non-empty statement.
fn split(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut pieces = Vec::new();
    let mut current = Vec::new();
    let mut depth = 0i64;
    for token in tokens {
        match token.token {
            Token::Whitespace(_) => continue,
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::SemiColon if depth <= 0 => {
                if !current.is_empty() {
                    pieces.push(std::mem::take(&mut current));
                }
                depth = 0;
                continue;
            }
            _ => {}
        }
        current.push(token);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

fn start(piece: &[TokenWithSpan]) -> Option<Position> {
    piece.first().and_then(position_of)
}

/// Just after the last token, where "found end of statement" errors point.
fn end(piece: &[TokenWithSpan]) -> Option<Position> {
    piece
        .last()
        .and_then(|t| Position::known(t.span.end.line, t.span.end.column))
}

/// Checks each statement's size in bytes, with one pass over the text that turns token
/// locations (line, column in characters) into byte offsets.
fn check_statement_bytes(sql: &str, pieces: &[Vec<TokenWithSpan>]) -> Result<()> {
    let mut bounds: Vec<Location> = Vec::with_capacity(pieces.len() * 2);
    for piece in pieces {
        if let (Some(first), Some(last)) = (piece.first(), piece.last()) {
            bounds.extend([first.span.start, last.span.end]);
        }
    }
    let offsets = byte_offsets(sql, &bounds);
    for (index, pair) in offsets.chunks(2).enumerate() {
        if let [from, to] = pair {
            if to.saturating_sub(*from) > limits::STATEMENT_BYTES_MAX {
                let position = pieces.get(index).and_then(|p| start(p));
                let what = "statement bytes";
                return Err(SqlError::limit(what, limits::STATEMENT_BYTES_MAX, position));
            }
        }
    }
    Ok(())
}

/// Byte offsets of non-decreasing locations, counting lines and columns like sqlparser.
fn byte_offsets(sql: &str, locations: &[Location]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(locations.len());
    let mut wanted = locations.iter().peekable();
    let (mut line, mut column) = (1u64, 1u64);
    for (offset, character) in sql.char_indices().chain(std::iter::once((sql.len(), '\0'))) {
        while wanted
            .next_if(|l| (l.line, l.column) <= (line, column))
            .is_some()
        {
            offsets.push(offset);
        }
        if character == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    offsets.resize(locations.len(), sql.len());
    offsets
}

/// Refuses operator chains longer than [`limits::OPERATOR_CHAIN_LEN_MAX`] (see there why).
fn check_operator_chains(piece: &[TokenWithSpan]) -> Result<()> {
    let mut chains = vec![0usize];
    for item in piece {
        match &item.token {
            Token::LParen | Token::LBracket => chains.push(0),
            Token::RParen | Token::RBracket if chains.len() > 1 => {
                chains.pop();
            }
            Token::Comma => {
                if let Some(chain) = chains.last_mut() {
                    *chain = 0;
                }
            }
            token if is_operator(token) => {
                let chain = chains.last_mut().map_or(0, |chain| {
                    *chain += 1;
                    *chain
                });
                if chain > limits::OPERATOR_CHAIN_LEN_MAX {
                    let what = "operators in one expression";
                    let max = limits::OPERATOR_CHAIN_LEN_MAX;
                    return Err(SqlError::limit(what, max, position_of(item)));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Tokens that continue an expression as an infix or postfix operator.
fn is_operator(token: &Token) -> bool {
    match token {
        Token::Word(word) => {
            word.quote_style.is_none()
                && matches!(
                    word.keyword,
                    Keyword::AND
                        | Keyword::OR
                        | Keyword::IS
                        | Keyword::NOT
                        | Keyword::LIKE
                        | Keyword::ILIKE
                        | Keyword::BETWEEN
                        | Keyword::IN
                        | Keyword::COLLATE
                        | Keyword::AT
                        | Keyword::XOR
                )
        }
        Token::Number(..)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::HexStringLiteral(_)
        | Token::Placeholder(_)
        | Token::Period
        | Token::SemiColon
        | Token::Whitespace(_)
        | Token::EOF => false,
        _ => true,
    }
}

/// One statement from its significant tokens: ours if we recognize its head, else sqlparser's.
fn parse_tokens(tokens: &[TokenWithSpan], end: Option<Position>) -> Result<Statement> {
    let mut cursor = Cursor::new(tokens, end);
    if let Some(statement) = custom::recognize(&mut cursor, &parse_tokens) {
        return statement;
    }
    let mut parser = Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(tokens.to_vec());
    let statement = parser
        .parse_statement()
        .map_err(|error| parser_error(error, tokens, end))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        let found = format!("expected end of statement, found '{}'", next.token);
        return Err(SqlError::syntax(found, position_of(&next).or(end)));
    }
    convert::statement(statement, tokens)
}

/// A sqlparser error as ours: the position comes from the "at Line: l, Column: c" of its
/// message when present, else from the end of the statement (errors at end of input).
fn parser_error(error: ParserError, tokens: &[TokenWithSpan], end: Option<Position>) -> SqlError {
    let message = match error {
        ParserError::RecursionLimitExceeded => {
            return SqlError::new(
                code::LIMIT_EXCEEDED,
                "expression nesting exceeds the parser's recursion limit",
                start(tokens),
            );
        }
        ParserError::TokenizerError(message) | ParserError::ParserError(message) => message,
    };
    match message.rfind(" at Line: ") {
        Some(at) => {
            let position = parse_location(&message[at + " at Line: ".len()..]);
            SqlError::syntax(&message[..at], position.or(end))
        }
        None => SqlError::syntax(message, end),
    }
}

/// `"3, Column: 14"` to a position.
fn parse_location(text: &str) -> Option<Position> {
    let (line, rest) = text.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Position::known(line.trim().parse().ok()?, column.parse().ok()?)
}

#[cfg(test)]
mod tests;
