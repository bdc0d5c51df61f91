//! The growth curve over sizes: a Markdown table and an SVG plot (written by hand: four
//! small line charts need no plotting crate), from the results file of `run`.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::error::Result;
use crate::figures::{Figures, OperatorFigures};

/// The last figures of each size in `jsonl` (one [`Figures`] per line), by N.
pub fn read(jsonl: &str) -> Result<Vec<Figures>> {
    let mut by_n = BTreeMap::new();
    for line in jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let figures: Figures = serde_json::from_str(line)?;
        by_n.insert(figures.n, figures);
    }
    Ok(by_n.into_values().collect())
}

/// The growth table, in Markdown.
pub fn table(sizes: &[Figures]) -> String {
    let mut out = String::from(
        "| N | nodes | floor | operator | ratio | ms per WebApp (floor) | CPU | peak RSS | KiB per WebApp | writes per WebApp (+ Events) | requests per WebApp | resync: requests / writes | restart: s / writes (peak RSS) | spec change p50 / p99 idle | p50 / p99 during resync | load (1, 5, 15 min) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in sizes {
        let o = &f.operator;
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} s | {:.1} s | {:.2} | {:.1} ({:.1}) | {} | {} → {} |",
            f.size(),
            f.nodes,
            f.floor_seconds,
            o.converge_seconds,
            f.ratio(),
            f.ms_per_webapp(),
            floor_ms_per_webapp(f),
            cells(o, f.n),
            f.load_start,
            f.load_end,
        );
    }
    if let (Some(first), Some(last)) = (sizes.first(), sizes.last())
        && sizes.len() > 1
    {
        let _ = writeln!(
            out,
            "\nTime per WebApp from N = {} to N = {}: ×{:.2} (target: flat, within ×1.5); the floor's own: ×{:.2}.",
            first.n,
            last.n,
            last.ms_per_webapp() / first.ms_per_webapp().max(f64::EPSILON),
            floor_ms_per_webapp(last) / floor_ms_per_webapp(first).max(f64::EPSILON)
        );
    }
    out + &contender_table(sizes)
}

/// The cells that ours and the Go contender share, from CPU to the spec-change latency
/// during a resync, without the outer `|`.
fn cells(o: &OperatorFigures, n: usize) -> String {
    format!(
        "{:.1} s | {:.1} MiB | {:.1} | {:.2} (+ {:.2}) | {:.2} | {} / {} | {:.1} s / {}{} | {:.0} / {:.0} ms | {:.0} / {:.0} ms",
        o.cpu_seconds,
        o.peak_rss_mib(),
        o.rss_kib_per_webapp(n),
        o.converge.writes_per_webapp,
        o.converge.event_writes as f64 / n.max(1) as f64,
        o.converge.requests_per_webapp,
        o.resync.requests,
        o.resync.writes,
        o.restart.seconds,
        o.restart.counts.writes,
        o.restart.peak_rss_mib().map(|mib| format!(" ({mib:.1} MiB)")).unwrap_or_default(),
        o.latency_idle.p50_ms,
        o.latency_idle.p99_ms,
        o.latency_resync.p50_ms,
        o.latency_resync.p99_ms,
    )
}

/// The Go contender's growth table, in Markdown, for the sizes that ran it (none: empty).
fn contender_table(sizes: &[Figures]) -> String {
    let mut rows = String::new();
    for f in sizes {
        let Some(contender) = &f.contender else { continue };
        let o = &contender.figures;
        let args = if contender.args.is_empty() { "defaults".to_owned() } else { contender.args.join(" ") };
        let _ = writeln!(
            rows,
            "| {} | {:.1} s | {:.2} | {:.1} | {} | {:.2} | {args} |",
            f.size(),
            o.converge_seconds,
            o.ratio(f.floor_seconds),
            o.ms_per_webapp(f.n),
            cells(o, f.n),
            f.operator.converge_seconds / o.converge_seconds.max(f64::EPSILON),
        );
    }
    if rows.is_empty() {
        return rows;
    }
    "\nThe Go contender (`bench/contender`: controller-runtime, written the way the kubebuilder book teaches), \
     in the same runs, against the same floor:\n\n\
     | N | Go contender | ratio | ms per WebApp | CPU | peak RSS | KiB per WebApp | writes per WebApp (+ Events) | requests per WebApp | resync: requests / writes | restart: s / writes (peak RSS) | spec change p50 / p99 idle | p50 / p99 during resync | ours / contender (time) | contender args |\n\
     |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        .to_owned()
        + &rows
}

/// The floor's time per WebApp: how the control plane alone grows with N.
fn floor_ms_per_webapp(f: &Figures) -> f64 {
    f.floor_seconds * 1000.0 / f.n.max(1) as f64
}

