//! Round trips through a block.
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use proptest::prelude::*;
use strata_head::{Head, HeadConfig};
use strata_model::{label_hash, ApplyReport, Labels, MatchOp, Matcher, Sample, STALE_NAN_BITS};

use crate::*;

const H: i64 = 3_600_000;

fn desc(min: i64, max: i64) -> BlockDesc {
    BlockDesc {
        id: BlockId::derived(min, b"test"),
        tenant: "tenant-a".into(),
        min_time: min,
        max_time: max,
        compaction: Compaction { level: 1, sources: vec![] },
        shard: Some(3),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn roundtrip(built: &BuiltBlock) -> BlockReader {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    upload(&store, built).await.unwrap();
    let meta = read_meta(&store, "tenant-a", &built.meta.ulid.to_string()).await.unwrap().unwrap();
    assert_eq!(meta, built.meta);
    BlockReader::open(store, meta).await.unwrap()
}

fn bits(s: &[Sample]) -> Vec<(i64, u64)> {
    s.iter().map(|s| (s.t, s.v.to_bits())).collect()
}

#[test]
fn select_prunes_and_filters() {
    let mut series = Vec::new();
    for m in 0..50 {
        for i in 0..20 {
            let labels = Labels::from_pairs([
                ("__name__", format!("metric_{m:02}")),
                ("instance", format!("host-{i}")),
                ("job", if i % 2 == 0 { "even".into() } else { "odd".to_string() }),
            ]);
            let samples =
                (0..100).map(|k| Sample { t: k * 15_000, v: (m * i + k) as f64 }).collect();
            series.push((labels, samples));
        }
    }
    // Small row groups and data columns so pruning and column choice matter.
    let opts = BlockOptions {
        row_group_rows: 64,
        data_column_ms: 300_000,
        zstd_level: 3,
        ..BlockOptions::default()
    };
    let built = build(desc(0, 2 * H), series, &opts).unwrap();
    assert_eq!(built.meta.stats.num_series, 1000);
    assert_eq!(built.meta.stats.num_samples, 100_000);
    assert_eq!(built.meta.parquet.data_columns, 24);
    rt().block_on(async {
        let r = roundtrip(&built).await;
        let name = Matcher::new(MatchOp::Equal, "__name__", "metric_07").unwrap();
        let odd = Matcher::new(MatchOp::Equal, "job", "odd").unwrap();
        let got = r.select(&[name.clone(), odd], 600_000, 899_999).await.unwrap();
        assert_eq!(got.len(), 10);
        for s in &got {
            assert_eq!(s.labels.get("__name__"), Some("metric_07"));
            assert_eq!(s.labels.get("job"), Some("odd"));
            let ts: Vec<i64> = s.samples.iter().map(|x| x.t).collect();
            assert_eq!(ts, (40..60).map(|k| k * 15_000).collect::<Vec<_>>());
        }
        assert_eq!(r.candidate_row_groups_for_test(std::slice::from_ref(&name)).len(), 1);
        // Regex and negative matchers; an absent label matches "".
        let re = Matcher::new(MatchOp::Regex, "instance", "host-1[0-2]").unwrap();
        assert_eq!(r.select(&[name.clone(), re], 0, 2 * H).await.unwrap().len(), 3);
        let absent = Matcher::new(MatchOp::Equal, "gpu", "").unwrap();
        assert_eq!(r.select(&[name.clone(), absent], 0, 2 * H).await.unwrap().len(), 20);
        let missing = Matcher::new(MatchOp::Equal, "gpu", "0").unwrap();
        assert!(r.select(&[missing], 0, 2 * H).await.unwrap().is_empty());
        // Outside the block's range.
        assert!(r.select(&[name], 2 * H, 3 * H).await.unwrap().is_empty());
        assert_eq!(r.series(&[]).await.unwrap().len(), 1000);
        let v = verify(Arc::clone(&r.store_for_test()), r.meta().clone()).await.unwrap();
        assert!(v.problems.is_empty(), "{v:?}");
    });
}

#[test]
fn samples_outside_the_range_are_refused() {
    let l = Labels::from_pairs([("__name__", "x")]);
    let e = build(
        desc(1000, 2000),
        vec![(l.clone(), vec![Sample { t: 2000, v: 1.0 }])],
        &BlockOptions::default(),
    );
    assert!(e.unwrap_err().to_string().contains("after the block's range"));
    let e = build(
        desc(1000, 2000),
        vec![(l, vec![Sample { t: 999, v: 1.0 }])],
        &BlockOptions::default(),
    );
    assert!(e.unwrap_err().to_string().contains("before the block's range"));
}

fn arb_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::from_bits(STALE_NAN_BITS)),
        (0i32..100).prop_map(f64::from),
        Just(f64::INFINITY),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever a head holds for a range comes back from the block unchanged, bit for bit.
    #[test]
    fn head_content_round_trips(
        series in prop::collection::vec(
            (0u8..4, 0u8..6, prop::collection::vec((1i64..40_000, arb_value()), 1..200)),
            1..40,
        ),
        rg_rows in 1usize..20,
        col_ms in prop_oneof![Just(8 * H), 1000i64..400_000],
    ) {
        let mut head = Head::new(HeadConfig::default());
        let mut report = ApplyReport::default();
        for (name, inst, samples) in &series {
            let l = Labels::from_pairs([("__name__", format!("m{name}")), ("instance", format!("i{inst}"))]);
            let flat: Vec<&[u8]> = l.iter().flat_map(|l| [l.name.as_bytes(), l.value.as_bytes()]).collect();
            let hash = label_hash(flat.chunks(2).map(|p| (p[0], p[1])));
            let mut t = 0;
            let (ts, vs): (Vec<i64>, Vec<f64>) = samples.iter().map(|(d, v)| { t += d; (t, *v) }).unzip();
            head.append("tenant-a", hash, &flat, &ts, &vs, &mut report);
        }
        let (min, max) = (0, 200 * 40_000);
        let mut want = Vec::new();
        for r in head.select("tenant-a", &[], min, max) {
            want.push((head.series_labels("tenant-a", r).unwrap(), head.samples("tenant-a", r, min, max)));
        }
        let opts = BlockOptions { row_group_rows: rg_rows, data_column_ms: col_ms, zstd_level: 1, ..BlockOptions::default() };
        let built = build(desc(min, max + 1), want.clone(), &opts).unwrap();
        let got = rt().block_on(async {
            let r = roundtrip(&built).await;
            r.read_all().await.unwrap()
        });
        want.sort_by(|a, b| series_order(&a.0, &b.0));
        prop_assert_eq!(got.len(), want.len());
        for (g, (l, s)) in got.iter().zip(&want) {
            prop_assert_eq!(&g.labels, l);
            prop_assert_eq!(bits(&g.samples), bits(s));
        }
    }
}

