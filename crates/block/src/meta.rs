//! `meta.json`, the deletion mark and the per-tenant bucket index.
use serde::{Deserialize, Serialize};

use crate::BlockId;

/// Version of the block format written by this code.
pub const FORMAT_VERSION: u32 = 1;

/// A block's `meta.json`. Written last when a block is uploaded: a block without it is
/// incomplete and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: BlockId,
    pub version: u32,
    pub tenant: String,
    /// First millisecond covered, inclusive.
    pub min_time: i64,
    /// End of the range covered, exclusive.
    pub max_time: i64,
    pub stats: BlockStats,
    pub compaction: Compaction,
    /// The shard that flushed it (level-1 blocks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    pub parquet: ParquetLayout,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    pub num_series: u64,
    pub num_samples: u64,
    pub num_chunks: u64,
    /// Bytes of `labels.parquet` plus `chunks.parquet`.
    pub num_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compaction {
    /// 1 for a block cut from a head; one more for each merge.
    pub level: u32,
    /// The level-1 blocks whose data this block holds.
    pub sources: Vec<BlockId>,
}

/// How the Parquet files are laid out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParquetLayout {
    /// Milliseconds covered by each `s_data_<n>` column, starting at `min_time`.
    pub data_column_duration_ms: i64,
    pub data_columns: u32,
    /// Rows per row group (the last may be shorter); the two files share the boundaries.
    pub row_group_rows: u32,
    /// Label names in the block, sorted; each has a column `l_<name>`.
    pub label_names: Vec<String>,
}

impl BlockMeta {
    /// The times data column `i` holds: `[start, end)`, the last one cut at the block's end.
    pub fn data_column_window(&self, i: usize) -> (i64, i64) {
        let d = self.parquet.data_column_duration_ms;
        let start = self.min_time.saturating_add((i as i64).saturating_mul(d));
        (start, start.saturating_add(d).min(self.max_time))
    }

    /// Whether the block may hold samples in `[mint, maxt]` (inclusive).
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint < self.max_time
    }
}

/// `deletion-mark.json`: the block is replaced (or past retention) and will be deleted after a
/// delay; readers skip it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletionMark {
    pub id: BlockId,
    /// Unix seconds.
    pub deletion_time: i64,
    pub reason: String,
}

/// `<tenant>/bucket-index.json`: the tenant's blocks and deletion marks, rewritten by the
/// compactor so readers need not list the bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketIndex {
    pub version: u32,
    pub blocks: Vec<BlockMeta>,
    pub deletion_marks: Vec<DeletionMark>,
    /// Unix seconds.
    pub updated_at: i64,
}
