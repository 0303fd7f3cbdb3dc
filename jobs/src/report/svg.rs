//! Charts drawn as inline SVG: lines over an axis, grouped bars, a run's timeline and the DAG.
//! Every drawn datum is an element with `data-mark` and a `<title>` (the browser's tooltip).

use std::fmt::Write as _;

use super::html::escape;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 48.0;
/// Lines of at most this many points get a dot per point.
const MAX_DOTS: usize = 40;
const PALETTE: [&str; 6] = ["#2f6fba", "#e07b39", "#3a9e5a", "#b8405e", "#7d5ba6", "#8c8c8c"];

/// One drawn column: its name and a value per row (`None`: NULL, not drawn).
pub(super) struct Series {
    pub(super) name: String,
    pub(super) values: Vec<Option<f64>>,
}

/// A number as a short label: `1.2M`, `34.5k`, `0.12`.
pub(super) fn short(v: f64) -> String {
    let a = v.abs();
    let text = if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    };
    text.replace(".0M", "M").replace(".0k", "k")
}

/// The value range drawn: from 0 (or below, for negative values) to the largest value.
fn range(series: &[Series]) -> (f64, f64) {
    let values = series.iter().flat_map(|s| s.values.iter().flatten().copied());
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if (hi - lo).abs() < f64::EPSILON {
        (lo, lo + 1.0)
    } else {
        (lo, hi)
    }
}

fn open(out: &mut String, height: f64) {
    let _ = write!(
        out,
        r#"<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">"#
    );
}

/// Horizontal grid lines with their values, for `lo..hi` mapped by `y`.
fn value_axis(out: &mut String, lo: f64, hi: f64, y: impl Fn(f64) -> f64) {
    for i in 0..=4 {
        let v = lo + (hi - lo) * f64::from(i) / 4.0;
        let at = y(v);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{at:.1}" y2="{at:.1}" stroke="#e3e3e3"/><text x="{}" y="{:.1}" class="tick" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            at + 4.0,
            short(v)
        );
    }
}

fn legend(out: &mut String, series: &[Series]) {
    for (i, s) in series.iter().enumerate() {
        let x = LEFT + 160.0 * i as f64;
        let _ = write!(
            out,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" class="tick">{}</text>"#,
            HEIGHT - 14.0,
            PALETTE[i % PALETTE.len()],
            x + 14.0,
            HEIGHT - 5.0,
            escape(&s.name)
        );
    }
}

/// Lines of `series` over `xs` (numbers: days, amounts), labelled by `labels`.
pub(super) fn line_chart(labels: &[String], xs: &[f64], series: &[Series]) -> String {
    let mut out = String::new();
    open(&mut out, HEIGHT);
    let (lo, hi) = range(series);
    let (x0, x1) = xs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let span = if x1 > x0 { x1 - x0 } else { 1.0 };
    let px = |x: f64| LEFT + (x - x0) / span * (WIDTH - LEFT - RIGHT);
    let py = |v: f64| TOP + (hi - v) / (hi - lo) * (HEIGHT - TOP - BOTTOM);
    value_axis(&mut out, lo, hi, py);
    let ticks = labels.len().clamp(1, 6);
    for t in 0..ticks {
        let i = if ticks == 1 {
            0
        } else {
            t * (labels.len() - 1) / (ticks - 1)
        };
        // The outer labels stay inside the drawing; a timestamp is cut to the minute.
        let anchor = match t {
            0 => "start",
            t if t == ticks - 1 => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" class="tick" text-anchor="{anchor}">{}</text>"#,
            px(xs[i]),
            HEIGHT - BOTTOM + 16.0,
            escape(&labels[i].chars().take(16).collect::<String>())
        );
    }
    for (n, s) in series.iter().enumerate() {
        let mut d = String::new();
        for (i, v) in s.values.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(
                    d,
                    "{}{:.1},{:.1}",
                    if d.is_empty() { "M" } else { " L" },
                    px(xs[i]),
                    py(*v)
                );
            }
        }
        if d.is_empty() {
            continue;
        }
        let color = PALETTE[n % PALETTE.len()];
        let _ = write!(
            out,
            r#"<path data-mark="line" d="{d}" fill="none" stroke="{color}" stroke-width="2"><title>{}</title></path>"#,
            escape(&s.name)
        );
        // Few points (training runs, say) are drawn as dots too: one alone is no line.
        if s.values.len() <= MAX_DOTS {
            for (i, v) in s.values.iter().enumerate() {
                let Some(v) = v else { continue };
                let _ = write!(
                    out,
                    r#"<circle data-mark="point" cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{} {}: {}</title></circle>"#,
                    px(xs[i]),
                    py(*v),
                    escape(&s.name),
                    escape(&labels[i]),
                    short(*v)
                );
            }
        }
    }
    legend(&mut out, series);
    out.push_str("</svg>");
    out
}

