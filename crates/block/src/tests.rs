//! Round trips through a block.
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use proptest::prelude::*;
use strata_head::{Head, HeadConfig};
use strata_model::{ApplyReport, Labels, MatchOp, Matcher, RawSeries, Sample, STALE_NAN_BITS};

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
        // Label values read from the label's own column equal those of the matching series.
        let sets = [
            vec![],
            vec![Matcher::new(MatchOp::Equal, "job", "odd").unwrap()],
            vec![Matcher::new(MatchOp::Regex, "__name__", "metric_0[3-5]").unwrap()],
            vec![Matcher::new(MatchOp::Equal, "__name__", "metric_07").unwrap()],
            vec![Matcher::new(MatchOp::Equal, "gpu", "").unwrap()],
            vec![Matcher::new(MatchOp::Equal, "gpu", "0").unwrap()],
        ];
        for name in ["__name__", "instance", "job", "gpu"] {
            for set in &sets {
                let mut got = std::collections::BTreeSet::new();
                r.label_values(name, set, &mut got).await.unwrap();
                let want: std::collections::BTreeSet<String> = r
                    .series(set)
                    .await
                    .unwrap()
                    .iter()
                    .filter_map(|l| l.get(name).map(str::to_string))
                    .collect();
                assert_eq!(got, want, "{name} {set:?}");
            }
        }
        let v = verify(Arc::clone(&r.store_for_test()), r.meta().clone()).await.unwrap();
        assert!(v.problems.is_empty(), "{v:?}");
    });
}

