//! `LIKE` patterns, compiled once: `%` matches any run of characters, `_` exactly one, and a
//! backslash makes the next character literal (PostgreSQL's default escape). Matching walks
//! the text in place (greedy with one backtrack point), allocating nothing.

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// `%`.
    Any,
    /// `_`.
    One,
    /// A literal character.
    Char(char),
}

/// A compiled LIKE pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LikePattern {
    tokens: Vec<Token>,
    /// ILIKE: the tokens are lowercase, and so is the text before matching.
    case_insensitive: bool,
}

impl LikePattern {
    pub(crate) fn new(pattern: &str) -> LikePattern {
        let mut tokens = Vec::with_capacity(pattern.len());
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let token = match c {
                '%' if tokens.last() == Some(&Token::Any) => continue,
                '%' => Token::Any,
                '_' => Token::One,
                // A trailing backslash stands for itself.
                '\\' => Token::Char(chars.next().unwrap_or('\\')),
                c => Token::Char(c),
            };
            tokens.push(token);
        }
        LikePattern {
            tokens,
            case_insensitive: false,
        }
    }

    /// An ILIKE pattern: letters match whatever their case (compared lowercased).
    pub(crate) fn case_insensitive(pattern: &str) -> LikePattern {
        let mut compiled = LikePattern::new(pattern);
        for token in &mut compiled.tokens {
            if let Token::Char(c) = token {
                // A character whose lowercase is several (rare) keeps its first.
                *c = c.to_lowercase().next().unwrap_or(*c);
            }
        }
        compiled.case_insensitive = true;
        compiled
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        if self.case_insensitive {
            return self.matches_exactly(&text.to_lowercase());
        }
        self.matches_exactly(text)
    }

    fn matches_exactly(&self, text: &str) -> bool {
        let tokens = &self.tokens;
        let (mut token, mut at) = (0usize, 0usize);
        // After the last `%`: the token after it, and where in the text it started matching.
        let mut backtrack: Option<(usize, usize)> = None;
        while let Some(c) = text[at..].chars().next() {
            match tokens.get(token) {
                Some(Token::One) => {
                    token += 1;
                    at += c.len_utf8();
                }
                Some(Token::Char(expected)) if *expected == c => {
                    token += 1;
                    at += c.len_utf8();
                }
                Some(Token::Any) => {
                    token += 1;
                    backtrack = Some((token, at));
                }
                _ => match backtrack {
                    Some((after_any, from)) => {
                        // Let the `%` swallow one more character and retry.
                        let skipped = text[from..].chars().next().map_or(1, char::len_utf8);
                        backtrack = Some((after_any, from + skipped));
                        token = after_any;
                        at = from + skipped;
                    }
                    None => return false,
                },
            }
        }
        tokens[token.min(tokens.len())..]
            .iter()
            .all(|t| *t == Token::Any)
    }
}

#[cfg(test)]
mod tests {
    use super::LikePattern;

    fn like(text: &str, pattern: &str) -> bool {
        LikePattern::new(pattern).matches(text)
    }

    #[test]
    fn wildcards() {
        assert!(like("hello", "h%o"));
        assert!(like("hello", "%"));
        assert!(like("", "%"));
        assert!(!like("", "_"));
        assert!(like("hello", "h_llo"));
        assert!(like("hello", "%l%l%"));
        assert!(!like("hello", "%x%"));
        assert!(like("aaa", "%a"));
        assert!(!like("ab", "a"));
        assert!(like("mississippi", "m%iss%pi"));
        assert!(like("héllo", "h_llo"), "_ is one character, not one byte");
    }

    #[test]
    fn escapes() {
        assert!(like("50%", "50\\%"));
        assert!(!like("500", "50\\%"));
        assert!(like("a_b", "a\\_b"));
        assert!(!like("axb", "a\\_b"));
        assert!(like("a\\", "a\\"));
    }
}
