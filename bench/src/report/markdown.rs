//! BENCHMARKS.md from one run's report.

use super::Report;

/// The Markdown file.
pub fn render(report: &Report, html_link: Option<&str>) -> String {
    let _ = (report, html_link);
    String::new()
}