#[test]
fn a_meta_naming_more_data_columns_than_the_file_holds_is_corrupt() {
    let l = Labels::from_pairs([("__name__", "x")]);
    let opts = BlockOptions { data_column_ms: 300_000, ..BlockOptions::default() };
    let samples = (0..100).map(|k| Sample { t: k * 15_000, v: k as f64 }).collect();
    let built = build(desc(0, 2 * H), vec![(l, samples)], &opts).unwrap();
    rt().block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        upload(&store, &built).await.unwrap();
        let mut meta = built.meta.clone();
        meta.parquet.data_columns += 1;
        let e = BlockReader::open(Arc::clone(&store), meta).await.unwrap_err();
        assert!(e.to_string().contains("data columns"), "{e}");
        // A layout readers would misread: columns that do not cover the range as written
        // (a zero, negative or huge duration), an empty range, unsorted label names.
        let broken: [fn(&mut BlockMeta); 5] = [
            |m| m.parquet.data_column_duration_ms = 0,
            |m| m.parquet.data_column_duration_ms = -300_000,
            |m| m.parquet.data_column_duration_ms = i64::MAX,
            |m| m.max_time = m.min_time,
            |m| m.parquet.label_names = vec!["b".into(), "a".into()],
        ];
        for f in broken {
            let mut meta = built.meta.clone();
            f(&mut meta);
            let e = BlockReader::open(Arc::clone(&store), meta).await.unwrap_err();
            assert!(e.to_string().contains("meta.json"), "{e}");
        }
        assert!(BlockReader::open(store, built.meta.clone()).await.is_ok());
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
            let mut t = 0;
            let (ts, vs): (Vec<i64>, Vec<f64>) = samples.iter().map(|(d, v)| { t += d; (t, *v) }).unzip();
            head.append_labels("tenant-a", &l, &ts, &vs, &mut report);
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

/// Days merged 4h after they end; marks kept 1h, abandoned uploads 24h; no retention.
fn compactor_config() -> crate::compact::CompactorConfig {
    crate::compact::CompactorConfig {
        range_ms: 24 * H,
        grace_ms: 4 * H,
        retention_ms: None,
        tenant_retention_ms: Default::default(),
        deletion_delay_ms: H,
        partial_delay_ms: 24 * H,
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
        let cfg = compactor_config();
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

#[test]
fn one_bad_object_does_not_stop_the_tenants_compaction_or_retention() {
    use crate::compact::{Compactor, CompactorConfig};
    rt().block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mk = |key: &str, min: i64| {
            let mut d = desc(min, min + 2 * H);
            d.id = BlockId::derived(min, key.as_bytes());
            let l = Labels::from_pairs([("__name__", "up"), ("k", key)]);
            let rows = vec![(l, vec![Sample { t: min, v: 1.0 }])];
            build(d, rows, &BlockOptions::default()).unwrap()
        };
        // Day 0: two blocks, one of whose chunks file is garbage (its merge fails). Day 1: two
        // sound blocks. Day 2: a block whose meta.json does not parse, and one whose
        // deletion mark does not parse.
        let (bad0, ok0) = (mk("bad0", 0), mk("ok0", 2 * H));
        let (a1, b1) = (mk("a1", 24 * H), mk("b1", 26 * H));
        let (badmeta, marked) = (mk("badmeta", 48 * H), mk("marked", 50 * H));
        for b in [&bad0, &ok0, &a1, &b1, &badmeta, &marked] {
            upload(&store, b).await.unwrap();
        }
        let file =
            |b: &BuiltBlock, f: &str| paths::block_file("tenant-a", &b.meta.ulid.to_string(), f);
        store.put(&file(&bad0, paths::CHUNKS), b"not parquet".to_vec().into()).await.unwrap();
        store.put(&file(&badmeta, paths::META), b"{".to_vec().into()).await.unwrap();
        store.put(&file(&marked, paths::DELETION_MARK), b"{}".to_vec().into()).await.unwrap();

        let cfg = CompactorConfig { deletion_delay_ms: 0, ..compactor_config() };
        let c = Compactor::new(Arc::clone(&store), cfg, BlockOptions::default());
        // Now, not a time in 1970: the unreadable mark is dated by its object's write time.
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                as i64;
        let rep = c.run_once(now + 1000).await.unwrap();
        // Day 1 merged although day 0 failed; the unreadable meta counted; the block with an
        // unreadable mark deleted (dated by its object, the delay is 0).
        assert_eq!((rep.merged, rep.deleted), (1, 1), "{rep:?}");
        assert_eq!(rep.failures, 2, "{rep:?}");
        let listing = list_blocks(&store, "tenant-a").await.unwrap();
        assert!(
            listing.complete.contains(&bad0.meta.ulid) && listing.complete.contains(&ok0.meta.ulid)
        );
        assert!(listing.marked.contains(&a1.meta.ulid) && listing.marked.contains(&b1.meta.ulid));
        assert!(!listing.complete.contains(&marked.meta.ulid));
        // The bucket index was written, with the day-0 blocks and the merged day 1.
        let index: BucketIndex = serde_json::from_slice(
            &store.get(&paths::bucket_index("tenant-a")).await.unwrap().bytes().await.unwrap(),
        )
        .unwrap();
        assert_eq!(index.blocks.len(), 3);
    });
}

#[test]
fn compactor_deletes_abandoned_uploads_only_after_the_delay() {
    use crate::compact::Compactor;
    rt().block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let rows = |t: i64| {
            vec![(Labels::from_pairs([("__name__", "up".to_string())]), vec![Sample { t, v: 1.0 }])]
        };
        let done = build(desc(0, 2 * H), rows(0), &BlockOptions::default()).unwrap();
        let mut d = desc(2 * H, 4 * H);
        d.id = BlockId::derived(2 * H, b"partial");
        let partial = build(d, rows(2 * H), &BlockOptions::default()).unwrap();
        upload(&store, &done).await.unwrap();
        upload(&store, &partial).await.unwrap();
        // An upload that stopped before its meta.json.
        let pid = partial.meta.ulid.to_string();
        store.delete(&paths::block_file("tenant-a", &pid, paths::META)).await.unwrap();
        let listing = list_blocks(&store, "tenant-a").await.unwrap();
        assert_eq!(listing.partial.keys().copied().collect::<Vec<_>>(), vec![partial.meta.ulid]);
        assert!(listing.complete.contains(&done.meta.ulid));

        let cfg = compactor_config();
        let c = Compactor::new(Arc::clone(&store), cfg, BlockOptions::default());
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                as i64;
        // Written just now: it may still be uploading.
        assert_eq!(c.run_once(now + H).await.unwrap().partial_deleted, 0);
        assert_eq!(list_blocks(&store, "tenant-a").await.unwrap().partial.len(), 1);
        let rep = c.run_once(now + 25 * H).await.unwrap();
        assert_eq!((rep.partial_deleted, rep.failures), (1, 0));
        let listing = list_blocks(&store, "tenant-a").await.unwrap();
        assert!(listing.partial.is_empty());
        assert_eq!(listing.complete.iter().copied().collect::<Vec<_>>(), vec![done.meta.ulid]);
        let left: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(
            store.list(Some(&paths::block("tenant-a", &pid))),
        )
        .await
        .unwrap();
        assert!(left.is_empty(), "{left:?}");
    });
}

