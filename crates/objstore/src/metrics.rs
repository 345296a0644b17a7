//! A layer that counts every operation, failure and byte moved, for `/metrics`.
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Op {
    operation: &'static str,
}

/// Counters of object store use.
#[derive(Clone, Debug, Default)]
pub struct StoreMetrics {
    operations: Family<Op, Counter>,
    failures: Family<Op, Counter>,
    bytes_read: Counter,
    bytes_written: Counter,
}

impl StoreMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = StoreMetrics::default();
        registry.register(
            "strata_objstore_operations",
            "Object store operations started",
            m.operations.clone(),
        );
        registry.register(
            "strata_objstore_operation_failures",
            "Object store operations that failed (after the client's retries)",
            m.failures.clone(),
        );
        registry.register(
            "strata_objstore_read_bytes",
            "Bytes read from the object store",
            m.bytes_read.clone(),
        );
        registry.register(
            "strata_objstore_written_bytes",
            "Bytes written to the object store",
            m.bytes_written.clone(),
        );
        m
    }

    fn start(&self, operation: &'static str) {
        self.operations.get_or_create(&Op { operation }).inc();
    }

    fn done<T>(&self, operation: &'static str, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if !matches!(e, object_store::Error::NotFound { .. }) {
                self.failures.get_or_create(&Op { operation }).inc();
            }
        }
        r
    }
}

pub(crate) struct MetricsStore {
    inner: Arc<dyn ObjectStore>,
    m: StoreMetrics,
}

impl MetricsStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, m: StoreMetrics) -> Self {
        MetricsStore { inner, m }
    }
}

impl fmt::Debug for MetricsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetricsStore({:?})", self.inner)
    }
}

impl fmt::Display for MetricsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Metrics({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for MetricsStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.m.start("put");
        let n = payload.content_length() as u64;
        let r = self.m.done("put", self.inner.put_opts(location, payload, opts).await);
        if r.is_ok() {
            self.m.bytes_written.inc_by(n);
        }
        r
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.m.start("put_multipart");
        self.m.done("put_multipart", self.inner.put_multipart_opts(location, opts).await)
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.m.start("get");
        let r = self.m.done("get", self.inner.get_opts(location, options).await);
        if let Ok(g) = &r {
            self.m.bytes_read.inc_by(g.range.end.saturating_sub(g.range.start));
        }
        r
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.m.start("get_ranges");
        let r = self.m.done("get_ranges", self.inner.get_ranges(location, ranges).await);
        if let Ok(parts) = &r {
            self.m.bytes_read.inc_by(parts.iter().map(|b| b.len() as u64).sum());
        }
        r
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.m.start("delete");
        let m = self.m.clone();
        self.inner.delete_stream(locations).map(move |r| m.done("delete", r)).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.m.start("list");
        let m = self.m.clone();
        self.inner.list(prefix).map(move |r| m.done("list", r)).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.m.start("list");
        self.m.done("list", self.inner.list_with_delimiter(prefix).await)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.m.start("copy");
        self.m.done("copy", self.inner.copy_opts(from, to, options).await)
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.m.start("rename");
        self.m.done("rename", self.inner.rename_opts(from, to, options).await)
    }
}
