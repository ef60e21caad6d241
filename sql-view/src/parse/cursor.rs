//! A cursor over the significant tokens of one statement, for the hand-written recognizers
//! (`custom.rs`) of statements sqlparser does not know. Every error it makes is a
//! `syntax_error` at the offending token, or at the end of the statement.

use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::catalog::{Name, TableName, TopicName};
use crate::error::{code, Position, Result, SqlError};

pub(crate) struct Cursor<'a> {
    tokens: &'a [TokenWithSpan],
    at: usize,
    /// Where the statement ends, for "expected X, found end of statement".
    end: Option<Position>,
}

pub(crate) fn position_of(token: &TokenWithSpan) -> Option<Position> {
    Position::known(token.span.start.line, token.span.start.column)
}

impl<'a> Cursor<'a> {
    /// A cursor over tokens without whitespace.
    pub(crate) fn new(tokens: &'a [TokenWithSpan], end: Option<Position>) -> Cursor<'a> {
        Cursor { tokens, at: 0, end }
    }

    pub(crate) fn peek(&self) -> Option<&'a TokenWithSpan> {
        self.tokens.get(self.at)
    }

    /// The rest of the tokens, unconsumed.
    pub(crate) fn rest(&self) -> &'a [TokenWithSpan] {
        &self.tokens[self.at.min(self.tokens.len())..]
    }

    pub(crate) fn position(&self) -> Option<Position> {
        self.peek().map_or(self.end, position_of)
    }

    pub(crate) fn error(&self, expected: &str) -> SqlError {
        let found = match self.peek() {
            Some(token) => format!("'{token}'"),
            None => "end of statement".to_owned(),
        };
        SqlError::syntax(
            format!("expected {expected}, found {found}"),
            self.position(),
        )
    }

    fn advance(&mut self) -> Option<&'a TokenWithSpan> {
        let token = self.tokens.get(self.at);
        self.at += 1;
        token
    }

    /// Whether the token `ahead` places on is the unquoted keyword `word`.
    pub(crate) fn is_keyword_at(&self, ahead: usize, word: &str) -> bool {
        match self.tokens.get(self.at + ahead).map(|t| &t.token) {
            Some(Token::Word(w)) => w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word),
            _ => false,
        }
    }

    pub(crate) fn eat_keyword(&mut self, word: &str) -> bool {
        let found = self.is_keyword_at(0, word);
        if found {
            self.at += 1;
        }
        found
    }

    /// Consumes the keywords `words` if they all come next, in order.
    pub(crate) fn eat_keywords(&mut self, words: &[&str]) -> bool {
        let found = words
            .iter()
            .enumerate()
            .all(|(i, word)| self.is_keyword_at(i, word));
        if found {
            self.at += words.len();
        }
        found
    }

    pub(crate) fn expect_keyword(&mut self, word: &str) -> Result<()> {
        if self.eat_keyword(word) {
            Ok(())
        } else {
            Err(self.error(word))
        }
    }

    pub(crate) fn eat_token(&mut self, token: &Token) -> bool {
        let found = self.peek().is_some_and(|t| t.token == *token);
        if found {
            self.at += 1;
        }
        found
    }

    pub(crate) fn expect_token(&mut self, token: &Token) -> Result<()> {
        if self.eat_token(token) {
            Ok(())
        } else {
            Err(self.error(&format!("'{token}'")))
        }
    }

    /// An identifier: unquoted ones are folded to lower case, quoted ones kept as written.
    pub(crate) fn identifier(&mut self) -> Result<(String, Option<Position>)> {
        let position = self.position();
        match self.peek().map(|t| &t.token) {
            Some(Token::Word(word)) => {
                self.at += 1;
                Ok((fold_identifier(&word.value, word.quote_style), position))
            }
            _ => Err(self.error("a name")),
        }
    }

    pub(crate) fn name(&mut self) -> Result<Name> {
        let (text, position) = self.identifier()?;
        Name::new(&text).map_err(|error| error.or_at(position))
    }

    /// `ns.name`; an unqualified name is an `invalid_name` error.
    pub(crate) fn qualified(&mut self) -> Result<(Name, Name, Option<Position>)> {
        let position = self.position();
        let first = self.name()?;
        if !self.eat_token(&Token::Period) {
            return Err(SqlError::new(
                code::INVALID_NAME,
                format!("'{first}' must be qualified with its namespace: ns.{first}"),
                position,
            ));
        }
        let second = self.name()?;
        Ok((first, second, position))
    }

    pub(crate) fn table_name(&mut self) -> Result<(TableName, Option<Position>)> {
        let (namespace, table, position) = self.qualified()?;
        Ok((TableName { namespace, table }, position))
    }

    pub(crate) fn topic_name(&mut self) -> Result<TopicName> {
        let (namespace, topic, _) = self.qualified()?;
        Ok(TopicName { namespace, topic })
    }

    /// A single-quoted string.
    pub(crate) fn string(&mut self) -> Result<(String, Option<Position>)> {
        let position = self.position();
        match self.peek().map(|t| &t.token) {
            Some(Token::SingleQuotedString(text)) => {
                self.at += 1;
                Ok((text.clone(), position))
            }
            _ => Err(self.error("a quoted string")),
        }
    }

    /// `'text'` or an identifier (folded like any identifier).
    pub(crate) fn string_or_identifier(&mut self) -> Result<(String, Option<Position>)> {
        match self.peek().map(|t| &t.token) {
            Some(Token::SingleQuotedString(_)) => self.string(),
            Some(Token::Word(_)) => self.identifier(),
            _ => Err(self.error("a quoted string or a name")),
        }
    }

    /// An unsigned integer literal.
    pub(crate) fn unsigned(&mut self) -> Result<(u64, Option<Position>)> {
        let position = self.position();
        match self.peek().map(|t| &t.token) {
            Some(Token::Number(text, _)) => {
                let value = text.parse::<u64>().map_err(|_| {
                    SqlError::new(
                        code::INVALID_VALUE,
                        format!("'{text}' is not a non-negative integer"),
                        position,
                    )
                })?;
                self.at += 1;
                Ok((value, position))
            }
            _ => Err(self.error("a number")),
        }
    }

    /// Fails unless every token was consumed.
    pub(crate) fn finish(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("end of statement")),
        }
    }

    /// Consumes one token (any), for error recovery-free skipping in recognizers.
    pub(crate) fn bump(&mut self) -> Option<&'a TokenWithSpan> {
        self.advance()
    }
}

/// SQL identifier folding: unquoted to lower case, quoted as written.
pub(crate) fn fold_identifier(value: &str, quote_style: Option<char>) -> String {
    match quote_style {
        None => value.to_ascii_lowercase(),
        Some(_) => value.to_owned(),
    }
}
