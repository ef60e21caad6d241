//! A pass over the raw SQL text before any tokenizer or parser allocates for it: it refuses
//! lists longer than [`limits::LIST_ITEMS_MAX`] and nesting deeper than
//! [`limits::NESTING_DEPTH_MAX`] at once, and counts the text's tokens so that the general
//! path refuses more than [`limits::SQL_TOKENS_MAX`] before sqlparser builds them.
//!
//! Why: sqlparser keeps about 120 bytes per token and about 430 bytes per expression node, so a
//! 0.4 MB `IN (1,1,...)` list cost about 170 MB (300 MB of resident memory in the server)
//! before the IN-list limit refused it after parsing. This pass allocates nothing; what it lets
//! through costs at most [`limits::SQL_TOKENS_MAX`] tokens' worth.
//!
//! It skips what can hide a `(`, `,` or `;`: `'strings'` (also `E'...'` with backslash
//! escapes), `"quoted names"`, `$tag$ dollar-quoted $tag$` strings, `--` and nested `/* */`
//! comments. It counts tokens as sqlparser does for words, numbers, strings, quoted names
//! and parameters (one each) and one per character of an operator, so its count is never
//! below sqlparser's (`>=` counts two here, one there).

use crate::error::{Position, Result, SqlError};
use crate::limits;

/// What the pass counted in a text it did not refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Tokens of the whole text (all its statements), without whitespace and comments.
    pub tokens: usize,
    /// Where the token past [`limits::SQL_TOKENS_MAX`] starts, if there is one.
    pub first_token_over: Option<usize>,
}

/// What a list is, to refuse it with the limit its parsed form would be refused by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    /// `IN (...)`.
    InList,
    /// The top level of an INSERT (its VALUES rows are separated there).
    InsertRows,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct List {
    kind: ListKind,
    items: usize,
}

const EMPTY: List = List {
    kind: ListKind::Other,
    items: 1,
};

/// The bounds the pass checks: the named limits, or smaller ones in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub list_items: usize,
    pub in_list: usize,
    pub insert_rows: usize,
    /// At most [`limits::NESTING_DEPTH_MAX`].
    pub depth: usize,
    pub tokens: usize,
}

impl Bounds {
    pub(crate) const LIMITS: Bounds = Bounds {
        list_items: limits::LIST_ITEMS_MAX,
        in_list: limits::IN_LIST_LEN_MAX,
        insert_rows: limits::ROWS_PER_INSERT_MAX,
        depth: limits::NESTING_DEPTH_MAX,
        tokens: limits::SQL_TOKENS_MAX,
    };
}

/// Scans `sql` against the named limits, refusing an over-long list or too deep nesting; see
/// the module comment.
pub(crate) fn prescan(sql: &str) -> Result<Counts> {
    scan(sql, &Bounds::LIMITS)
}

/// [`prescan`] against any bounds.
pub(crate) fn scan(sql: &str, bounds: &Bounds) -> Result<Counts> {
    let max_depth = bounds.depth.min(limits::NESTING_DEPTH_MAX);
    let bytes = sql.as_bytes();
    // The open lists, the statement's top level at index 0. Fixed size: nesting is bounded.
    let mut lists = [EMPTY; limits::NESTING_DEPTH_MAX + 1];
    // Like `split` in `mod.rs`: a `)` without its `(` goes below zero, and a `;` at zero or
    // below ends the statement.
    let mut depth = 0i64;
    let mut tokens = 0usize;
    let mut first_token_over = None;
    // The previous token was the word IN; the statement's first token (to spot INSERT).
    let mut after_in = false;
    let mut statement_start = true;
    let mut at = 0usize;
    while let Some(&byte) = bytes.get(at) {
        let start = at;
        let mut is_in = false;
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {
                at += 1;
                continue;
            }
            b'-' if bytes.get(at + 1) == Some(&b'-') => {
                at = line_end(bytes, at);
                continue;
            }
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                at = block_comment_end(bytes, at + 2);
                continue;
            }
            b'\'' => at = quoted_end(bytes, at + 1, b'\'', false),
            b'"' => at = quoted_end(bytes, at + 1, b'"', false),
            b'e' | b'E' if bytes.get(at + 1) == Some(&b'\'') => {
                at = quoted_end(bytes, at + 2, b'\'', true)
            }
            b'$' => at = dollar_end(bytes, at),
            b'0'..=b'9' => at = number_end(bytes, at),
            b'.' if bytes.get(at + 1).is_some_and(u8::is_ascii_digit) => {
                at = number_end(bytes, at + 1)
            }
            b'(' | b'[' => {
                depth += 1;
                at += 1;
                if depth > 0 {
                    let level = depth as usize;
                    if level > max_depth {
                        let what = "parenthesis nesting depth";
                        let max = max_depth;
                        return Err(SqlError::limit(what, max, position(sql, start)));
                    }
                    let kind = if after_in {
                        ListKind::InList
                    } else {
                        ListKind::Other
                    };
                    lists[level] = List { kind, items: 1 };
                }
            }
            b')' | b']' => {
                depth -= 1;
                at += 1;
            }
            b',' => {
                at += 1;
                let list = &mut lists[depth.max(0) as usize];
                list.items += 1;
                let (what, max) = match list.kind {
                    ListKind::InList => ("IN list length", bounds.in_list),
                    ListKind::InsertRows => ("rows per INSERT", bounds.insert_rows),
                    ListKind::Other => ("items in one list", bounds.list_items),
                };
                if list.items > max {
                    // Where the item past the limit starts, as the parsed checks point.
                    let next = next_significant(bytes, at);
                    return Err(SqlError::limit(what, max, position(sql, next)));
                }
            }
            b';' if depth <= 0 => {
                depth = 0;
                lists[0] = EMPTY;
                statement_start = true;
                after_in = false;
                at += 1;
                tokens += 1;
                if tokens == bounds.tokens.saturating_add(1) {
                    first_token_over = Some(start);
                }
                continue;
            }
            byte if is_word_byte(byte) && !byte.is_ascii_digit() => {
                at = word_end(bytes, at);
                let word = &bytes[start..at];
                is_in = word.eq_ignore_ascii_case(b"in");
                if statement_start && depth == 0 && word.eq_ignore_ascii_case(b"insert") {
                    lists[0].kind = ListKind::InsertRows;
                }
            }
            _ => at += 1,
        }
        statement_start = false;
        after_in = is_in;
        tokens += 1;
        if tokens == bounds.tokens.saturating_add(1) {
            first_token_over = Some(start);
        }
    }
    Ok(Counts {
        tokens,
        first_token_over,
    })
}