/// One figure of an operator, as a chart plots it.
type Figure = fn(&OperatorFigures) -> f64;

/// One line of a chart.
struct Series {
    label: &'static str,
    color: &'static str,
    points: Vec<(f64, f64)>,
}

/// One chart: a title, a unit and its lines.
struct Chart {
    title: &'static str,
    series: Vec<Series>,
}

const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 260.0;
const MARGIN_L: f64 = 56.0;
const MARGIN_R: f64 = 16.0;
const MARGIN_T: f64 = 30.0;
const MARGIN_B: f64 = 40.0;

/// The plot: convergence time (operator and floor), CPU, peak RSS, and requests and
/// writes per WebApp, each against N on a log axis.
pub fn svg(sizes: &[Figures]) -> String {
    let points = |f: fn(&Figures) -> f64| sizes.iter().map(|s| (s.n as f64, f(s))).collect::<Vec<_>>();
    let mut charts = [
        Chart {
            title: "Time to all Running / Available (s)",
            series: vec![
                Series { label: "operator", color: "#d62728", points: points(|f| f.operator.converge_seconds) },
                Series { label: "floor (no operator)", color: "#1f77b4", points: points(|f| f.floor_seconds) },
            ],
        },
        Chart {
            title: "Operator CPU to converge (s)",
            series: vec![Series { label: "CPU seconds", color: "#d62728", points: points(|f| f.operator.cpu_seconds) }],
        },
        Chart {
            title: "Operator peak RSS (MiB)",
            series: vec![
                Series { label: "peak RSS", color: "#d62728", points: points(Figures::peak_rss_mib) },
                Series { label: "target at N = 1000", color: "#999999", points: points(|_| 40.0) },
            ],
        },
        Chart {
            title: "API requests and writes per WebApp to converge",
            series: vec![
                Series {
                    label: "requests",
                    color: "#1f77b4",
                    points: points(|f| f.operator.converge.requests_per_webapp),
                },
                Series {
                    label: "writes (Events apart)",
                    color: "#d62728",
                    points: points(|f| f.operator.converge.writes_per_webapp),
                },
                Series { label: "target: writes ≤ 5", color: "#999999", points: points(|_| 5.0) },
            ],
        },
    ];
    // The Go contender's lines, in green, where it was run (old results: nowhere).
    let theirs = |f: Figure| {
        sizes.iter().filter_map(|s| Some((s.n as f64, f(&s.contender.as_ref()?.figures)))).collect::<Vec<_>>()
    };
    let contender: [(&'static str, Figure); 4] = [
        ("Go contender", |o| o.converge_seconds),
        ("Go contender", |o| o.cpu_seconds),
        ("Go contender", OperatorFigures::peak_rss_mib),
        ("Go contender: writes", |o| o.converge.writes_per_webapp),
    ];
    for (chart, (label, figure)) in charts.iter_mut().zip(contender) {
        let points = theirs(figure);
        if !points.is_empty() {
            chart.series.push(Series { label, color: "#2ca02c", points });
        }
    }
    let (width, height) = (2.0 * PANEL_W, 2.0 * PANEL_H + 24.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">WebApp operator growth, N WebApps (log axis) — made by webapp-bench</text>\n",
        width / 2.0
    );
    for (i, chart) in charts.iter().enumerate() {
        let (x, y) = ((i % 2) as f64 * PANEL_W, 24.0 + (i / 2) as f64 * PANEL_H);
        panel(&mut out, chart, x, y);
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, chart: &Chart, x0: f64, y0: f64) {
    let all: Vec<(f64, f64)> = chart.series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let (n_min, n_max) = all.iter().fold((f64::MAX, f64::MIN), |(lo, hi), (n, _)| (lo.min(*n), hi.max(*n)));
    let (lx_min, lx_max) =
        if n_min < n_max { (n_min.log10(), n_max.log10()) } else { (n_min.log10() - 0.5, n_min.log10() + 0.5) };
    let y_max = nice(all.iter().map(|(_, v)| *v).fold(0.0, f64::max));
    let (left, right, top, bottom) = (x0 + MARGIN_L, x0 + PANEL_W - MARGIN_R, y0 + MARGIN_T, y0 + PANEL_H - MARGIN_B);
    let sx = |n: f64| left + (n.log10() - lx_min) / (lx_max - lx_min) * (right - left);
    let sy = |v: f64| bottom - v / y_max * (bottom - top);
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{}</text>",
        (left + right) / 2.0,
        y0 + 18.0,
        chart.title
    );
    let _ = writeln!(
        out,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>",
        right - left,
        bottom - top
    );
    for k in 0..=4 {
        let v = y_max * f64::from(k) / 4.0;
        let y = sy(v);
        let _ = writeln!(out, "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>");
        let _ =
            writeln!(out, "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", left - 4.0, y + 4.0, short(v));
    }
    let mut ticks: Vec<f64> = all.iter().map(|(n, _)| *n).collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    for n in ticks {
        let x = sx(n);
        let _ = writeln!(out, "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#eee\"/>");
        let _ = writeln!(out, "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{n}</text>", bottom + 14.0);
    }
    let _ =
        writeln!(out, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">N</text>", (left + right) / 2.0, bottom + 30.0);
    for (k, series) in chart.series.iter().enumerate() {
        let path: Vec<String> = series.points.iter().map(|(n, v)| format!("{:.1},{:.1}", sx(*n), sy(*v))).collect();
        let dash = if series.color == "#999999" { " stroke-dasharray=\"4 3\"" } else { "" };
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash}/>",
            path.join(" "),
            series.color
        );
        for (n, v) in &series.points {
            if dash.is_empty() {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>",
                    sx(*n),
                    sy(*v),
                    series.color
                );
            }
        }
        let ly = top + 14.0 + 14.0 * k as f64;
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"{dash}/>",
            left + 8.0,
            ly - 4.0,
            left + 24.0,
            ly - 4.0,
            series.color
        );
        let _ = writeln!(out, "<text x=\"{}\" y=\"{ly}\">{}</text>", left + 28.0, series.label);
    }
}

