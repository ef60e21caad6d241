//! Small SVG charts for the HTML report: lines over a linear or percentile axis, and bars
//! around a reference value. No script, no external resources: the page renders offline.

use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 300.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_RIGHT: f64 = 190.0;
const MARGIN_TOP: f64 = 30.0;
const MARGIN_BOTTOM: f64 = 45.0;
/// Distinct line colours (cycled).
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// How the x axis maps values.
#[derive(Clone, Copy)]
pub enum XAxis {
    Linear,
    /// Percentiles 0..100 spread as HdrHistogram plots them: by `1 / (1 - p)`, so the tail
    /// (99, 99.9, 99.99) gets as much room as the body.
    Percentile,
}

/// One named line.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

fn x_position(axis: XAxis, x: f64) -> f64 {
    match axis {
        XAxis::Linear => x,
        XAxis::Percentile => {
            let tail = (1.0 - (x / 100.0).min(0.99999)).max(1e-5);
            (1.0 / tail).log10()
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart; `y_log` plots y on a log scale (latencies span decades).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    axis: XAxis,
    y_log: bool,
    lines: &[Line],
) -> String {
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let all = lines.iter().flat_map(|l| l.points.iter().copied());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in all {
        let x = x_position(axis, x);
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"{MARGIN_LEFT}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        escape(title)
    );
    if x_min > x_max {
        out.push_str("<text x=\"80\" y=\"120\">no data</text></svg>");
        return out;
    }
    let y_of = |y: f64| if y_log { y.max(1e-6).log10() } else { y };
    let (y_lo, y_hi) = if y_log {
        (
            y_of(y_min.max(1e-6)).floor(),
            y_of(y_max).ceil().max(y_of(y_min.max(1e-6)).floor() + 1.0),
        )
    } else {
        (0.0, if y_max > 0.0 { y_max * 1.1 } else { 1.0 })
    };
    let x_span = (x_max - x_min).max(1e-9);
    let px = |x: f64| MARGIN_LEFT + (x_position(axis, x) - x_min) / x_span * plot_w;
    let py = |y: f64| MARGIN_TOP + plot_h - (y_of(y) - y_lo) / (y_hi - y_lo) * plot_h;
    // Axes and grid.
    let _ = write!(
        out,
        "<rect x=\"{MARGIN_LEFT}\" y=\"{MARGIN_TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" \
         fill=\"none\" stroke=\"#999\"/>"
    );
    for i in 0..=4 {
        let value = if y_log {
            10f64.powf(y_lo + (y_hi - y_lo) * f64::from(i) / 4.0)
        } else {
            y_hi * f64::from(i) / 4.0
        };
        let y = py(value.max(1e-6));
        let _ = write!(
            out,
            "<line x1=\"{MARGIN_LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            MARGIN_LEFT + plot_w,
            MARGIN_LEFT - 4.0,
            y + 4.0,
            short(value)
        );
    }
    let ticks: Vec<(f64, String)> = match axis {
        XAxis::Percentile => [0.0, 50.0, 90.0, 99.0, 99.9, 99.99]
            .iter()
            .map(|&p| (p, format!("{p}")))
            .collect(),
        XAxis::Linear => (0..=4)
            .map(|i| x_min + x_span * f64::from(i) / 4.0)
            .map(|x| (x, short(x)))
            .collect(),
    };
    for (tick, text) in ticks {
        let x = match axis {
            XAxis::Percentile => px(tick),
            XAxis::Linear => MARGIN_LEFT + (tick - x_min) / x_span * plot_w,
        };
        if !(MARGIN_LEFT - 0.5..=MARGIN_LEFT + plot_w + 0.5).contains(&x) {
            continue;
        }
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{text}</text>",
            MARGIN_TOP + plot_h + 14.0,
        );
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
         <text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">{}</text>",
        MARGIN_LEFT + plot_w / 2.0,
        HEIGHT - 8.0,
        escape(x_label),
        MARGIN_TOP + plot_h / 2.0,
        MARGIN_TOP + plot_h / 2.0,
        escape(y_label)
    );
    for (i, line) in lines.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let path: Vec<String> = line
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\" points=\"{}\"/>\
             <rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            path.join(" "),
            WIDTH - MARGIN_RIGHT + 10.0,
            MARGIN_TOP + 14.0 * i as f64,
            WIDTH - MARGIN_RIGHT + 24.0,
            MARGIN_TOP + 9.0 + 14.0 * i as f64,
            escape(&clip(&line.name, 30))
        );
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars of "how many times better Strand is", with the line at 1 (level).
pub fn advantage_bars(title: &str, bars: &[(String, f64)]) -> String {
    let bar_h = 16.0;
    let height = MARGIN_TOP + bar_h * 1.4 * bars.len() as f64 + 30.0;
    let label_w = 330.0;
    let plot_w = WIDTH - label_w - 60.0;
    let max = bars.iter().map(|b| b.1).fold(2.0f64, f64::max);
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {WIDTH} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"10\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        escape(title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = MARGIN_TOP + bar_h * 1.4 * i as f64;
        let w = value / max * plot_w;
        let colour = if *value >= 1.0 { "#2ca02c" } else { "#d62728" };
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bar_h}\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{value:.2}x</text>",
            label_w - 6.0,
            y + 12.0,
            escape(&clip(label, 52)),
            label_w + w + 4.0,
            y + 12.0
        );
    }
    let one = label_w + plot_w / max;
    let _ = write!(
        out,
        "<line x1=\"{one:.1}\" x2=\"{one:.1}\" y1=\"{}\" y2=\"{:.1}\" stroke=\"#333\" \
         stroke-dasharray=\"4 3\"/><text x=\"{one:.1}\" y=\"{:.1}\" text-anchor=\"middle\">1x</text></svg>",
        MARGIN_TOP - 4.0,
        height - 24.0,
        height - 10.0
    );
    out
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut clipped: String = text.chars().take(width - 1).collect();
        clipped.push('~');
        clipped
    }
}

/// A tick label: `1.2k`, `3.4M`, `0.25`.
fn short(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if abs >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else if abs >= 10.0 {
        format!("{value:.0}")
    } else if abs >= 0.1 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_each_line_with_its_name() {
        let lines = vec![
            Line {
                name: "strand <fsync=always>".into(),
                points: vec![(0.0, 0.1), (50.0, 0.2), (99.0, 1.5), (100.0, 7.0)],
            },
            Line {
                name: "jetstream".into(),
                points: vec![(0.0, 0.2), (100.0, 3.0)],
            },
        ];
        let svg = line_chart(
            "latency",
            "percentile",
            "ms",
            XAxis::Percentile,
            true,
            &lines,
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("strand &lt;fsync=always&gt;"));
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn bars_mark_where_strand_is_behind() {
        let svg = advantage_bars("x", &[("a".into(), 2.5), ("b".into(), 0.5)]);
        assert!(svg.contains("#2ca02c") && svg.contains("#d62728"));
    }
}