/// Refuses a text with more tokens than the general path may build (see the module comment).
pub(crate) fn check_tokens(sql: &str, counts: Counts, bounds: &Bounds) -> Result<()> {
    match counts.first_token_over {
        Some(offset) => Err(SqlError::limit(
            "tokens in one request",
            bounds.tokens,
            position(sql, offset),
        )),
        None => Ok(()),
    }
}

/// Bytes of words (sqlparser's PostgreSQL identifier characters, any non-ASCII included).
fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

fn word_end(bytes: &[u8], from: usize) -> usize {
    let length = bytes[from..].iter().take_while(|b| is_word_byte(**b));
    from + length.count()
}

/// The end of a number: digits, `.`, `_` and an exponent (`e`, an optional sign, a digit).
/// Other letters end it, so that `0x1F` counts two tokens here (never fewer than sqlparser).
fn number_end(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(&byte) = bytes.get(at) {
        if byte.is_ascii_digit() || byte == b'.' || byte == b'_' {
            at += 1;
        } else if matches!(byte, b'e' | b'E') {
            let sign = matches!(bytes.get(at + 1), Some(b'+' | b'-'));
            let digit = at + 1 + usize::from(sign);
            if !bytes.get(digit).is_some_and(u8::is_ascii_digit) {
                break;
            }
            at = digit + 1;
        } else {
            break;
        }
    }
    at
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    let rest = bytes[from..].iter().position(|b| *b == b'\n');
    rest.map_or(bytes.len(), |length| from + length)
}

/// Just after the `*/` closing a comment whose `/*` ends before `from`, counting nested ones;
/// the end of the text if it is not closed.
fn block_comment_end(bytes: &[u8], from: usize) -> usize {
    let (mut at, mut open) = (from, 1usize);
    while at < bytes.len() {
        match (bytes[at], bytes.get(at + 1)) {
            (b'/', Some(b'*')) => {
                open += 1;
                at += 2;
            }
            (b'*', Some(b'/')) => {
                open -= 1;
                at += 2;
                if open == 0 {
                    return at;
                }
            }
            _ => at += 1,
        }
    }
    bytes.len()
}

/// Just after the quote closing a quoted text whose opening quote is before `from`; a doubled
/// quote is part of the text, and so, with `backslash`, is any character after a `\`.
fn quoted_end(bytes: &[u8], from: usize, quote: u8, backslash: bool) -> usize {
    let mut at = from;
    while let Some(&byte) = bytes.get(at) {
        if backslash && byte == b'\\' {
            at += 2;
        } else if byte == quote {
            if bytes.get(at + 1) == Some(&quote) {
                at += 2;
            } else {
                return at + 1;
            }
        } else {
            at += 1;
        }
    }
    bytes.len()
}

/// After a `$`: a `$tag$ ... $tag$` (or `$$ ... $$`) string, a `$1` or `$name` parameter, or
/// a lone `$`.
fn dollar_end(bytes: &[u8], at: usize) -> usize {
    let tag_end = at
        + 1
        + bytes[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
    let tag = &bytes[at + 1..tag_end];
    let is_parameter = !tag.is_empty() && tag[0].is_ascii_digit();
    if is_parameter || bytes.get(tag_end) != Some(&b'$') {
        return tag_end;
    }
    let delimiter = &bytes[at..=tag_end];
    let body = tag_end + 1;
    let close = bytes[body..]
        .windows(delimiter.len())
        .position(|window| window == delimiter);
    close.map_or(bytes.len(), |offset| body + offset + delimiter.len())
}

/// The first byte at or after `from` that is not whitespace (the text's end if none).
fn next_significant(bytes: &[u8], from: usize) -> usize {
    let rest = bytes[from..]
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    rest.map_or(bytes.len(), |length| from + length)
}

/// The line and column (in characters, from 1, as sqlparser counts) of a byte offset.
pub(crate) fn position(sql: &str, offset: usize) -> Option<Position> {
    let before = sql.get(..offset)?;
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    Position::known(line as u64, column as u64)
}