/// The smallest 1, 2 or 5 times a power of ten at or above `v` (the chart's top).
fn nice(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|top| *top >= v).unwrap_or(10.0 * magnitude)
}

fn short(v: f64) -> String {
    if v >= 10.0 || v == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::Contender;

    #[test]
    fn the_last_run_of_each_size_is_kept_in_order_of_n() {
        let line = |n: usize, floor: f64| {
            serde_json::to_string(&Figures { n, floor_seconds: floor, ..Figures::default() }).unwrap()
        };
        let jsonl = [line(300, 1.0), line(100, 2.0), line(300, 3.0)].join("\n");
        let sizes = read(&jsonl).unwrap();
        assert_eq!(sizes.iter().map(|f| (f.n, f.floor_seconds)).collect::<Vec<_>>(), [(100, 2.0), (300, 3.0)]);
    }

    #[test]
    fn the_plot_is_one_svg_with_a_point_per_size() {
        let sizes: Vec<Figures> = [100, 1000].into_iter().map(|n| Figures { n, ..Figures::default() }).collect();
        let svg = svg(&sizes);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<circle").count(), 2 * 6);
        assert!(table(&sizes).contains("| 1000 |"));
    }

    #[test]
    fn the_table_says_how_the_floor_itself_grows() {
        let size = |n: usize, floor: f64, operator: f64| {
            let mut figures = Figures { n, floor_seconds: floor, ..Figures::default() };
            figures.operator.converge_seconds = operator;
            figures
        };
        let table = table(&[size(100, 5.0, 6.0), size(3000, 300.0, 360.0)]);
        assert!(table.contains("| 60.0 (50.0) |") && table.contains("| 120.0 (100.0) |"), "{table}");
        assert!(
            table.contains("N = 100 to N = 3000: ×2.00 (target: flat, within ×1.5); the floor's own: ×2.00."),
            "{table}"
        );
    }

    #[test]
    fn the_contender_gets_its_own_table_and_lines_only_when_it_ran() {
        let mut sizes: Vec<Figures> =
            [100, 300].into_iter().map(|n| Figures { n, floor_seconds: 10.0, ..Figures::default() }).collect();
        sizes[1].operator.converge_seconds = 12.0;
        let without = table(&sizes);
        assert!(!without.contains("Go contender"));
        let theirs = OperatorFigures { converge_seconds: 24.0, ..OperatorFigures::default() };
        sizes[1].contender = Some(Contender { args: vec![], figures: theirs });
        let with = table(&sizes);
        assert!(with.starts_with(&without), "ours' table unchanged");
        assert!(with.contains("| 300 | 24.0 s | 2.40 | 80.0 | "), "{with}");
        assert!(with.contains("| 0.50 | defaults |"), "{with}");
        assert!(!with.contains("| 100 | 0.0 s"), "a size without the contender has no row: {with}");
        assert_eq!(svg(&sizes).matches("<circle").count(), 2 * 6 + 4, "one green point per chart");
    }

    #[test]
    fn chart_tops_are_round() {
        assert_eq!((nice(0.0), nice(3.2), nice(40.0), nice(41.0), nice(730.0)), (1.0, 5.0, 50.0, 50.0, 1000.0));
    }
}
