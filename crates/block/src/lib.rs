//! Strata's blocks: a tenant's series over a closed time range, kept in the object store as
//! Parquet in the community layout (prometheus-community/parquet-common):
//!
//! ```text
//! <tenant>/<block-ulid>/meta.json        BlockMeta, written last
//! <tenant>/<block-ulid>/labels.parquet   one row per series: s_series_hash, l_<name>…
//! <tenant>/<block-ulid>/chunks.parquet   the same rows: s_data_0…s_data_<n-1>
//! ```
//!
//! Rows are sorted by metric name, then the other labels. Each label name has an optional,
//! dictionary-encoded string column `l_<name>` (null where a series lacks the label);
//! `s_series_hash` is [`strata_model::label_hash`]. `s_data_<i>` holds the series' samples in
//! `[min_time + i·d, min_time + (i+1)·d)` (d = `data_column_duration_ms`, 8h by default) as
//! chunks: Prometheus XOR, or a scaled-integer delta encoding for decimal values that zstd
//! compresses much better (see [`cell`]). Both files are zstd
//! compressed, with page statistics and offset indexes, a bloom filter on `l___name__`, and the
//! same row-group boundaries, so a query reads the row groups whose statistics admit its
//! matchers and only the data columns that overlap its range.
//!
//! Main items: [`build`] / [`upload`] (writing), [`BlockReader`] (reading), [`BlockMeta`],
//! [`compact`] (planning and merging), [`verify`].

mod catalog;
pub mod cell;
pub mod compact;
mod id;
pub mod meta;
mod reader;
mod writer;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

pub use catalog::{list_blocks, list_tenants, Catalog, Listing};
pub use cell::Encoding;
pub use id::BlockId;
pub use meta::{BlockMeta, BlockStats, BucketIndex, Compaction, DeletionMark};
pub use reader::BlockReader;
pub use writer::{
    build, label_names, series_order, BlockBuilder, BlockDesc, BlockOptions, BuiltBlock,
};

/// Object paths, shared with the object store crate's conventions.
pub mod paths {
    pub use strata_objstore::paths::*;
}

/// Name of the series-hash column.
pub const HASH_COLUMN: &str = "s_series_hash";
/// Prefix of label columns.
pub const LABEL_PREFIX: &str = "l_";

pub fn label_column(name: &str) -> String {
    format!("{LABEL_PREFIX}{name}")
}