/// Compaction streams its sources a row group at a time; the result must equal uniting them
/// all in memory, whatever row-group boundaries and label sets the sources have.
#[test]
fn merge_streams_overlapping_sources_across_row_groups() {
    rt().block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let opts = BlockOptions { row_group_rows: 3, data_column_ms: H / 2, ..Default::default() };
        let labels = |i: usize| {
            let mut pairs = vec![
                ("__name__", format!("metric_{}", i % 3)),
                ("instance", format!("host-{}", i % 7)),
                ("job", format!("j{i}")),
            ];
            if i.is_multiple_of(4) {
                pairs.push(("zone", format!("z{}", i % 5)));
            }
            Labels::from_pairs(pairs)
        };
        let mut metas = Vec::new();
        let mut parts = Vec::new();
        for src in 0..3usize {
            let rows: Vec<(Labels, Vec<Sample>)> = (0..25)
                .filter(|i| (i * 7 + src) % 3 != 0)
                .map(|i| {
                    // Sources overlap in time; values say which source a sample came from.
                    let samples = (src as i64 * 30..src as i64 * 30 + 60)
                        .map(|k| Sample {
                            t: k * 60_000,
                            v: (src * 1000 + i) as f64 + k as f64 / 64.0,
                        })
                        .collect();
                    (labels(i), samples)
                })
                .collect();
            parts.push(
                rows.iter()
                    .map(|(l, s)| RawSeries { labels: l.clone(), samples: s.clone() })
                    .collect::<Vec<_>>(),
            );
            let mut d = desc(0, 2 * H);
            d.id = BlockId::derived(0, format!("src{src}").as_bytes());
            let built = build(d, rows, &opts).unwrap();
            upload(&store, &built).await.unwrap();
            metas.push(built.meta);
        }
        let meta = crate::compact::merge(&store, &metas, (0, 2 * H), &opts, 0).await.unwrap();
        let want = strata_model::merge_series(parts);
        assert_eq!(meta.stats.num_series, want.len() as u64);
        assert_eq!(
            meta.stats.num_samples,
            want.iter().map(|s| s.samples.len() as u64).sum::<u64>()
        );
        let r = BlockReader::open(Arc::clone(&store), meta).await.unwrap();
        assert!(r.num_row_groups() > 5);
        let mut got = r.read_all().await.unwrap();
        got.sort_by(|a, b| a.labels.cmp(&b.labels));
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.labels, w.labels);
            assert_eq!(bits(&g.samples), bits(&w.samples), "{:?}", g.labels);
        }
        // Every source is marked for deletion.
        for m in &metas {
            let mark = paths::block_file("tenant-a", &m.ulid.to_string(), paths::DELETION_MARK);
            assert!(store.head(&mark).await.is_ok());
        }
    });
}

#[test]
fn an_abandoned_upload_written_again_is_not_deleted() {
    use crate::compact::Compactor;
    rt().block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let labels = Labels::from_pairs([("__name__", "up".to_string())]);
        let mut d = desc(0, 2 * H);
        d.id = BlockId::derived(0, b"again");
        let b = build(d, vec![(labels, vec![Sample { t: 0, v: 1.0 }])], &BlockOptions::default())
            .unwrap();
        let (id, meta) =
            (b.meta.ulid, paths::block_file("tenant-a", &b.meta.ulid.to_string(), paths::META));
        let cfg = compactor_config();
        let delay = cfg.partial_delay_ms;
        let c = Compactor::new(Arc::clone(&store), cfg, BlockOptions::default());
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                as i64;
        // A listing found this folder unfinished and old, but a repeated flush wrote the
        // same block again, `meta.json` included, before the delete: it stays.
        upload(&store, &b).await.unwrap();
        assert!(!c.delete_abandoned("tenant-a", id, now + delay + H).await.unwrap());
        assert!(list_blocks(&store, "tenant-a").await.unwrap().complete.contains(&id));
        // Written again but not finished yet (no `meta.json`, files younger than the delay).
        store.delete(&meta).await.unwrap();
        assert!(!c.delete_abandoned("tenant-a", id, now + delay / 2).await.unwrap());
        assert_eq!(list_blocks(&store, "tenant-a").await.unwrap().partial.len(), 1);
        // Unfinished and old: deleted.
        assert!(c.delete_abandoned("tenant-a", id, now + delay + H).await.unwrap());
        assert!(list_blocks(&store, "tenant-a").await.unwrap().partial.is_empty());
    });
}

