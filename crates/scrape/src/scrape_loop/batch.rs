//! Group commit for scraped samples. Every sample that reaches the store goes through a Raft
//! entry per shard, and each entry has a fixed cost; one target's scrape (a thousand series,
//! spread over all shards) makes small entries. The loops of a scrape manager therefore hand
//! their encoded requests to one writer, which concatenates what arrives within a short window
//! (`WriteRequest`s concatenate into one) and pushes it as one request: many targets per entry.
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_model::{PushRequest, PushSink, TenantId, WireVersion};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long the writer waits for more scrapes after the first one of a batch. Scraped data
/// shows up in queries at most this much later; samples keep their scrape timestamps.
pub const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// Uncompressed bytes after which a batch is written at once (well under the ingester's
/// default 128 MiB decompressed-body limit).
const MAX_BATCH_BYTES: usize = 8 << 20;
/// Requests waiting for the writer; loops wait when it falls behind.
const QUEUE: usize = 256;

/// Where loops send uncompressed `WriteRequest` bytes.
pub type BatchSender = mpsc::Sender<Vec<u8>>;

/// Starts the writer; it ends when every sender is gone, after writing what it holds.
pub fn start(sink: Arc<dyn PushSink>, tenant: TenantId, window: Duration) -> BatchSender {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(rx, sink, tenant, window));
    tx
}

async fn run(
    mut rx: mpsc::Receiver<Vec<u8>>,
    sink: Arc<dyn PushSink>,
    tenant: TenantId,
    window: Duration,
) {
    while let Some(mut buf) = rx.recv().await {
        let deadline = Instant::now() + window;
        let mut open = true;
        while buf.len() < MAX_BATCH_BYTES {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(more)) => buf.extend_from_slice(&more),
                Ok(None) => {
                    open = false;
                    break;
                }
                Err(_) => break,
            }
        }
        write(&*sink, &tenant, &buf).await;
        if !open {
            return;
        }
    }
}

async fn write(sink: &dyn PushSink, tenant: &TenantId, raw: &[u8]) {
    // Snappy's block encoder fails only on inputs over ~4 GiB, far past MAX_BATCH_BYTES.
    let body = match snap::raw::Encoder::new().compress_vec(raw) {
        Ok(b) => Bytes::from(b),
        Err(error) => {
            tracing::error!(%error, "cannot compress scraped samples");
            return;
        }
    };
    // A store that is briefly unavailable (a shard electing its leader) is tried again, as
    // a remote-write client retries a 5xx, for a few seconds at most; the batch is then
    // given up, and the next scrape writes afresh.
    let mut backoff = RETRY_FIRST;
    for attempt in 1.. {
        let req =
            PushRequest { tenant: tenant.clone(), version: WireVersion::V1, body: body.clone() };
        match sink.push(req).await {
            Ok(outcome) => {
                if let Some(error) = outcome.partial_error {
                    tracing::debug!(%error, "scraped samples partly refused");
                }
                return;
            }
            Err((strata_model::Error::Unavailable(error), _)) if attempt < RETRY_ATTEMPTS => {
                tracing::debug!(%error, attempt, "scraped samples not written yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err((error, _)) => {
                tracing::warn!(%error, attempt, "scraped samples not written");
                return;
            }
        }
    }
}

/// Tries of one batch while the store is unavailable, and the first wait between them
/// (doubling: 0.1 + 0.2 + 0.4 + 0.8 s).
const RETRY_ATTEMPTS: u32 = 5;
const RETRY_FIRST: Duration = Duration::from_millis(100);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use async_trait::async_trait;
    use prost::Message;
    use strata_model::PushOutcome;
    use strata_proto::prometheus as pb;

    use super::*;
    use crate::scrape_loop::append::Out;
    use crate::scrape_loop::encode::encode_raw;

    struct Recorder(mpsc::UnboundedSender<(String, pb::WriteRequest)>);

    #[async_trait]
    impl PushSink for Recorder {
        async fn push(
            &self,
            req: PushRequest,
        ) -> Result<PushOutcome, (strata_model::Error, PushOutcome)> {
            let raw = snap::raw::Decoder::new().decompress_vec(&req.body).unwrap();
            let _ = self.0.send((req.tenant.0, pb::WriteRequest::decode(&raw[..]).unwrap()));
            Ok(PushOutcome::default())
        }
    }

    fn request(name: &str) -> Vec<u8> {
        let l = strata_model::Labels::from_pairs([("__name__", name)]);
        encode_raw(vec![Out::new(&l, 1, 1.0)], &[]).remove(0)
    }

    fn names(w: &pb::WriteRequest) -> Vec<String> {
        w.timeseries
            .iter()
            .map(|t| String::from_utf8_lossy(&t.labels[0].value).into_owned())
            .collect()
    }

    #[tokio::test]
    async fn scrapes_within_the_window_share_one_push() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let batch = start(Arc::new(Recorder(tx)), TenantId("t".into()), Duration::from_millis(300));
        batch.send(request("a")).await.unwrap();
        batch.send(request("b")).await.unwrap();
        let (tenant, w) = rx.recv().await.unwrap();
        assert_eq!((tenant.as_str(), names(&w)), ("t", vec!["a".to_string(), "b".to_string()]));
        batch.send(request("c")).await.unwrap();
        // The last sender gone: what is held is written, then the writer ends.
        drop(batch);
        let (_, w) = rx.recv().await.unwrap();
        assert_eq!(names(&w), ["c"]);
        assert!(rx.recv().await.is_none());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod retry_tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use strata_model::PushOutcome;

    use super::*;

    /// Unavailable for the first `fail` pushes, then takes them; counts every try.
    struct Flaky {
        fail: u32,
        tries: AtomicU32,
        err: fn() -> strata_model::Error,
    }

    #[async_trait]
    impl PushSink for Flaky {
        async fn push(
            &self,
            _: PushRequest,
        ) -> Result<PushOutcome, (strata_model::Error, PushOutcome)> {
            let n = self.tries.fetch_add(1, Ordering::SeqCst) + 1;
            if n <= self.fail {
                return Err(((self.err)(), PushOutcome::default()));
            }
            Ok(PushOutcome::default())
        }
    }

    #[tokio::test]
    async fn unavailable_stores_are_retried_a_few_times_and_bad_requests_never() {
        let t = TenantId("t".into());
        let unavailable = || strata_model::Error::Unavailable("electing".into());
        let s = Flaky { fail: 2, tries: AtomicU32::new(0), err: unavailable };
        write(&s, &t, b"x").await;
        assert_eq!(s.tries.load(Ordering::SeqCst), 3, "written at the third try");
        let s = Flaky { fail: 100, tries: AtomicU32::new(0), err: unavailable };
        write(&s, &t, b"x").await;
        assert_eq!(s.tries.load(Ordering::SeqCst), RETRY_ATTEMPTS, "then given up");
        let s = Flaky {
            fail: 100,
            tries: AtomicU32::new(0),
            err: || strata_model::Error::Invalid("bad".into()),
        };
        write(&s, &t, b"x").await;
        assert_eq!(s.tries.load(Ordering::SeqCst), 1);
    }
}
