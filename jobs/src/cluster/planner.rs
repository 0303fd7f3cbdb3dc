//! Physical planning for Medallion's logical nodes, used by the scheduler.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

use crate::delta::{DeltaWriteExec, DeltaWriteNode};

/// DataFusion's planner plus the Delta write node.
#[derive(Debug, Default)]
pub struct MedallionQueryPlanner;

#[async_trait]
impl QueryPlanner for MedallionQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(DeltaWritePlanner)])
            .create_physical_plan(logical_plan, session)
            .await
    }
}

struct DeltaWritePlanner;

#[async_trait]
impl ExtensionPlanner for DeltaWritePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(write) = node.as_any().downcast_ref::<DeltaWriteNode>() else {
            return Ok(None);
        };
        let input = Arc::clone(&physical_inputs[0]);
        Ok(Some(Arc::new(DeltaWriteExec::new(input, write.spec.clone()))))
    }
}
