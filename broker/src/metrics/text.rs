//! Pieces of the Prometheus text format (version 0.0.4) shared by every series: a series'
//! `# HELP` and `# TYPE` lines, a histogram's bucket lines, and label values escaped as the
//! format asks. Plain writers into a `String`; nothing here knows what is measured.

use std::fmt::Write;

/// `# HELP` and `# TYPE` of one series (`help` is one line).
pub(super) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A histogram's samples for one label value: cumulative buckets, `+Inf`, sum and count.
pub(super) struct HistogramLines<'a> {
    pub name: &'a str,
    /// The one label, as `(name, value)`; the value is escaped here.
    pub label: (&'a str, &'a str),
    /// Upper bounds, in seconds.
    pub bounds: &'a [f64],
    /// Count per bucket (not cumulative), one more than `bounds` for `+Inf`.
    pub buckets: &'a [u64],
    pub sum_s: f64,
    pub count: u64,
}

impl HistogramLines<'_> {
    pub(super) fn write(&self, out: &mut String) {
        let HistogramLines { name, label, .. } = self;
        let (label, value) = (label.0, LabelValue(label.1));
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(self.buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{{label}=\"{value}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count;
        let _ = writeln!(
            out,
            "{name}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "{name}_sum{{{label}=\"{value}\"}} {}", self.sum_s);
        let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {count}");
    }
}

/// A label value as the text format wants it: `\`, `"` and line feeds escaped (group names
/// are chosen by clients and may hold the first two).
pub(super) struct LabelValue<'a>(pub &'a str);

impl std::fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let text = LabelValue("a\"b\\c\nd").to_string();
        assert_eq!(text, "a\\\"b\\\\c\\nd");
        assert_eq!(LabelValue("plain.name").to_string(), "plain.name");
    }
}