/// Grouped bars: for each label, one bar per series.
pub(super) fn bar_chart(labels: &[String], series: &[Series]) -> String {
    let mut out = String::new();
    open(&mut out, HEIGHT);
    let (lo, hi) = range(series);
    let py = |v: f64| TOP + (hi - v) / (hi - lo) * (HEIGHT - TOP - BOTTOM);
    value_axis(&mut out, lo, hi, py);
    let slot = (WIDTH - LEFT - RIGHT) / labels.len().max(1) as f64;
    let bar = (slot * 0.8) / series.len().max(1) as f64;
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + slot * i as f64 + slot * 0.1;
        for (n, s) in series.iter().enumerate() {
            let Some(v) = s.values.get(i).copied().flatten() else {
                continue;
            };
            let (top, bottom) = (py(v.max(0.0)), py(v.min(0.0)));
            let _ = write!(
                out,
                r#"<rect data-mark="bar" x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {} {}</title></rect>"#,
                x + bar * n as f64,
                bar.max(1.0) - 1.0,
                (bottom - top).max(0.5),
                PALETTE[n % PALETTE.len()],
                escape(label),
                escape(&s.name),
                short(v)
            );
        }
        if labels.len() <= 24 {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{}" class="tick" text-anchor="middle">{}</text>"#,
                x + slot * 0.4,
                HEIGHT - BOTTOM + 16.0,
                escape(&truncate(label, (slot / 6.5) as usize))
            );
        }
    }
    legend(&mut out, series);
    out.push_str("</svg>");
    out
}

/// One bar of a run's timeline.
pub(super) struct Span {
    pub(super) label: String,
    /// Seconds from the run's start.
    pub(super) start: f64,
    pub(super) end: f64,
    /// `succeeded`, `failed`, `retried`, …
    pub(super) status: String,
}

/// A run's tables as bars along the run's seconds, one row each.
pub(super) fn timeline(spans: &[Span]) -> String {
    let row = 18.0;
    let height = TOP + row * spans.len() as f64 + 28.0;
    let label_width = 190.0;
    let end = spans.iter().fold(0.0f64, |e, s| e.max(s.end)).max(0.001);
    let px = |t: f64| label_width + t / end * (WIDTH - label_width - RIGHT);
    let mut out = String::new();
    open(&mut out, height);
    for i in 0..=4 {
        let t = end * f64::from(i) / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#e3e3e3"/><text x="{x:.1}" y="{:.1}" class="tick" text-anchor="middle">{:.1}s</text>"##,
            height - 24.0,
            height - 10.0,
            t,
            x = px(t)
        );
    }
    for (i, s) in spans.iter().enumerate() {
        let y = TOP + row * i as f64;
        let color = match s.status.as_str() {
            "failed" | "skipped" => PALETTE[3],
            "retried" => PALETTE[1],
            _ => PALETTE[0],
        };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text><rect data-mark="span" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{}: {} in {:.2}s</title></rect>"#,
            label_width - 6.0,
            y + 12.0,
            escape(&truncate(&s.label, 30)),
            px(s.start),
            y + 2.0,
            (px(s.end) - px(s.start)).max(1.5),
            row - 4.0,
            escape(&s.label),
            escape(&s.status),
            s.end - s.start
        );
    }
    out.push_str("</svg>");
    out
}

