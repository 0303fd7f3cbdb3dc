//! Plan codecs for Medallion's nodes, composed with Ballista's.
//!
//! Our payloads are JSON behind a magic prefix, so they never collide with Ballista's
//! protobuf payloads and a decode can tell at once whose bytes it holds; shipped key rows are
//! an Arrow IPC stream behind a prefix of their own.

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{
    ComposedPhysicalExtensionCodec, PhysicalExtensionCodec, PhysicalProtoConverterExtension,
};
use serde::{Deserialize, Serialize};

use crate::delta::{DeltaFile, DeltaScanTable, DeltaWriteExec, DeltaWriteNode, WriteSpec};
use crate::kafka::{KafkaScanExec, KafkaScanOptions, KafkaTable, offsets::OffsetRange};
use crate::landing::{LandingOptions, LandingScanExec, LandingTable};
use crate::ml::als::{AlsBlockExec, AlsBlockTable, AlsTask};
use crate::pipeline::ShippedKeys;

const MAGIC: &[u8] = b"medallion.v1:";
const KEYS_MAGIC: &[u8] = b"medallion.keys.v1:";

#[derive(Serialize, Deserialize)]
enum Payload {
    LandingTable {
        options: LandingOptions,
        file_groups: Vec<Vec<String>>,
    },
    DeltaScan {
        url: String,
        partition_columns: Vec<String>,
        files: Vec<DeltaFile>,
    },
    DeltaWriteNode(WriteSpec),
    LandingExec(LandingOptions),
    DeltaWriteExec(WriteSpec),
    AlsTable {
        task: AlsTask,
        blocks: Vec<Vec<String>>,
    },
    AlsExec(AlsTask),
    KafkaTable {
        options: KafkaScanOptions,
        range_groups: Vec<Vec<OffsetRange>>,
    },
    KafkaExec(KafkaScanOptions),
}

