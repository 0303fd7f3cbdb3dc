//! The logical side of a Kafka scan: a table provider the plan codec can ship.
//!
//! As for landing files ([`LandingTable`](crate::landing::LandingTable)), the work list — here
//! offset ranges — is an in-memory source with one partition per scan task, so Ballista gives
//! each task only its own ranges; the read runs above it ([`KafkaScanExec`]).

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{Int32Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::exec::KafkaScanExec;
use super::offsets::OffsetRange;
use super::records::KafkaScanOptions;

pub(super) static RANGES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("partition", DataType::Int32, false),
        Field::new("start", DataType::Int64, false),
        Field::new("end", DataType::Int64, false),
    ]))
});

/// A topic's records in the given offset ranges, as a table.
#[derive(Debug, Clone)]
pub struct KafkaTable {
    /// Where and how to read.
    pub options: KafkaScanOptions,
    /// Offset ranges, one group per scan task.
    pub range_groups: Vec<Vec<OffsetRange>>,
}

impl KafkaTable {
    fn range_list(&self) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = self
            .range_groups
            .iter()
            .map(|group| {
                let columns: Vec<Arc<dyn datafusion::arrow::array::Array>> = vec![
                    Arc::new(Int32Array::from_iter_values(group.iter().map(|r| r.partition))),
                    Arc::new(Int64Array::from_iter_values(group.iter().map(|r| r.start))),
                    Arc::new(Int64Array::from_iter_values(group.iter().map(|r| r.end))),
                ];
                RecordBatch::try_new(Arc::clone(&RANGES), columns).map(|b| vec![b])
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let source = MemorySourceConfig::try_new(&partitions, Arc::clone(&RANGES), None)?;
        Ok(DataSourceExec::from_data_source(source))
    }
}

#[async_trait]
impl TableProvider for KafkaTable {
    fn schema(&self) -> SchemaRef {
        self.options.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let scan: Arc<dyn ExecutionPlan> =
            Arc::new(KafkaScanExec::new(self.range_list()?, self.options.clone()));
        match projection {
            None => Ok(scan),
            Some(indices) => crate::delta::project(scan, indices),
        }
    }
}

/// Spreads ranges over at most `tasks` groups, largest first, so tasks get similar record counts.
pub fn group_ranges(ranges: &[OffsetRange], tasks: usize) -> Vec<Vec<OffsetRange>> {
    let busy: Vec<&OffsetRange> = ranges.iter().filter(|r| !r.is_empty()).collect();
    let groups = tasks.clamp(1, busy.len().max(1));
    let mut by_size = busy;
    by_size.sort_by_key(|r| (std::cmp::Reverse(r.len()), r.partition));
    let mut grouped = vec![(0i64, Vec::new()); groups];
    for range in by_size {
        let lightest = grouped
            .iter_mut()
            .min_by_key(|(n, _)| *n)
            .expect("at least one group");
        lightest.0 += range.len();
        lightest.1.push(*range);
    }
    grouped.into_iter().map(|(_, g)| g).collect()
}
