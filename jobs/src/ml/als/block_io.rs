//! Reading a block's ratings and a side's factors back from Parquet on any object store.
//!
//! Block files hold `src, dst, rating, src_id, test` by position (the staging write names the
//! columns after the side they come from, so positions are what both sides share).

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use url::Url;

use super::init::initial_factor;
use super::task::{FileSet, IdType, Side};

/// Every row of the files in `set`, file by file in the order given.
pub(crate) async fn read_files(set: &FileSet) -> Result<Vec<RecordBatch>> {
    let url = Url::parse(&set.root).map_err(|e| exec_err(format!("{}: {e}", set.root)))?;
    let store = crate::storage::table_store(&url).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let mut batches = Vec::new();
    for path in &set.paths {
        let unreadable =
            |e: &dyn std::fmt::Display| exec_err(format!("cannot read {}/{path}: {e}", set.root));
        // Whole files: a block's or a side's files are read once and entirely.
        let bytes = store
            .get(&Path::from(path.as_str()))
            .await
            .map_err(|e| unreadable(&e))?
            .bytes()
            .await
            .map_err(|e| unreadable(&e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| unreadable(&e))?;
        for batch in reader {
            batches.push(batch?);
        }
    }
    Ok(batches)
}

/// One rating of a block: the row being solved, the fixed column, the value, whether it is
/// held out, and where its row's id is in [`BlockRatings::ids`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Entry {
    pub(crate) src: u32,
    pub(crate) dst: u32,
    pub(crate) value: f64,
    pub(crate) test: bool,
    pub(crate) row: u32,
}

/// A block's ratings sorted by (src, dst, value), so every sum runs in one order whichever
/// task, file order or executor produced them.
pub(crate) struct BlockRatings {
    pub(crate) entries: Vec<Entry>,
    pub(crate) ids: ArrayRef,
}

/// Parses block files' batches.
pub(crate) fn block_ratings(batches: &[RecordBatch], id_type: IdType) -> Result<BlockRatings> {
    let mut entries = Vec::new();
    let mut ids = Vec::with_capacity(batches.len());
    for batch in batches {
        if batch.num_columns() < 5 {
            return Err(exec_err(format!(
                "an ALS block file has {} columns, expected src, dst, rating, id, test",
                batch.num_columns()
            )));
        }
        let src = cast(batch.column(0), &DataType::Int32)?;
        let dst = cast(batch.column(1), &DataType::Int32)?;
        let value = cast(batch.column(2), &DataType::Float64)?;
        let test = cast(batch.column(4), &DataType::Boolean)?;
        let (src, dst) = (src.as_primitive::<Int32Type>(), dst.as_primitive::<Int32Type>());
        let (value, test) = (value.as_primitive::<Float64Type>(), test.as_boolean());
        let base = ids.iter().map(|a: &ArrayRef| a.len()).sum::<usize>();
        for r in 0..batch.num_rows() {
            entries.push(Entry {
                src: src.value(r) as u32,
                dst: dst.value(r) as u32,
                value: value.value(r),
                test: test.is_valid(r) && test.value(r),
                row: (base + r) as u32,
            });
        }
        ids.push(cast(batch.column(3), &id_type.data_type())?);
    }
    entries.sort_unstable_by(|a, b| {
        (a.src, a.dst)
            .cmp(&(b.src, b.dst))
            .then(a.value.total_cmp(&b.value))
    });
    Ok(BlockRatings {
        entries,
        ids: concat_ids(&ids, id_type)?,
    })
}

fn concat_ids(parts: &[ArrayRef], id_type: IdType) -> Result<ArrayRef> {
    if parts.is_empty() {
        return Ok(datafusion::arrow::array::new_empty_array(&id_type.data_type()));
    }
    let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
    Ok(concat(&refs)?)
}

/// One side's factors, addressed by dense index.
pub(crate) struct Factors {
    pub(crate) k: usize,
    data: Vec<f64>,
    present: Vec<bool>,
    id_rows: Vec<u32>,
    /// The ids of the rows read from files (absent for initial factors).
    pub(crate) ids: Option<ArrayRef>,
}

impl Factors {
    /// The seeded initial factors of the rows in `needed`.
    pub(crate) fn initial(
        seed: u64,
        side: Side,
        needed: impl Iterator<Item = u32>,
        k: usize,
        nonnegative: bool,
    ) -> Self {
        Self::empty(k).or_initial(seed, side, needed, nonnegative)
    }

    /// These factors, and the seeded initial factors of the rows in `needed` without one.
    pub(crate) fn or_initial(
        mut self,
        seed: u64,
        side: Side,
        needed: impl Iterator<Item = u32>,
        nonnegative: bool,
    ) -> Self {
        for i in needed {
            if self.get(i).is_none() {
                self.set(i, &initial_factor(seed, side, i, self.k, nonnegative), u32::MAX);
            }
        }
        self
    }

    /// Factors read from files written by a solve step.
    pub(crate) fn from_batches(batches: &[RecordBatch], k: usize, id_type: IdType) -> Result<Self> {
        let mut f = Self::empty(k);
        let mut ids = Vec::with_capacity(batches.len());
        let mut row = 0u32;
        for batch in batches {
            let idx = cast(batch.column(0), &DataType::Int32)?;
            let features = batch.column(2).as_list::<i32>();
            for r in 0..batch.num_rows() {
                let vector = features.value(r);
                let vector = vector.as_primitive::<Float64Type>();
                if vector.len() != k || vector.null_count() > 0 {
                    return Err(exec_err(format!(
                        "a factor has {} values (rank {k} expected)",
                        vector.len()
                    )));
                }
                f.set(
                    idx.as_primitive::<Int32Type>().value(r) as u32,
                    vector.values(),
                    row,
                );
                row += 1;
            }
            ids.push(cast(batch.column(1), &id_type.data_type())?);
        }
        f.ids = Some(concat_ids(&ids, id_type)?);
        Ok(f)
    }

    fn empty(k: usize) -> Self {
        Self {
            k,
            data: Vec::new(),
            present: Vec::new(),
            id_rows: Vec::new(),
            ids: None,
        }
    }

    /// Sets row `i`'s factor (no id).
    #[cfg(test)]
    pub(crate) fn insert(&mut self, i: u32, vector: &[f64]) {
        self.set(i, vector, u32::MAX);
    }

    fn set(&mut self, i: u32, vector: &[f64], id_row: u32) {
        let i = i as usize;
        if i >= self.present.len() {
            self.present.resize(i + 1, false);
            self.id_rows.resize(i + 1, u32::MAX);
            self.data.resize((i + 1) * self.k, 0.0);
        }
        self.present[i] = true;
        self.id_rows[i] = id_row;
        self.data[i * self.k..(i + 1) * self.k].copy_from_slice(vector);
    }

    /// The factor of row `i`, if it has one.
    pub(crate) fn get(&self, i: u32) -> Option<&[f64]> {
        let i = i as usize;
        (self.present.get(i) == Some(&true)).then(|| &self.data[i * self.k..(i + 1) * self.k])
    }

    /// Rows with a factor, by index.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &[f64])> {
        (0..self.present.len() as u32).filter_map(|i| self.get(i).map(|v| (i, v)))
    }

    /// Where row `i`'s id is in [`Factors::ids`].
    pub(crate) fn id_row(&self, i: u32) -> u32 {
        self.id_rows[i as usize]
    }
}

pub(crate) fn exec_err(message: String) -> DataFusionError {
    DataFusionError::Execution(message)
}