#[test]
fn compactor_merges_marks_deletes_and_indexes() {
    use crate::compact::{Compactor, CompactorConfig};
    rt().block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let l = |i: i64| Labels::from_pairs([("__name__", "up".to_string()), ("i", i.to_string())]);
        // Two shards' blocks for [0, 2h), one for [2h, 4h), and a repeat of the first
        // shard's block under another id (a crash-repeated flush).
        let mk = |key: &str, min: i64, series: Vec<i64>| {
            let mut d = desc(min, min + 2 * H);
            d.id = BlockId::derived(min, key.as_bytes());
            let rows = series
                .into_iter()
                .map(|i| {
                    (
                        l(i),
                        (0..4)
                            .map(|k| Sample { t: min + k * 60_000, v: (i * 10 + k) as f64 })
                            .collect(),
                    )
                })
                .collect();
            build(d, rows, &BlockOptions::default()).unwrap()
        };
        for b in [
            mk("a", 0, vec![1, 2]),
            mk("b", 0, vec![3]),
            mk("c", 2 * H, vec![1]),
            mk("a2", 0, vec![1, 2]),
        ] {
            upload(&store, &b).await.unwrap();
        }
        let cfg = CompactorConfig {
            range_ms: 24 * H,
            grace_ms: 4 * H,
            retention_ms: None,
            tenant_retention_ms: Default::default(),
            deletion_delay_ms: H,
        };
        let c = Compactor::new(Arc::clone(&store), cfg.clone(), BlockOptions::default());
        let rep = c.run_once(20 * H).await.unwrap();
        assert_eq!(rep.merged, 0, "the day is not closed yet");
        let rep = c.run_once(28 * H).await.unwrap();
        assert_eq!((rep.merged, rep.marked, rep.failures), (1, 0, 0));
        let cat = Catalog::new(Arc::clone(&store));
        assert_eq!(cat.refresh().await.unwrap(), 1);
        let metas = cat.metas("tenant-a");
        assert_eq!(
            (metas[0].min_time, metas[0].max_time, metas[0].compaction.level),
            (0, 24 * H, 2)
        );
        assert_eq!(metas[0].compaction.sources.len(), 4);
        let all = cat.overlapping("tenant-a", 0, 24 * H)[0].read_all().await.unwrap();
        assert_eq!(all.len(), 3);
        // Series 1: 4 samples in [0,2h) once (deduplicated) and 4 in [2h, 4h).
        assert_eq!(all[0].samples.len(), 8);
        let index: BucketIndex = serde_json::from_slice(
            &store.get(&paths::bucket_index("tenant-a")).await.unwrap().bytes().await.unwrap(),
        )
        .unwrap();
        assert_eq!(index.blocks.len(), 1);
        assert_eq!(index.deletion_marks.len(), 4);
        // After the delay the sources are deleted; with a 1-day retention, so is the rest.
        let rep = c.run_once(30 * H).await.unwrap();
        assert_eq!(rep.deleted, 4);
        assert_eq!(list_blocks(&store, "tenant-a").await.unwrap().complete.len(), 1);
        let cfg = CompactorConfig { retention_ms: Some(24 * H), ..cfg };
        let c = Compactor::new(Arc::clone(&store), cfg, BlockOptions::default());
        assert_eq!(c.run_once(49 * H).await.unwrap().marked, 1);
        assert_eq!(cat.refresh().await.unwrap(), 0);
        assert_eq!(c.run_once(51 * H).await.unwrap().deleted, 1);
        assert!(list_blocks(&store, "tenant-a").await.unwrap().complete.is_empty());
    });
}
