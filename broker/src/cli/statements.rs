//! Splitting SQL text into statements at `;`, for the REPL and for scripts read from stdin.
//! Sans-IO: lines go in, complete statements come out. A `;` inside a string literal
//! (`'...'`, `''` escapes), a quoted identifier (`"..."`) or a comment (`-- ...`, `/* ... */`)
//! does not end a statement.

/// Where the scanner is, carried across lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Scan {
    #[default]
    Code,
    SingleQuoted,
    DoubleQuoted,
    LineComment,
    BlockComment,
}

/// Accumulates text until statements are complete.
#[derive(Debug, Default)]
pub struct StatementBuffer {
    pending: String,
    scan: Scan,
}

impl StatementBuffer {
    /// Add a line (without its newline); returns the statements it completed, each with its
    /// terminating `;`.
    pub fn push_line(&mut self, line: &str) -> Vec<String> {
        let mut done = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            self.pending.push(c);
            let next = chars.peek().copied();
            self.scan = match (self.scan, c, next) {
                (Scan::Code, ';', _) => {
                    done.push(std::mem::take(&mut self.pending).trim().to_string());
                    Scan::Code
                }
                (Scan::Code, '\'', _) => Scan::SingleQuoted,
                (Scan::Code, '"', _) => Scan::DoubleQuoted,
                (Scan::Code, '-', Some('-')) => Scan::LineComment,
                (Scan::Code, '/', Some('*')) => {
                    self.pending.push('*');
                    chars.next();
                    Scan::BlockComment
                }
                (Scan::SingleQuoted, '\'', _) => Scan::Code,
                (Scan::DoubleQuoted, '"', _) => Scan::Code,
                (Scan::BlockComment, '*', Some('/')) => {
                    self.pending.push('/');
                    chars.next();
                    Scan::Code
                }
                (scan, _, _) => scan,
            };
        }
        if self.scan == Scan::LineComment {
            self.scan = Scan::Code;
        }
        self.pending.push('\n');
        done
    }

    /// Whether text of an unfinished statement is waiting (the REPL shows a continuation
    /// prompt). Whitespace and finished comments alone do not count.
    pub fn has_pending(&self) -> bool {
        self.scan != Scan::Code || !only_comments(&self.pending)
    }

    /// The unfinished rest (at end of input), if it holds more than whitespace and comments.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        self.scan = Scan::Code;
        (!only_comments(&rest)).then(|| rest.trim().to_string())
    }

    /// Forget the unfinished statement (Ctrl-C in the REPL).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.scan = Scan::Code;
    }
}

/// Whether `text` is only whitespace and `--` comments (block comments count as text: a
/// statement may follow them on a later line, and they are rare in interactive input).
fn only_comments(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with("--")
    })
}

/// Split a whole script into statements; a last statement without `;` is kept.
pub fn split_script(script: &str) -> Vec<String> {
    let mut buffer = StatementBuffer::default();
    let mut statements: Vec<String> = script.lines().flat_map(|l| buffer.push_line(l)).collect();
    statements.extend(buffer.finish());
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_semicolons_outside_quotes_and_comments() {
        let script = "CREATE USER 'a;b' WITH PASSWORD 'it''s;x';\n\
                      SELECT \"odd;name\" -- not here;\n FROM t; /* nor ; here */ SHOW USERS";
        let statements = split_script(script);
        assert_eq!(statements.len(), 3, "{statements:?}");
        assert_eq!(statements[0], "CREATE USER 'a;b' WITH PASSWORD 'it''s;x';");
        assert!(
            statements[1].starts_with("SELECT \"odd;name\"") && statements[1].ends_with("FROM t;")
        );
        assert_eq!(statements[2], "/* nor ; here */ SHOW USERS");
    }

    #[test]
    fn statements_span_lines_in_the_repl() {
        let mut buffer = StatementBuffer::default();
        assert!(buffer.push_line("SELECT 'multi").is_empty());
        assert!(buffer.has_pending());
        assert!(buffer.push_line("line'").is_empty());
        let done = buffer.push_line("; SELECT 2;");
        assert_eq!(done, ["SELECT 'multi\nline'\n;", "SELECT 2;"]);
        assert!(!buffer.has_pending());
        buffer.push_line("-- just a comment");
        assert!(!buffer.has_pending());
        assert_eq!(buffer.finish(), None);
        buffer.push_line("SELECT 3");
        buffer.clear();
        assert!(!buffer.has_pending());
    }
}
