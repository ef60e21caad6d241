//! The report as text: the machine, one table per workload, the ratios, the goals and the
//! failures.

use std::fmt::Write;

use super::{Measurement, Report};

/// The whole report as text.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let _ = writeln!(out, "strand-bench {} | {}", report.version, report.command);
    let _ = writeln!(
        out,
        "machine: {} CPUs ({}), {:.1} GiB RAM, Linux {}, {}",
        m.cpus, m.cpu_model, m.ram_gib, m.kernel, m.file_system
    );
    if let Some(disk) = &m.disk {
        let _ = writeln!(
            out,
            "disk: 200 B append+fdatasync at 1,000/s p50 {:.2} ms p99 {:.2} ms max {:.2} ms; \
             O_DSYNC sequential {:.0} MB/s",
            disk.fdatasync.p50_ms,
            disk.fdatasync.p99_ms,
            disk.fdatasync.max_ms,
            disk.odsync_mb_per_s
        );
    }
    let mut workloads: Vec<&str> = report.results.iter().map(|r| r.workload.as_str()).collect();
    workloads.dedup();
    for workload in workloads {
        let _ = writeln!(out, "\n== {workload}");
        let _ = writeln!(
            out,
            "{:<10} {:<44} {:<22} {:>12} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "system",
            "case",
            "durability",
            "records/s",
            "MB/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
        );
        for result in report.results.iter().filter(|r| r.workload == workload) {
            let _ = writeln!(out, "{}", row(result));
            if !result.figures.is_empty() {
                let _ = writeln!(out, "{:<10} {}", "", cells(result).other);
            }
        }
    }
    if !report.ratios.is_empty() {
        let _ = writeln!(
            out,
            "\n== Strand against peers (advantage > 1: Strand ahead)"
        );
        for ratio in &report.ratios {
            let _ = writeln!(
                out,
                "{:<10} {:<40} vs {:<34} {:<14} {:>8.2}x  ({} vs {})",
                ratio.workload,
                ratio.case,
                ratio.peer,
                ratio.figure,
                ratio.advantage,
                number(ratio.strand),
                number(ratio.peer_value)
            );
        }
    }
    if !report.goals.is_empty() {
        let _ = writeln!(out, "\n== goals");
        for goal in &report.goals {
            let measured = goal.measured.map_or("-".to_string(), number);
            let required = goal.required.map_or("-".to_string(), number);
            let _ = writeln!(
                out,
                "{:<8} {} (measured {measured} {unit}, required {required} {unit})",
                goal.verdict,
                goal.label,
                unit = goal.unit
            );
        }
    }
    for failure in &report.failures {
        let _ = writeln!(out, "\nFAILED {}: {}", failure.workload, failure.error);
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(out, "\n({:.1} s)", report.elapsed_s);
    out
}

/// A measurement's figures as the tables show them (`-` where it has none).
pub struct Cells {
    pub rate: String,
    pub mb: String,
    pub p50: String,
    pub p99: String,
    pub p999: String,
    pub max: String,
    /// The other figures, `name value unit`, comma-separated.
    pub other: String,
}

/// The cells of `result`'s row, shared by the text, HTML and Markdown tables.
pub fn cells(result: &Measurement) -> Cells {
    let (rate, mb) = result
        .throughput
        .map_or(("-".to_string(), "-".to_string()), |t| {
            (number(t.records_per_s), format!("{:.1}", t.mb_per_s))
        });
    let ms = |f: fn(&crate::latency::LatencySummary) -> f64| {
        let latency = result.latency.as_ref();
        latency.map_or("-".to_string(), |l| format!("{:.3}", f(l)))
    };
    let other: Vec<String> = result
        .figures
        .iter()
        .map(|f| {
            format!("{} {} {}", f.name, number(f.value), f.unit)
                .trim_end()
                .to_string()
        })
        .collect();
    Cells {
        rate,
        mb,
        p50: ms(|l| l.p50_ms),
        p99: ms(|l| l.p99_ms),
        p999: ms(|l| l.p999_ms),
        max: ms(|l| l.max_ms),
        other: other.join(", "),
    }
}

fn row(result: &Measurement) -> String {
    let c = cells(result);
    format!(
        "{:<10} {:<44} {:<22} {:>12} {:>8} {:>9} {:>9} {:>9} {:>9}",
        result.system,
        clip(&result.label, 44),
        clip(&result.durability, 22),
        c.rate,
        c.mb,
        c.p50,
        c.p99,
        c.p999,
        c.max
    )
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut clipped: String = text.chars().take(width - 1).collect();
    clipped.push('~');
    clipped
}

/// A figure readably: thousands separated when large, three decimals when small.
pub fn number(value: f64) -> String {
    if value.abs() >= 1000.0 {
        thousands(value.round() as i64)
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1000), "-1,000");
        assert_eq!(thousands(999), "999");
    }
}