/// The DAG: one column of boxes per layer, an edge from each table to each table reading it.
pub(super) fn dag(layers: &[(String, Vec<String>)], edges: &[(String, String)]) -> String {
    let (box_w, box_h, gap) = (150.0, 22.0, 8.0);
    let column = (WIDTH - box_w) / (layers.len().max(2) - 1) as f64;
    let tallest = layers.iter().map(|(_, t)| t.len()).max().unwrap_or(0);
    let height = 30.0 + (box_h + gap) * tallest as f64;
    let mut at = std::collections::HashMap::new();
    for (c, (_, tables)) in layers.iter().enumerate() {
        for (r, table) in tables.iter().enumerate() {
            at.insert(
                table.as_str(),
                (column * c as f64, 26.0 + (box_h + gap) * r as f64),
            );
        }
    }
    let mut out = String::new();
    open(&mut out, height);
    for (c, (layer, _)) in layers.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="14" class="layer">{}</text>"#,
            column * c as f64 + 4.0,
            escape(layer)
        );
    }
    for (from, to) in edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(from.as_str()), at.get(to.as_str())) else {
            continue;
        };
        let (sx, sy, ex, ey) = (x1 + box_w, y1 + box_h / 2.0, x2, y2 + box_h / 2.0);
        let mid = (sx + ex) / 2.0;
        let _ = write!(
            out,
            r##"<path data-mark="edge" d="M{sx:.1},{sy:.1} C{mid:.1},{sy:.1} {mid:.1},{ey:.1} {ex:.1},{ey:.1}" fill="none" stroke="#9fb3c8"><title>{} → {}</title></path>"##,
            escape(from),
            escape(to)
        );
    }
    for (table, (x, y)) in &at {
        let _ = write!(
            out,
            r##"<g data-mark="table"><rect x="{x:.1}" y="{y:.1}" width="{box_w}" height="{box_h}" rx="4" fill="#f4f7fb" stroke="#2f6fba"/><text x="{:.1}" y="{:.1}" class="node">{}</text></g>"##,
            x + 6.0,
            y + 15.0,
            escape(&truncate(table, 22))
        );
    }
    out.push_str("</svg>");
    out
}

fn truncate(text: &str, chars: usize) -> String {
    match text.chars().count() > chars.max(2) {
        true => text.chars().take(chars.max(2) - 1).chain(['…']).collect(),
        false => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Vec<Series> {
        vec![Series {
            name: "revenue".into(),
            values: values.iter().copied().map(Some).collect(),
        }]
    }

    #[test]
    fn bars_are_as_high_as_their_values() {
        let labels = vec!["a".to_string(), "b".into()];
        let svg = bar_chart(&labels, &series(&[50.0, 100.0]));
        assert_eq!(svg.matches(r#"data-mark="bar""#).count(), 2);
        // The plot is 216 px high: 100 fills it, 50 half of it.
        assert!(
            svg.contains(r#"y="124.0" width="#) && svg.contains(r#"height="108.0""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"y="16.0" width="#) && svg.contains(r#"height="216.0""#),
            "{svg}"
        );
    }

    #[test]
    fn a_line_goes_through_every_value_and_skips_nulls() {
        let labels: Vec<String> = ["d1", "d2", "d3"].map(String::from).to_vec();
        let data = vec![Series {
            name: "orders".into(),
            values: vec![Some(0.0), None, Some(10.0)],
        }];
        let svg = line_chart(&labels, &[0.0, 1.0, 2.0], &data);
        assert!(svg.contains(r#"d="M64.0,232.0 L744.0,16.0""#), "{svg}");
    }

    #[test]
    fn labels_and_names_are_escaped() {
        let labels = vec!["<b>&".to_string()];
        let svg = bar_chart(&labels, &series(&[1.0]));
        assert!(svg.contains("&lt;b&gt;&amp;") && !svg.contains("<b>"), "{svg}");
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short(1_250_000.0), "1.2M");
        assert_eq!(short(34_500.0), "34.5k");
        assert_eq!(short(0.125), "0.12");
        assert_eq!(short(12.0), "12");
    }
}
