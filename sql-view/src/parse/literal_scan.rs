//! A small scanner for the literal INSERT fast path (`literal_insert.rs`): it reads only the
//! tokens such an INSERT is made of, borrowing from the text, and gives up (`None`) on
//! anything else (comments, escapes, prefixed strings, unusual numbers, non-ASCII names,
//! `\r`), which then goes to sqlparser's tokenizer. Positions count lines and characters
//! from 1, as sqlparser's do.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::Token;

use crate::error::Position;

/// A token of a literal INSERT.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lexeme<'s> {
    /// An unquoted word as written, with its keyword (if it is one).
    Word(&'s str, Keyword),
    /// A `"quoted"` identifier, still with doubled quotes (`""`) if it has any.
    Quoted(&'s str),
    Number(&'s str),
    /// A `'string'`, still with doubled quotes (`''`) if it has any.
    Text(&'s str),
    /// `$n` as written.
    Placeholder(&'s str),
    LParen,
    RParen,
    Comma,
    Period,
    Minus,
    Plus,
    SemiColon,
}

/// The tokens of `sql` with their positions, or `None` if it holds anything else.
pub(crate) fn scan(sql: &str) -> Option<Vec<(Lexeme<'_>, Position)>> {
    let bytes = sql.as_bytes();
    let mut lexemes = Vec::with_capacity(sql.len() / 4);
    let (mut at, mut line, mut column) = (0usize, 1u64, 1u64);
    while at < bytes.len() {
        let start = at;
        let position = Position { line, column };
        let lexeme = match bytes[at] {
            b' ' | b'\t' => {
                at += 1;
                column += 1;
                continue;
            }
            b'\n' => {
                at += 1;
                line += 1;
                column = 1;
                continue;
            }
            b'(' => Lexeme::LParen,
            b')' => Lexeme::RParen,
            b',' => Lexeme::Comma,
            b'.' => Lexeme::Period,
            b';' => Lexeme::SemiColon,
            // `--` comments and `-->`-like operators go to the general path.
            b'-' if bytes
                .get(at + 1)
                .is_some_and(|b| !b.is_ascii_digit() && *b != b' ') =>
            {
                return None
            }
            b'-' => Lexeme::Minus,
            b'+' if bytes
                .get(at + 1)
                .is_some_and(|b| !b.is_ascii_digit() && *b != b' ') =>
            {
                return None
            }
            b'+' => Lexeme::Plus,
            b'0'..=b'9' => {
                at = number_end(bytes, at)?;
                Lexeme::Number(&sql[start..at])
            }
            b'$' => {
                at = digits_end(bytes, at + 1);
                if at == start + 1 || bytes.get(at).is_some_and(|b| is_word_byte(*b)) {
                    return None;
                }
                Lexeme::Placeholder(&sql[start..at])
            }
            quote @ (b'\'' | b'"') => {
                let end = quoted_end(sql, at, quote, &mut line, &mut column)?;
                let text = &sql[start + 1..end - 1];
                if text.contains('\r') || (quote == b'"' && text.is_empty()) {
                    return None;
                }
                at = end;
                let lexeme = match quote {
                    b'"' => Lexeme::Quoted(text),
                    _ => Lexeme::Text(text),
                };
                lexemes.push((lexeme, position));
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                at += 1;
                while bytes.get(at).is_some_and(|b| is_word_byte(*b)) {
                    at += 1;
                }
                // `E'..'`, `X'..'`, `U&'..'`, non-ASCII names: not ours.
                if bytes
                    .get(at)
                    .is_some_and(|b| matches!(b, b'\'' | b'&' | b'"') || *b >= 0x80)
                {
                    return None;
                }
                let word = &sql[start..at];
                Lexeme::Word(word, keyword_of(word))
            }
            _ => return None,
        };
        if at == start {
            at += 1;
        }
        column += (at - start) as u64;
        lexemes.push((lexeme, position));
    }
    Some(lexemes)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

fn digits_end(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    at
}

/// `123`, `1.5`, `2e10`, `2.5E-3`; `None` for other shapes (`1.`, `1_000`, `0x1f`, `1abc`).
fn number_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut at = digits_end(bytes, start);
    if bytes.get(at) == Some(&b'.') {
        let fraction = digits_end(bytes, at + 1);
        if fraction == at + 1 {
            return None;
        }
        at = fraction;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(at + 1), Some(b'+' | b'-')));
        let exponent = digits_end(bytes, at + 1 + sign);
        if exponent == at + 1 + sign {
            return None;
        }
        at = exponent;
    }
    if bytes
        .get(at)
        .is_some_and(|b| is_word_byte(*b) || *b == b'.')
    {
        return None;
    }
    Some(at)
}

/// End (exclusive) of the quoted run starting at `start` (a doubled quote stays inside),
/// moving `line` and `column` past it.
fn quoted_end(
    sql: &str,
    start: usize,
    quote: u8,
    line: &mut u64,
    column: &mut u64,
) -> Option<usize> {
    let bytes = sql.as_bytes();
    let mut at = start + 1;
    *column += 1;
    loop {
        let b = *bytes.get(at)?;
        at += 1;
        if b == b'\n' {
            *line += 1;
            *column = 1;
            continue;
        }
        // Count characters, not bytes: only UTF-8 continuation bytes do not start one.
        *column += u64::from(b & 0xC0 != 0x80);
        if b == quote {
            if bytes.get(at) == Some(&quote) {
                at += 1;
                *column += 1;
                continue;
            }
            return Some(at);
        }
    }
}

/// sqlparser's keyword for an unquoted word (its own lookup, so both paths agree).
fn keyword_of(word: &str) -> Keyword {
    match Token::make_word(word, None) {
        Token::Word(word) => word.keyword,
        _ => Keyword::NoKeyword,
    }
}
