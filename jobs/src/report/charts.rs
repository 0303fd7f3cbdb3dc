//! The spec's charts (`[[chart]]`), by section: each query run over the lakehouse and drawn as
//! lines, bars or a table. A chart whose query fails says why in its place.

use datafusion::prelude::SessionContext;

use super::html::{figure, note, table};
use super::rows::Rows;
use super::svg::{Series, bar_chart, line_chart};
use crate::spec::{ChartKind, ChartSpec};

/// The most bars drawn; more rows are cut, and the chart says so.
const MAX_BARS: usize = 60;

/// A chart's figure, or its error (`spec:line: chart `t`: …`).
pub(super) async fn chart(ctx: &SessionContext, path: &str, chart: &ChartSpec) -> Result<String, String> {
    let drawn = draw(ctx, chart).await;
    drawn
        .map(|body| figure(&chart.title, &body))
        .map_err(|e| format!("{path}:{}: chart `{}`: {e}", chart.line, chart.title))
}

async fn draw(ctx: &SessionContext, chart: &ChartSpec) -> datafusion::error::Result<String> {
    let rows = Rows::query(ctx, &chart.sql).await?;
    if rows.len() == 0 {
        return Ok(note("The query returned no rows."));
    }
    let series = |rows: &Rows| -> datafusion::error::Result<Vec<Series>> {
        chart
            .y
            .iter()
            .map(|y| {
                Ok(Series {
                    name: y.clone(),
                    values: rows.numbers(y)?,
                })
            })
            .collect()
    };
    Ok(match chart.kind {
        ChartKind::Table => table(&rows.headers(), &rows.text()?),
        ChartKind::Line => line_chart(
            &rows.texts(&chart.x)?,
            &rows.positions(&chart.x)?,
            &series(&rows)?,
        ),
        ChartKind::Bar => {
            let mut labels = rows.texts(&chart.x)?;
            let mut series = series(&rows)?;
            let cut = labels.len() > MAX_BARS;
            labels.truncate(MAX_BARS);
            series.iter_mut().for_each(|s| s.values.truncate(MAX_BARS));
            let mut svg = bar_chart(&labels, &series);
            if cut {
                svg += &note(&format!("The first {MAX_BARS} of {} rows.", rows.len()));
            }
            svg
        }
    })
}