#[test]
fn tenants_whose_names_are_escaped_in_the_bucket_are_found_again() {
    rt().block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let labels = Labels::from_pairs([("__name__", "up".to_string())]);
        let mut d = desc(0, 2 * H);
        d.tenant = "a*b".into();
        let b = build(d, vec![(labels, vec![Sample { t: 0, v: 1.0 }])], &BlockOptions::default())
            .unwrap();
        upload(&store, &b).await.unwrap();
        assert_eq!(list_tenants(&store).await.unwrap(), vec!["a*b".to_string()]);
        let cat = Catalog::new(Arc::clone(&store));
        assert_eq!(cat.refresh().await.unwrap(), 1);
        assert_eq!(cat.metas("a*b").len(), 1);
    });
}

#[test]
fn a_block_that_will_not_open_keeps_what_it_may_replace_but_not_what_is_gone() {
    rt().block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let labels = Labels::from_pairs([("__name__", "up".to_string())]);
        let block = |min: i64, key: &[u8]| {
            let mut d = desc(min, min + 2 * H);
            d.id = BlockId::derived(min, key);
            build(
                d,
                vec![(labels.clone(), vec![Sample { t: min, v: 1.0 }])],
                &BlockOptions::default(),
            )
            .unwrap()
        };
        let (a, b) = (block(0, b"a"), block(2 * H, b"b"));
        upload(&store, &a).await.unwrap();
        let cat = Catalog::new(Arc::clone(&store));
        assert_eq!(cat.refresh().await.unwrap(), 1);
        // `a` gets a deletion mark while `b`, which will not open (its meta.json names a data
        // column chunks.parquet lacks), appears: `a` is still served.
        let put = |path, bytes: Vec<u8>| {
            let store = Arc::clone(&store);
            async move { store.put(&path, object_store::PutPayload::from(bytes)).await.unwrap() }
        };
        let (ida, idb) = (a.meta.ulid.to_string(), b.meta.ulid.to_string());
        put(paths::block_file("tenant-a", &ida, paths::DELETION_MARK), b"{}".to_vec()).await;
        upload(&store, &b).await.unwrap();
        let mut bad = b.meta.clone();
        bad.parquet.data_columns += 5;
        put(paths::block_file("tenant-a", &idb, paths::META), serde_json::to_vec(&bad).unwrap())
            .await;
        assert_eq!(cat.refresh().await.unwrap(), 1);
        assert_eq!(cat.metas("tenant-a")[0].ulid, a.meta.ulid);
        // Once `a` is gone from the bucket it is forgotten, though `b` still fails.
        for f in [paths::LABELS, paths::CHUNKS, paths::META, paths::DELETION_MARK] {
            store.delete(&paths::block_file("tenant-a", &ida, f)).await.unwrap();
        }
        assert_eq!(cat.refresh().await.unwrap(), 0);
    });
}

#[test]
fn large_files_go_up_in_parts_and_read_back_whole() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let data =
            bytes::Bytes::from((0..10_000u32).flat_map(|i| i.to_le_bytes()).collect::<Vec<u8>>());
        for store in [local, memory] {
            let path = paths::block_file("t", "B", paths::CHUNKS);
            // Parts of 4 KiB (the last one short), above a 1 KiB threshold.
            put_file_with(&store, &path, &data, 1024, 4096).await.unwrap();
            assert_eq!(store.get(&path).await.unwrap().bytes().await.unwrap(), data);
        }
    });
}

#[test]
fn verify_finds_samples_a_query_would_look_for_in_another_column() {
    let l = Labels::from_pairs([("__name__", "x")]);
    let opts = BlockOptions { data_column_ms: 300_000, ..BlockOptions::default() };
    let samples = (0..480).map(|k| Sample { t: k * 15_000, v: k as f64 }).collect();
    let built = build(desc(0, 2 * H), vec![(l, samples)], &opts).unwrap();
    rt().block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        upload(&store, &built).await.unwrap();
        let v = verify(Arc::clone(&store), built.meta.clone()).await.unwrap();
        assert!(v.problems.is_empty(), "{v:?}");
        assert_eq!((v.series, v.samples), (1, 480));
        // 12 columns of 10 minutes also cover 2h, but the file's columns hold 5 minutes each:
        // a query for minutes 10-20 would read column 1, which holds minutes 5-10.
        let mut meta = built.meta.clone();
        meta.parquet.data_columns = 12;
        meta.parquet.data_column_duration_ms = 600_000;
        let v = verify(store, meta).await.unwrap();
        assert!(v.problems.iter().any(|p| p.contains("outside data column 1's window")), "{v:?}");
    });
}
