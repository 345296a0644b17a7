//! Building a block: sorting the series, encoding their samples into XOR chunks per data column,
//! and writing `labels.parquet`, `chunks.parquet` and `meta.json`.
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, Int64Array, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use strata_model::{label_hash, Labels, Sample, METRIC_NAME};

use crate::meta::{BlockMeta, BlockStats, Compaction, ParquetLayout, FORMAT_VERSION};
use crate::{data_column, label_column, BlockId, Error, Result, HASH_COLUMN};

/// How blocks are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOptions {
    /// Rows (series) per row group.
    pub row_group_rows: usize,
    /// Milliseconds per data column (the community layout uses 8h columns in 24h blocks).
    pub data_column_ms: i64,
    /// zstd level of both files.
    pub zstd_level: i32,
    /// Chunk encodings the data cells may use.
    pub encoding: crate::cell::Encoding,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions {
            row_group_rows: 16_384,
            data_column_ms: 8 * 3600 * 1000,
            zstd_level: 3,
            encoding: crate::cell::Encoding::Auto,
        }
    }
}

/// What a block holds besides its series.
#[derive(Debug, Clone)]
pub struct BlockDesc {
    pub id: BlockId,
    pub tenant: String,
    pub min_time: i64,
    /// Exclusive.
    pub max_time: i64,
    pub compaction: Compaction,
    pub shard: Option<u32>,
}

/// A block encoded in memory, ready to upload.
#[derive(Debug, Clone)]
pub struct BuiltBlock {
    pub meta: BlockMeta,
    pub labels: Bytes,
    pub chunks: Bytes,
}

/// The order of rows in a block: by metric name, then by the other labels.
pub fn series_order(a: &Labels, b: &Labels) -> Ordering {
    fn name(l: &Labels) -> &str {
        l.get(METRIC_NAME).unwrap_or("")
    }
    fn rest(l: &Labels) -> impl Iterator<Item = &strata_model::Label> {
        l.0.iter().filter(|l| l.name != METRIC_NAME)
    }
    name(a).cmp(name(b)).then_with(|| rest(a).cmp(rest(b)))
}

/// Encodes `series` into a block. Samples outside `[min_time, max_time)` are an error (the caller
/// cut the wrong range); series without samples are left out. Samples must be ascending.
pub fn build(
    desc: BlockDesc,
    mut series: Vec<(Labels, Vec<Sample>)>,
    opts: &BlockOptions,
) -> Result<BuiltBlock> {
    series.retain(|(_, s)| !s.is_empty());
    series.sort_by(|a, b| series_order(&a.0, &b.0));
    for w in series.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(Error::Invalid(format!("series {:?} given twice", w[0].0)));
        }
    }
    let names = label_names(series.iter().map(|(l, _)| l));
    let mut b = BlockBuilder::new(desc, names, opts)?;
    for group in series.chunks(b.row_group_rows()) {
        b.add_row_group(group.iter().map(|(l, s)| (l, s.as_slice())))?;
    }
    b.finish()
}