fn encode(payload: &Payload, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(MAGIC);
    serde_json::to_writer(buf, payload).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn decode(buf: &[u8]) -> Option<Result<Payload>> {
    let body = buf.strip_prefix(MAGIC)?;
    Some(serde_json::from_slice(body).map_err(|e| DataFusionError::External(Box::new(e))))
}

/// Ballista's logical codec plus Medallion's table providers and write node.
#[derive(Debug, Default)]
pub struct MedallionLogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for MedallionLogicalCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> Result<Extension> {
        match decode(buf) {
            Some(Ok(Payload::DeltaWriteNode(spec))) => {
                let input = inputs
                    .first()
                    .cloned()
                    .ok_or_else(|| DataFusionError::Internal("DeltaWrite without input".into()))?;
                Ok(Extension {
                    node: Arc::new(DeltaWriteNode::try_new(input, spec)?),
                })
            }
            Some(Ok(_)) => Err(DataFusionError::Internal("not a logical node payload".into())),
            Some(Err(e)) => Err(e),
            None => self.ballista.try_decode(buf, inputs, ctx),
        }
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        match node.node.as_any().downcast_ref::<DeltaWriteNode>() {
            Some(w) => encode(&Payload::DeltaWriteNode(w.spec.clone()), buf),
            None => self.ballista.try_encode(node, buf),
        }
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some(ipc) = buf.strip_prefix(KEYS_MAGIC) {
            return Ok(Arc::new(ShippedKeys::from_ipc(ipc)?));
        }
        match decode(buf) {
            Some(Ok(Payload::LandingTable { options, file_groups })) => {
                Ok(Arc::new(LandingTable { options, file_groups }))
            }
            Some(Ok(Payload::DeltaScan {
                url,
                partition_columns,
                files,
            })) => Ok(Arc::new(DeltaScanTable {
                url,
                schema,
                partition_columns,
                files,
            })),
            Some(Ok(Payload::AlsTable { task, blocks })) => Ok(Arc::new(AlsBlockTable { task, blocks })),
            Some(Ok(Payload::KafkaTable {
                options,
                range_groups,
            })) => Ok(Arc::new(KafkaTable {
                options,
                range_groups,
            })),
            Some(Ok(_)) => Err(DataFusionError::Internal("not a table provider payload".into())),
            Some(Err(e)) => Err(e),
            None => self
                .ballista
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(landing) = node.downcast_ref::<LandingTable>() {
            let payload = Payload::LandingTable {
                options: landing.options.clone(),
                file_groups: landing.file_groups.clone(),
            };
            return encode(&payload, buf);
        }
        if let Some(delta) = node.downcast_ref::<DeltaScanTable>() {
            let payload = Payload::DeltaScan {
                url: delta.url.clone(),
                partition_columns: delta.partition_columns.clone(),
                files: delta.files.clone(),
            };
            return encode(&payload, buf);
        }
        if let Some(als) = node.downcast_ref::<AlsBlockTable>() {
            let payload = Payload::AlsTable {
                task: als.task.clone(),
                blocks: als.blocks.clone(),
            };
            return encode(&payload, buf);
        }
        if let Some(keys) = node.downcast_ref::<ShippedKeys>() {
            buf.extend_from_slice(KEYS_MAGIC);
            buf.extend_from_slice(&keys.to_ipc()?);
            return Ok(());
        }
        if let Some(kafka) = node.downcast_ref::<KafkaTable>() {
            let payload = Payload::KafkaTable {
                options: kafka.options.clone(),
                range_groups: kafka.range_groups.clone(),
            };
            return encode(&payload, buf);
        }
        self.ballista.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(&self, buf: &[u8], ctx: &TaskContext) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(&self, buf: &mut Vec<u8>, node: Arc<dyn FileFormatFactory>) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }
}

/// Medallion's physical nodes: the landing and Kafka scans, the Delta writer and the ALS block step.
#[derive(Debug, Default)]
pub struct MedallionPhysicalCodec;

impl PhysicalExtensionCodec for MedallionPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match decode(buf) {
            Some(Ok(Payload::LandingExec(options))) => {
                let input = inputs
                    .first()
                    .cloned()
                    .ok_or_else(|| DataFusionError::Internal("LandingScanExec without input".into()))?;
                Ok(Arc::new(LandingScanExec::new(input, options)))
            }
            Some(Ok(Payload::DeltaWriteExec(spec))) => {
                let input = inputs
                    .first()
                    .cloned()
                    .ok_or_else(|| DataFusionError::Internal("DeltaWriteExec without input".into()))?;
                Ok(Arc::new(DeltaWriteExec::new(input, spec)))
            }
            Some(Ok(Payload::KafkaExec(options))) => {
                let input = inputs
                    .first()
                    .cloned()
                    .ok_or_else(|| DataFusionError::Internal("KafkaScanExec without input".into()))?;
                Ok(Arc::new(KafkaScanExec::new(input, options)))
            }
            Some(Ok(Payload::AlsExec(task))) => {
                let input = inputs
                    .first()
                    .cloned()
                    .ok_or_else(|| DataFusionError::Internal("AlsBlockExec without input".into()))?;
                Ok(Arc::new(AlsBlockExec::new(input, task)))
            }
            Some(Ok(_)) => Err(DataFusionError::Internal("not a physical node payload".into())),
            Some(Err(e)) => Err(e),
            None => Err(DataFusionError::Internal("not a Medallion plan node".into())),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(scan) = node.downcast_ref::<LandingScanExec>() {
            return encode(&Payload::LandingExec(scan.options().clone()), buf);
        }
        if let Some(write) = node.downcast_ref::<DeltaWriteExec>() {
            return encode(&Payload::DeltaWriteExec(write.spec().clone()), buf);
        }
        if let Some(als) = node.downcast_ref::<AlsBlockExec>() {
            return encode(&Payload::AlsExec(als.task().clone()), buf);
        }
        if let Some(kafka) = node.downcast_ref::<KafkaScanExec>() {
            return encode(&Payload::KafkaExec(kafka.options().clone()), buf);
        }
        Err(DataFusionError::Internal(format!(
            "{} is not a Medallion plan node",
            node.name()
        )))
    }
}

/// The logical codec every Medallion process uses.
pub fn logical_codec() -> Arc<dyn LogicalExtensionCodec> {
    Arc::new(MedallionLogicalCodec::default())
}

/// Ballista's physical codec first (its position is part of the wire format), then ours.
pub fn physical_codec() -> Arc<dyn PhysicalExtensionCodec> {
    Arc::new(ComposedPhysicalExtensionCodec::new(vec![
        Arc::new(BallistaPhysicalExtensionCodec::default()),
        Arc::new(MedallionPhysicalCodec),
    ]))
}