pub fn data_column(i: usize) -> String {
    format!("s_data_{i}")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid block: {0}")]
    Invalid(String),
    #[error("corrupt block: {0}")]
    Corrupt(String),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("meta.json: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Uploads a block: the Parquet files first, `meta.json` last, so a block is visible only once
/// complete. Uploading the same block again overwrites it with the same content.
pub async fn upload(store: &Arc<dyn ObjectStore>, b: &BuiltBlock) -> Result<()> {
    let id = b.meta.ulid.to_string();
    let t = &b.meta.tenant;
    put_file(store, &paths::block_file(t, &id, paths::LABELS), &b.labels).await?;
    put_file(store, &paths::block_file(t, &id, paths::CHUNKS), &b.chunks).await?;
    let meta = serde_json::to_vec_pretty(&b.meta)?;
    store.put(&paths::block_file(t, &id, paths::META), PutPayload::from(Bytes::from(meta))).await?;
    Ok(())
}

/// Files above this go up in parts: S3 takes at most 5 GiB in one PUT, and a part that fails
/// is retried alone.
const MULTIPART_ABOVE: usize = 64 << 20;
const PART_BYTES: usize = 16 << 20;

/// Writes one file, in parts when it is large; a failed multipart upload is aborted.
async fn put_file(
    store: &Arc<dyn ObjectStore>,
    path: &object_store::path::Path,
    data: &Bytes,
) -> Result<()> {
    put_file_with(store, path, data, MULTIPART_ABOVE, PART_BYTES).await
}

async fn put_file_with(
    store: &Arc<dyn ObjectStore>,
    path: &object_store::path::Path,
    data: &Bytes,
    multipart_above: usize,
    part_bytes: usize,
) -> Result<()> {
    if data.len() <= multipart_above {
        store.put(path, PutPayload::from(data.clone())).await?;
        return Ok(());
    }
    let mut upload = store.put_multipart(path).await?;
    let parts = (0..data.len()).step_by(part_bytes.max(1)).map(|at| {
        let part = data.slice(at..(at + part_bytes).min(data.len()));
        upload.put_part(PutPayload::from(part))
    });
    // Up to four parts in flight.
    let sent =
        futures::stream::iter(parts.collect::<Vec<_>>()).buffered(4).try_collect::<Vec<()>>().await;
    match sent {
        Ok(_) => {
            upload.complete().await?;
            Ok(())
        }
        Err(e) => {
            let _ = upload.abort().await;
            Err(e.into())
        }
    }
}

/// Reads a block's `meta.json`; `Ok(None)` when there is none (an incomplete upload).
pub async fn read_meta(
    store: &Arc<dyn ObjectStore>,
    tenant: &str,
    id: &str,
) -> Result<Option<BlockMeta>> {
    match store.get(&paths::block_file(tenant, id, paths::META)).await {
        Ok(r) => Ok(Some(serde_json::from_slice(&r.bytes().await?)?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub series: u64,
    pub samples: u64,
    pub problems: Vec<String>,
}

/// Reads a whole block and checks it against its meta: row order, unique series,
/// samples inside the range and ascending, decodable chunks, counts equal to `meta.json`.
pub async fn verify(store: Arc<dyn ObjectStore>, meta: BlockMeta) -> Result<VerifyReport> {
    let mut rep = VerifyReport::default();
    let reader = match BlockReader::open(store, meta.clone()).await {
        Ok(r) => r,
        Err(e) => {
            rep.problems.push(e.to_string());
            return Ok(rep);
        }
    };
    // A row group at a time, so a day-long block is checked in the memory of one row group.
    let mut chunks = 0u64;
    let mut prev: Option<strata_model::Labels> = None;
    for rg in 0..reader.num_row_groups() {
        let rows = match reader.read_row_group_cells(rg).await {
            Ok(rows) => rows,
            Err(e) => {
                rep.problems.push(format!("row group {rg}: {e}"));
                return Ok(rep);
            }
        };
        for (labels, cells) in rows {
            let i = rep.series;
            rep.series += 1;
            if prev.as_ref().is_some_and(|p| series_order(p, &labels) != std::cmp::Ordering::Less) {
                rep.problems.push(format!("row {i}: series {labels:?} out of order or repeated"));
            }
            let mut samples: Vec<strata_model::Sample> = Vec::new();
            for (col, cell) in &cells {
                // Queries read a column only for times inside its window: a sample elsewhere
                // would never be found.
                let (start, end) = meta.data_column_window(*col);
                let mut part = Vec::new();
                match crate::cell::decode(cell, i64::MIN, i64::MAX, &mut part) {
                    Ok(n) => chunks += n,
                    Err(e) => {
                        rep.problems.push(format!("row {i}, data column {col}: {e}"));
                        continue;
                    }
                }
                if part.iter().any(|x| x.t < start || x.t >= end) {
                    rep.problems.push(format!(
                        "row {i}: samples outside data column {col}'s window [{start}, {end})"
                    ));
                }
                samples.extend(part);
            }
            rep.samples += samples.len() as u64;
            if samples.windows(2).any(|w| w[0].t >= w[1].t) {
                rep.problems.push(format!("row {i}: samples not ascending"));
            }
            prev = Some(labels);
        }
    }
    if rep.series != meta.stats.num_series || rep.samples != meta.stats.num_samples {
        rep.problems.push(format!(
            "read {} series and {} samples; meta.json says {} and {}",
            rep.series, rep.samples, meta.stats.num_series, meta.stats.num_samples
        ));
    }
    if chunks != meta.stats.num_chunks {
        rep.problems
            .push(format!("read {chunks} chunks; meta.json says {}", meta.stats.num_chunks));
    }
    rep.problems.truncate(20);
    Ok(rep)
}