/// The sorted, distinct label names of some label sets: the label columns of a block.
pub fn label_names<'a>(labels: impl Iterator<Item = &'a Labels>) -> Vec<String> {
    labels
        .flat_map(|l| l.iter().map(|l| l.name.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// Writes a block one row group at a time, so a caller streaming series out of a head holds
/// only one row group's samples. Rows must come in [`series_order`], each label set once.
pub struct BlockBuilder {
    desc: BlockDesc,
    opts: BlockOptions,
    names: Vec<String>,
    col_ms: i64,
    data_columns: usize,
    label_schema: Arc<Schema>,
    data_schema: Arc<Schema>,
    lw: ArrowWriter<Vec<u8>>,
    cw: ArrowWriter<Vec<u8>>,
    stats: BlockStats,
    last: Option<Labels>,
    cell: Vec<u8>,
    /// The row group being filled: its rows are encoded as they come.
    pending: Option<PendingGroup>,
}

/// Column builders of a row group not written yet.
struct PendingGroup {
    rows: usize,
    hashes: Vec<i64>,
    labels: Vec<StringBuilder>,
    data: Vec<BinaryBuilder>,
}

impl BlockBuilder {
    /// `names` are all label names of the rows to come (see [`label_names`]).
    pub fn new(desc: BlockDesc, names: Vec<String>, opts: &BlockOptions) -> Result<Self> {
        if desc.max_time <= desc.min_time {
            return Err(Error::Invalid(format!(
                "empty block range [{}, {})",
                desc.min_time, desc.max_time
            )));
        }
        let col_ms = opts.data_column_ms.max(1);
        let span = desc.max_time - desc.min_time;
        let data_columns = usize::try_from((span + col_ms - 1) / col_ms)
            .map_err(|_| Error::Invalid("block range too long".into()))?;
        let mut label_fields = vec![Field::new(HASH_COLUMN, DataType::Int64, false)];
        label_fields
            .extend(names.iter().map(|n| Field::new(label_column(n), DataType::Utf8, true)));
        let label_schema = Arc::new(Schema::new(label_fields));
        let data_fields: Vec<Field> =
            (0..data_columns).map(|i| Field::new(data_column(i), DataType::Binary, true)).collect();
        let data_schema = Arc::new(Schema::new(data_fields));
        let zstd =
            ZstdLevel::try_new(opts.zstd_level).map_err(|e| Error::Invalid(e.to_string()))?;
        let props = |bloom_on_name: bool| {
            let mut b = WriterProperties::builder()
                .set_compression(Compression::ZSTD(zstd))
                .set_statistics_enabled(EnabledStatistics::Page)
                // Row groups end where the builder says.
                .set_max_row_group_row_count(None);
            if bloom_on_name {
                b = b.set_column_bloom_filter_enabled(
                    ColumnPath::from(label_column(METRIC_NAME)),
                    true,
                );
            }
            b.build()
        };
        let lw = ArrowWriter::try_new(Vec::new(), Arc::clone(&label_schema), Some(props(true)))?;
        let cw = ArrowWriter::try_new(Vec::new(), Arc::clone(&data_schema), Some(props(false)))?;
        Ok(BlockBuilder {
            desc,
            opts: BlockOptions { row_group_rows: opts.row_group_rows.max(1), ..opts.clone() },
            names,
            col_ms,
            data_columns,
            label_schema,
            data_schema,
            lw,
            cw,
            stats: BlockStats::default(),
            last: None,
            cell: Vec::new(),
            pending: None,
        })
    }

    /// Rows per row group.
    pub fn row_group_rows(&self) -> usize {
        self.opts.row_group_rows
    }

    /// Writes one row group (at most [`Self::row_group_rows`] rows). Rows without samples are
    /// skipped.
    pub fn add_row_group<'r>(
        &mut self,
        rows: impl IntoIterator<Item = (&'r Labels, &'r [Sample])>,
    ) -> Result<()> {
        let rows: Vec<_> = rows.into_iter().collect();
        let n = rows.iter().filter(|(_, s)| !s.is_empty()).count();
        if n > self.opts.row_group_rows {
            return Err(Error::Invalid(format!(
                "{n} rows in a row group of {}",
                self.opts.row_group_rows
            )));
        }
        self.end_row_group()?;
        for (labels, samples) in rows {
            self.push_row(labels, samples)?;
        }
        self.end_row_group()
    }

    /// Adds one series, encoding its samples now, so a caller merging or streaming series
    /// holds only one series' samples at a time. A row group is written whenever
    /// [`Self::row_group_rows`] rows are in. A series without samples is skipped.
    pub fn push_row(&mut self, labels: &Labels, samples: &[Sample]) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        if let Some(prev) = &self.last {
            if series_order(prev, labels) != Ordering::Less {
                return Err(Error::Invalid(format!("series {labels:?} out of order or repeated")));
            }
        }
        if let Some(n) = labels.iter().find(|n| self.names.binary_search(&n.name).is_err()) {
            return Err(Error::Invalid(format!("label {:?} not among the block's names", n.name)));
        }
        let (min_time, max_time, col_ms) = (self.desc.min_time, self.desc.max_time, self.col_ms);
        let (names, data_columns) = (&self.names, self.data_columns);
        let g = self.pending.get_or_insert_with(|| PendingGroup {
            rows: 0,
            hashes: Vec::new(),
            labels: names.iter().map(|_| StringBuilder::new()).collect(),
            data: (0..data_columns).map(|_| BinaryBuilder::new()).collect(),
        });
        // Cut first, so a bad series leaves the row group as it was.
        let mut cells: Vec<&[Sample]> = Vec::with_capacity(data_columns);
        let mut rest = samples;
        for i in 0..data_columns {
            let start = min_time + i as i64 * col_ms;
            let end = (start + col_ms).min(max_time);
            let n = rest.iter().take_while(|s| s.t < end).count();
            let (here, later) = rest.split_at(n);
            if here.first().is_some_and(|s| s.t < start) {
                return Err(Error::Invalid(format!(
                    "series {labels:?} has a sample at {} before the block's range",
                    here[0].t
                )));
            }
            cells.push(here);
            rest = later;
        }
        if let Some(s) = rest.first() {
            return Err(Error::Invalid(format!(
                "series {labels:?} has a sample at {} after the block's range",
                s.t
            )));
        }
        for (builder, here) in g.data.iter_mut().zip(cells) {
            if here.is_empty() {
                builder.append_null();
                continue;
            }
            self.cell.clear();
            self.stats.num_chunks += crate::cell::encode(here, self.opts.encoding, &mut self.cell)?;
            self.stats.num_samples += here.len() as u64;
            builder.append_value(&self.cell);
        }
        g.hashes
            .push(label_hash(labels.iter().map(|l| (l.name.as_bytes(), l.value.as_bytes()))) as i64);
        for (name, b) in names.iter().zip(&mut g.labels) {
            b.append_option(labels.get(name));
        }
        g.rows += 1;
        self.stats.num_series += 1;
        match &mut self.last {
            // The previous row's strings are reused.
            Some(last) => last.0.clone_from(&labels.0),
            None => self.last = Some(labels.clone()),
        }
        if g.rows >= self.opts.row_group_rows {
            self.end_row_group()?;
        }
        Ok(())
    }

    /// Writes the rows pushed since the last row group, if any, as a row group.
    pub fn end_row_group(&mut self) -> Result<()> {
        let Some(mut g) = self.pending.take() else { return Ok(()) };
        let mut label_cols: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(g.hashes))];
        label_cols.extend(g.labels.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        let data_cols: Vec<ArrayRef> =
            g.data.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        self.lw.write(&RecordBatch::try_new(Arc::clone(&self.label_schema), label_cols)?)?;
        self.lw.flush()?;
        if self.data_columns > 0 {
            self.cw.write(&RecordBatch::try_new(Arc::clone(&self.data_schema), data_cols)?)?;
            self.cw.flush()?;
        }
        Ok(())
    }

    /// Number of series written so far.
    pub fn num_series(&self) -> u64 {
        self.stats.num_series
    }

    pub fn finish(mut self) -> Result<BuiltBlock> {
        self.end_row_group()?;
        let labels = Bytes::from(self.lw.into_inner()?);
        let chunks = Bytes::from(self.cw.into_inner()?);
        let mut stats = self.stats;
        stats.num_bytes = (labels.len() + chunks.len()) as u64;
        let desc = self.desc;
        let meta = BlockMeta {
            ulid: desc.id,
            version: FORMAT_VERSION,
            tenant: desc.tenant,
            min_time: desc.min_time,
            max_time: desc.max_time,
            stats,
            compaction: desc.compaction,
            shard: desc.shard,
            parquet: ParquetLayout {
                data_column_duration_ms: self.col_ms,
                data_columns: self.data_columns as u32,
                row_group_rows: self.opts.row_group_rows as u32,
                label_names: self.names,
            },
        };
        Ok(BuiltBlock { meta, labels, chunks })
    }
}
