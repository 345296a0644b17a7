//! The ingester as the engine's `Queryable`: selects across every shard's head.
use prometheus_client::registry::Registry;
use prost::Message;
use strata_model::{MatchOp, Sample, STALE_NAN_BITS};
use strata_proto::raft_v1::ShardBatch;
use strata_raft::Applier;

use super::*;
use crate::route::DecodeLimits;

type Series<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

/// Labels must be sorted by name, as validation leaves them.
fn batch(tenant: &str, series: &[Series<'_>]) -> Vec<u8> {
    let series = series
        .iter()
        .map(|(labels, samples)| crate::shard::tests::series_samples(labels, samples))
        .collect();
    ShardBatch { tenant: tenant.into(), series, metadata: Vec::new() }.encode_to_vec()
}

/// An ingester over two shards filled directly (no Raft groups; reads never touch them).
fn ingester() -> Ingester {
    let config = IngesterConfig {
        shards: 2,
        head: HeadConfig::default(),
        limits: DecodeLimits { max_request_bytes: 1 << 20, max_decompressed_bytes: 1 << 20 },
    };
    let a = Arc::new(ShardState::new(HeadConfig::default()));
    let b = Arc::new(ShardState::new(HeadConfig::default()));
    let stale = f64::from_bits(STALE_NAN_BITS);
    a.apply(&batch(
        "t",
        &[
            (&[("__name__", "up"), ("instance", "b"), ("job", "node")], &[(10, 1.0), (20, 0.0)]),
            (&[("__name__", "other")], &[(10, 5.0)]),
        ],
    ));
    b.apply(&batch(
        "t",
        &[
            (&[("__name__", "up"), ("instance", "a"), ("job", "node")], &[(10, 1.0), (20, stale)]),
            (&[("__name__", "up"), ("job", "prom")], &[(100, 1.0)]),
        ],
    ));
    b.apply(&batch("u", &[(&[("__name__", "up"), ("job", "node")], &[(10, 9.0)])]));
    let metrics = IngesterMetrics::new(&mut Registry::default());
    Ingester::new(config, vec![a, b], Vec::new(), metrics)
}

fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap()
}

fn tenant(t: &str) -> TenantId {
    TenantId(t.into())
}

#[tokio::test]
async fn select_unions_shards_sorted_by_labels() {
    let ing = ingester();
    let up = [m(MatchOp::Equal, "__name__", "up")];
    let got = ing.select(&tenant("t"), &up, 0, 1000).await.unwrap();
    let instances: Vec<_> = got.iter().map(|s| s.labels.get("instance")).collect();
    assert_eq!(instances, [Some("a"), Some("b"), None]);
    assert!(got.windows(2).all(|w| w[0].labels < w[1].labels));
    assert_eq!(got[1].samples, [Sample { t: 10, v: 1.0 }, Sample { t: 20, v: 0.0 }]);
    // Staleness markers come through as stored.
    assert_eq!(got[0].samples[1].v.to_bits(), STALE_NAN_BITS);
}

#[tokio::test]
async fn select_honours_matchers_range_and_tenant() {
    let ing = ingester();
    let t = tenant("t");
    let node = [m(MatchOp::Equal, "__name__", "up"), m(MatchOp::Equal, "job", "node")];
    let got = ing.select(&t, &node, 15, 1000).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|s| s.samples.len() == 1 && s.samples[0].t == 20), "{got:?}");

    // No samples in range: the series is left out.
    let prom = [m(MatchOp::Regex, "job", "pro.*")];
    assert!(ing.select(&t, &prom, 0, 99).await.unwrap().is_empty());
    assert_eq!(ing.select(&t, &prom, 100, 100).await.unwrap().len(), 1);

    let not_up = [m(MatchOp::NotEqual, "__name__", "up")];
    let got = ing.select(&t, &not_up, 0, 1000).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels.get("__name__"), Some("other"));

    let got = ing.select(&tenant("u"), &node, 0, 1000).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].samples, [Sample { t: 10, v: 9.0 }]);
    assert!(ing.select(&tenant("nobody"), &node, 0, 1000).await.unwrap().is_empty());
    assert!(ing.select(&t, &node, 1000, 0).await.unwrap().is_empty());
}

/// After the shard count or the routing hash changed, a series' older samples sit in another
/// shard's head than its newer ones: reads show one series with all of them.
#[tokio::test]
async fn select_merges_a_series_split_across_shards() {
    let ing = ingester();
    let labels: &[(&str, &str)] = &[("__name__", "up"), ("instance", "b"), ("job", "node")];
    // Shard 0 holds this series at 10 and 20; the other shard now gets its later samples.
    ing.states[1].apply(&batch("t", &[(labels, &[(30, 1.0), (40, 1.0)])]));
    let b = [m(MatchOp::Equal, "instance", "b")];
    let got = ing.select(&tenant("t"), &b, 0, 1000).await.unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let times: Vec<i64> = got[0].samples.iter().map(|s| s.t).collect();
    assert_eq!(times, [10, 20, 30, 40]);
    let series = ing.series(&tenant("t"), &[b.to_vec()], 0, 1000).await.unwrap();
    assert_eq!(series.len(), 1);
}
