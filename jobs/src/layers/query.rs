//! Silver, gold and ml tables: the spec's SQL over the tables registered in the session.

use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::spec::{Pipeline, TableSpec};

/// Plans a table's SQL; errors name the table and its line in the spec.
pub async fn query_frame(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    table: &TableSpec,
    sql: &str,
) -> Result<DataFrame> {
    ctx.sql(sql).await.map_err(|e| Error::InvalidSpec {
        path: pipeline.path.clone(),
        line: table.line,
        table: table.name.clone(),
        message: format!("SQL does not plan: {e}"),
    })
}
