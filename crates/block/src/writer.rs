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
use strata_head::chunk::{XorChunk, MAX_SAMPLES};
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
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions { row_group_rows: 16_384, data_column_ms: 8 * 3600 * 1000, zstd_level: 3 }
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
    let name = |l: &Labels| l.get(METRIC_NAME).map(str::to_owned).unwrap_or_default();
    name(a).cmp(&name(b)).then_with(|| {
        let rest =
            |l: &Labels| l.0.iter().filter(|l| l.name != METRIC_NAME).cloned().collect::<Vec<_>>();
        rest(a).cmp(&rest(b))
    })
}

/// Encodes `series` into a block. Samples outside `[min_time, max_time)` are an error (the caller
/// cut the wrong range); series without samples are left out. Samples must be ascending.
pub fn build(
    desc: BlockDesc,
    mut series: Vec<(Labels, Vec<Sample>)>,
    opts: &BlockOptions,
) -> Result<BuiltBlock> {
    if desc.max_time <= desc.min_time {
        return Err(Error::Invalid(format!(
            "empty block range [{}, {})",
            desc.min_time, desc.max_time
        )));
    }
    series.retain(|(_, s)| !s.is_empty());
    series.sort_by(|a, b| series_order(&a.0, &b.0));
    for w in series.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(Error::Invalid(format!("series {:?} given twice", w[0].0)));
        }
    }
    let col_ms = opts.data_column_ms.max(1);
    let span = desc.max_time - desc.min_time;
    let data_columns = usize::try_from((span + col_ms - 1) / col_ms)
        .map_err(|_| Error::Invalid("block range too long".into()))?;
    let names: Vec<String> = series
        .iter()
        .flat_map(|(l, _)| l.iter().map(|l| l.name.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    let mut label_fields = vec![Field::new(HASH_COLUMN, DataType::Int64, false)];
    label_fields.extend(names.iter().map(|n| Field::new(label_column(n), DataType::Utf8, true)));
    let label_schema = Arc::new(Schema::new(label_fields));
    let data_fields: Vec<Field> =
        (0..data_columns).map(|i| Field::new(data_column(i), DataType::Binary, true)).collect();
    let data_schema = Arc::new(Schema::new(data_fields));

    let zstd = ZstdLevel::try_new(opts.zstd_level).map_err(|e| Error::Invalid(e.to_string()))?;
    let props = |bloom_on_name: bool| {
        let mut b = WriterProperties::builder()
            .set_compression(Compression::ZSTD(zstd))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(opts.row_group_rows.max(1)));
        if bloom_on_name {
            b = b
                .set_column_bloom_filter_enabled(ColumnPath::from(label_column(METRIC_NAME)), true);
        }
        b.build()
    };
    let mut lw = ArrowWriter::try_new(Vec::new(), Arc::clone(&label_schema), Some(props(true)))?;
    let mut cw = ArrowWriter::try_new(Vec::new(), Arc::clone(&data_schema), Some(props(false)))?;

    let mut stats = BlockStats::default();
    let rg = opts.row_group_rows.max(1);
    let mut cell = Vec::new();
    for group in series.chunks(rg) {
        let hashes: Int64Array = group
            .iter()
            .map(|(l, _)| {
                label_hash(l.iter().map(|l| (l.name.as_bytes(), l.value.as_bytes()))) as i64
            })
            .collect();
        let mut label_cols: Vec<ArrayRef> = vec![Arc::new(hashes)];
        for name in &names {
            let mut b = StringBuilder::with_capacity(group.len(), group.len() * 8);
            for (l, _) in group {
                b.append_option(l.get(name));
            }
            label_cols.push(Arc::new(b.finish()));
        }
        let mut data_builders: Vec<BinaryBuilder> =
            (0..data_columns).map(|_| BinaryBuilder::new()).collect();
        for (labels, samples) in group {
            stats.num_series += 1;
            let mut rest = samples.as_slice();
            for (i, builder) in data_builders.iter_mut().enumerate() {
                let start = desc.min_time + i as i64 * col_ms;
                let end = (start + col_ms).min(desc.max_time);
                let n = rest.iter().take_while(|s| s.t < end).count();
                let (here, later) = rest.split_at(n);
                rest = later;
                if here.is_empty() {
                    builder.append_null();
                    continue;
                }
                if here[0].t < start {
                    return Err(Error::Invalid(format!(
                        "series {labels:?} has a sample at {} before the block's range",
                        here[0].t
                    )));
                }
                cell.clear();
                stats.num_chunks += encode_cell(here, &mut cell)?;
                stats.num_samples += here.len() as u64;
                builder.append_value(&cell);
            }
            if let Some(s) = rest.first() {
                return Err(Error::Invalid(format!(
                    "series {labels:?} has a sample at {} after the block's range",
                    s.t
                )));
            }
        }
        let data_cols: Vec<ArrayRef> =
            data_builders.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        lw.write(&RecordBatch::try_new(Arc::clone(&label_schema), label_cols)?)?;
        lw.flush()?;
        if data_columns > 0 {
            cw.write(&RecordBatch::try_new(Arc::clone(&data_schema), data_cols)?)?;
            cw.flush()?;
        }
    }
    let labels = Bytes::from(lw.into_inner()?);
    let chunks = Bytes::from(cw.into_inner()?);
    stats.num_bytes = (labels.len() + chunks.len()) as u64;
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
            data_column_duration_ms: col_ms,
            data_columns: data_columns as u32,
            row_group_rows: rg as u32,
            label_names: names,
        },
    };
    Ok(BuiltBlock { meta, labels, chunks })
}

/// Appends the samples as XOR chunks, each `uvarint(len) bytes`; returns the chunk count.
fn encode_cell(samples: &[Sample], out: &mut Vec<u8>) -> Result<u64> {
    let mut n = 0;
    for part in samples.chunks(MAX_SAMPLES) {
        let mut c = XorChunk::new();
        for s in part {
            c.append(s.t, s.v).map_err(|e| Error::Invalid(e.to_string()))?;
        }
        let bytes = c.bytes();
        put_uvarint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
        n += 1;
    }
    Ok(n)
}

fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}
