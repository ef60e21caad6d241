//! The report as one self-contained HTML page: the machine and command, the goals, and per
//! workload a table, throughput over time, latency percentile curves and Strand's advantage
//! over each peer, all as inline SVG.

use std::fmt::Write;

use super::svg::{self, Line, XAxis};
use super::text::{cells, number};
use super::{Measurement, Report};

const STYLE: &str = "body{font-family:sans-serif;margin:24px;max-width:1100px;color:#222}\
table{border-collapse:collapse;font-size:12px;margin:8px 0}\
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}\
td:first-child,td:nth-child(2),td:nth-child(3),th{text-align:left}\
.met{color:#1a7f1a;font-weight:bold}.notmet{color:#c01c1c;font-weight:bold}\
.charts svg{margin:6px 12px 6px 0;border:1px solid #eee}\
td.other{font-size:10px;max-width:420px;text-align:left}code{background:#f4f4f4;padding:1px 4px}";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let _ = write!(
        out,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>strand-bench report</title>\
         <style>{STYLE}</style></head><body><h1>strand-bench report</h1>\
         <p><code>{}</code> ({:.0} s)</p><p>{} CPUs ({}), {:.1} GiB RAM, Linux {}, {}</p>",
        escape(&report.command),
        report.elapsed_s,
        m.cpus,
        escape(&m.cpu_model),
        m.ram_gib,
        escape(&m.kernel),
        escape(&m.file_system)
    );
    if let Some(disk) = &m.disk {
        let _ = write!(
            out,
            "<p>Disk in this run: 200 B append+fdatasync at 1,000/s p50 {:.2} ms, p99 {:.2} ms; \
             O_DSYNC sequential {:.0} MB/s.</p>",
            disk.fdatasync.p50_ms, disk.fdatasync.p99_ms, disk.odsync_mb_per_s
        );
    }
    goals(&mut out, report);
    let mut workloads: Vec<&str> = report.results.iter().map(|r| r.workload.as_str()).collect();
    workloads.dedup();
    for workload in workloads {
        let results: Vec<&Measurement> = report
            .results
            .iter()
            .filter(|r| r.workload == workload)
            .collect();
        let _ = write!(out, "<h2>{workload}</h2><div class=\"charts\">");
        charts(&mut out, workload, &results, report);
        out.push_str("</div>");
        table(&mut out, &results);
    }
    for failure in &report.failures {
        let _ = write!(
            out,
            "<p class=\"notmet\">FAILED {}: {}</p>",
            escape(&failure.workload),
            escape(&failure.error)
        );
    }
    for note in &report.notes {
        let _ = write!(out, "<p>note: {}</p>", escape(note));
    }
    out.push_str("</body></html>\n");
    out
}

fn goals(out: &mut String, report: &Report) {
    if report.goals.is_empty() {
        return;
    }
    out.push_str("<h2>Goals</h2><table><tr><th>verdict</th><th>goal</th><th>measured</th><th>required</th></tr>");
    for goal in &report.goals {
        let class = if goal.verdict == "MET" {
            "met"
        } else {
            "notmet"
        };
        let show =
            |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{} {}", number(v), goal.unit));
        let _ = write!(
            out,
            "<tr><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            goal.verdict,
            escape(&goal.label),
            show(goal.measured),
            show(goal.required)
        );
    }
    out.push_str("</table>");
}

fn table(out: &mut String, results: &[&Measurement]) {
    out.push_str(
        "<table><tr><th>system</th><th>case</th><th>durability</th><th>records/s</th>\
         <th>MB/s</th><th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th>\
         <th>other</th></tr>",
    );
    for r in results {
        let c = cells(r);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td class=\"other\">{}</td></tr>",
            escape(&r.system),
            escape(&r.label),
            escape(&r.durability),
            c.rate,
            c.mb,
            c.p50,
            c.p99,
            c.p999,
            c.max,
            escape(&c.other)
        );
    }
    out.push_str("</table>");
}

fn name_of(r: &Measurement) -> String {
    format!("{} {} {}", r.system, r.case, r.durability)
}

/// Lines a chart can show and still be read.
const CHART_LINES_MAX: usize = 12;
/// Bars of the advantage chart before it keeps only the throughput ratios.
const CHART_BARS_MAX: usize = 24;

/// The measurements a workload's charts draw: all of them when few, else those of one case
/// that a peer ran too (the first such), named in the titles.
fn chart_subset<'a>(results: &[&'a Measurement]) -> (Vec<&'a Measurement>, String) {
    if results.len() <= CHART_LINES_MAX {
        return (results.to_vec(), String::new());
    }
    let shared = results
        .iter()
        .find(|r| {
            r.system != "strand"
                && results
                    .iter()
                    .any(|s| s.system == "strand" && s.case == r.case)
        })
        .or(results.first());
    let Some(case) = shared.map(|r| r.case.clone()) else {
        return (Vec::new(), String::new());
    };
    let chosen: Vec<&Measurement> = results.iter().copied().filter(|r| r.case == case).collect();
    (
        chosen,
        format!(" (case {case}; every case is in the table)"),
    )
}

fn charts(out: &mut String, workload: &str, all: &[&Measurement], report: &Report) {
    let (results, subset) = chart_subset(all);
    let series: Vec<Line> = results
        .iter()
        .filter(|r| !r.series.is_empty())
        .map(|r| Line {
            name: name_of(r),
            points: r.series.iter().map(|p| (p.t_s, p.records_per_s)).collect(),
        })
        .collect();
    if !series.is_empty() {
        out.push_str(&svg::line_chart(
            &format!("{workload}: throughput over time{subset}"),
            "seconds",
            "records/s",
            XAxis::Linear,
            false,
            &series,
        ));
    }
    let curves: Vec<Line> = results
        .iter()
        .filter_map(|r| {
            let latency = r.latency.as_ref()?;
            Some(Line {
                name: name_of(r),
                points: latency.curve.iter().map(|p| (p.percentile, p.ms)).collect(),
            })
        })
        .collect();
    if !curves.is_empty() {
        out.push_str(&svg::line_chart(
            &format!("{workload}: latency by percentile{subset}"),
            "percentile",
            "ms (log)",
            XAxis::Percentile,
            true,
            &curves,
        ));
    }
    let mut ratios: Vec<_> = report
        .ratios
        .iter()
        .filter(|r| r.workload == workload)
        .collect();
    if ratios.len() > CHART_BARS_MAX {
        ratios.retain(|r| r.figure == "records_per_s");
    }
    let bars: Vec<(String, f64)> = ratios
        .iter()
        .map(|r| {
            (
                format!("{} vs {} {}", r.case, r.peer, r.figure),
                r.advantage,
            )
        })
        .collect();
    if !bars.is_empty() {
        out.push_str(&svg::advantage_bars(
            &format!("{workload}: Strand's advantage over each peer (>1: ahead)"),
            &bars,
        ));
    }
}
