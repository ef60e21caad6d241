//! The report as one self-contained HTML page with SVG charts.

use super::Report;

/// The page.
pub fn render(report: &Report) -> String {
    let _ = report;
    String::new()
}
