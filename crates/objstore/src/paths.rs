//! Typed paths of what Strata keeps in the bucket:
//!
//! ```text
//! <tenant>/bucket-index.json
//! <tenant>/<block-id>/meta.json
//! <tenant>/<block-id>/labels.parquet
//! <tenant>/<block-id>/chunks.parquet
//! <tenant>/<block-id>/deletion-mark.json
//! ```
//! Each part is escaped by `object_store`'s path rules, so a tenant name cannot reach outside its
//! folder.
use object_store::path::{Path, PathPart};

pub const META: &str = "meta.json";
pub const LABELS: &str = "labels.parquet";
pub const CHUNKS: &str = "chunks.parquet";
pub const DELETION_MARK: &str = "deletion-mark.json";
pub const BUCKET_INDEX: &str = "bucket-index.json";

pub fn tenant(tenant: &str) -> Path {
    Path::from_iter([PathPart::from(tenant)])
}

pub fn block(tenant: &str, block_id: &str) -> Path {
    Path::from_iter([PathPart::from(tenant), PathPart::from(block_id)])
}

pub fn block_file(tenant: &str, block_id: &str, file: &str) -> Path {
    Path::from_iter([PathPart::from(tenant), PathPart::from(block_id), PathPart::from(file)])
}

pub fn bucket_index(tenant: &str) -> Path {
    Path::from_iter([PathPart::from(tenant), PathPart::from(BUCKET_INDEX)])
}
