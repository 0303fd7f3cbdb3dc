//! The page around the sections: escaping, tables, headings, and the page's own CSS and script
//! (sortable tables), all inline.

use std::fmt::Write as _;

/// `text` safe inside HTML text and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A sortable table (click a heading to sort by it).
pub(super) fn table(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::from(r#"<table class="sortable"><thead><tr>"#);
    for h in headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A chart: its title, and the drawing (or why there is none).
pub(super) fn figure(title: &str, body: &str) -> String {
    format!(
        r#"<figure class="chart"><figcaption>{}</figcaption>{body}</figure>"#,
        escape(title)
    )
}

/// A message where a chart or table would be.
pub(super) fn note(text: &str) -> String {
    format!(r#"<p class="note">{}</p>"#, escape(text))
}

/// One section of the page.
pub(super) struct Section {
    pub(super) id: String,
    pub(super) title: String,
    pub(super) body: String,
}

/// The whole page: a heading, a table of contents and the sections.
pub(super) fn page(title: &str, subtitle: &str, sections: &[Section]) -> String {
    let mut toc = String::new();
    let mut body = String::new();
    for s in sections {
        let _ = write!(toc, r##"<a href="#{}">{}</a>"##, escape(&s.id), escape(&s.title));
        let _ = write!(
            body,
            r#"<section id="{}"><h2>{}</h2>{}</section>"#,
            escape(&s.id),
            escape(&s.title),
            s.body
        );
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{STYLE}</style></head>
<body><header><h1>{title}</h1><p>{subtitle}</p><nav>{toc}</nav></header><main>{body}</main>
<script>{SCRIPT}</script></body></html>
"#,
        title = escape(title),
        subtitle = escape(subtitle),
    )
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2733;background:#f7f8fa}
header{background:#1d3557;color:#fff;padding:16px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0 0 8px;opacity:.85}nav a{color:#cfe0f5;margin-right:16px;text-decoration:none}
main{padding:8px 28px 40px}section{margin-top:24px}h2{font-size:18px;border-bottom:1px solid #d8dde3;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}
figure.chart{background:#fff;border:1px solid #dde2e8;border-radius:6px;margin:0;padding:10px 12px}
figcaption{font-weight:600;margin-bottom:6px}svg .tick{font-size:11px;fill:#5b6775}svg .layer{font-size:12px;font-weight:600;fill:#1d3557}
svg .node{font-size:11px;fill:#1d2733}table{border-collapse:collapse;background:#fff;margin:6px 0;font-size:13px}
th,td{border:1px solid #dde2e8;padding:3px 8px;text-align:left;vertical-align:top}th{background:#eef2f6;cursor:pointer}
td{max-width:520px;overflow-wrap:anywhere}.note{color:#5b6775;font-style:italic}.failed{color:#b8405e;font-weight:600}
details{margin:2px 0}summary{cursor:pointer}.lineage{font-family:ui-monospace,monospace;font-size:12px;margin:4px 0 8px 18px}
";

const SCRIPT: &str = "
document.querySelectorAll('table.sortable th').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var ascending = th.dataset.ascending !== 'true';
    th.dataset.ascending = String(ascending);
    var value = function (row) { return row.cells[column] ? row.cells[column].textContent : ''; };
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a), y = value(b), nx = parseFloat(x), ny = parseFloat(y);
      var order = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
";
