//! Matchers, label queries and dumps, checked by hand and against a linear scan.

use proptest::prelude::*;
use strata_model::MatchOp;

use super::*;

fn matcher_fixture() -> Head {
    let mut head = Head::default();
    app(&mut head, "t", &[("__name__", "up"), ("instance", "a"), ("job", "node")], &[1000], &[1.0]);
    app(&mut head, "t", &[("__name__", "up"), ("instance", "b"), ("job", "prom")], &[1000], &[1.0]);
    app(&mut head, "t", &[("__name__", "up"), ("instance", "c")], &[1000], &[1.0]);
    app(&mut head, "t", &[("__name__", "down"), ("job", "node")], &[5000], &[1.0]);
    // Another tenant with overlapping labels.
    app(&mut head, "u", &[("__name__", "up"), ("job", "other")], &[1000], &[1.0]);
    head
}

#[test]
fn matchers() {
    use MatchOp::*;
    let head = matcher_fixture();
    let (a, b, c, d) = (
        "__name__=up,instance=a,job=node",
        "__name__=up,instance=b,job=prom",
        "__name__=up,instance=c",
        "__name__=down,job=node",
    );
    let cases: Vec<(Vec<Matcher>, Vec<&str>)> = vec![
        (vec![], vec![a, b, c, d]),
        (vec![m(Equal, "job", "node")], vec![a, d]),
        (vec![m(NotEqual, "job", "node")], vec![b, c]),
        (vec![m(Regex, "job", "node|prom")], vec![a, b, d]),
        (vec![m(NotRegex, "job", "no.*")], vec![b, c]),
        (vec![m(Equal, "job", "")], vec![c]),
        (vec![m(NotEqual, "job", "")], vec![a, b, d]),
        (vec![m(Regex, "job", ".*")], vec![a, b, c, d]),
        (vec![m(Regex, "job", ".+")], vec![a, b, d]),
        (vec![m(NotRegex, "job", "")], vec![a, b, d]),
        (vec![m(Regex, "job", "|prom")], vec![b, c]),
        (vec![m(Equal, "__name__", "up"), m(NotEqual, "job", "prom")], vec![a, c]),
        (
            vec![m(Equal, "__name__", "up"), m(Regex, "instance", "[ab]"), m(Equal, "job", "prom")],
            vec![b],
        ),
        (vec![m(Equal, "nolabel", "x")], vec![]),
        (vec![m(Equal, "job", "never-seen")], vec![]),
        (vec![m(NotEqual, "nolabel", "x")], vec![a, b, c, d]),
        (vec![m(Equal, "nolabel", "")], vec![a, b, c, d]),
        (vec![m(Equal, "job", "other")], vec![]),
    ];
    for (ms, want) in cases {
        assert_eq!(selected(&head, "t", &ms, 0, 10_000), want, "{ms:?}");
    }
    assert_eq!(
        selected(&head, "u", &[m(Equal, "__name__", "up")], 0, 10_000),
        vec!["__name__=up,job=other"]
    );
    assert!(selected(&head, "nobody", &[], 0, 10_000).is_empty());
    // Time ranges.
    assert_eq!(selected(&head, "t", &[m(Equal, "job", "node")], 2000, 10_000), vec![d]);
    assert_eq!(selected(&head, "t", &[], 1001, 4999), Vec::<String>::new());
}

#[test]
fn label_names_and_values() {
    use MatchOp::*;
    let head = matcher_fixture();
    assert_eq!(head.label_names("t", &[], 0, 10_000), vec!["__name__", "instance", "job"]);
    assert_eq!(head.label_names("t", &[], 2000, 10_000), vec!["__name__", "job"]);
    assert_eq!(
        head.label_names("t", &[m(Equal, "job", "")], 0, 10_000),
        vec!["__name__", "instance"]
    );
    assert_eq!(head.label_names("u", &[], 0, 10_000), vec!["__name__", "job"]);
    assert_eq!(head.label_values("t", "job", &[], 0, 10_000), vec!["node", "prom"]);
    assert_eq!(head.label_values("t", "__name__", &[], 0, 10_000), vec!["down", "up"]);
    assert_eq!(head.label_values("t", "__name__", &[], 0, 2000), vec!["up"]);
    assert_eq!(
        head.label_values("t", "instance", &[m(Equal, "job", "prom")], 0, 10_000),
        vec!["b"]
    );
    assert_eq!(
        head.label_values("t", "job", &[m(Equal, "__name__", "up")], 0, 10_000),
        vec!["node", "prom"]
    );
    assert_eq!(head.label_values("t", "nolabel", &[], 0, 10_000), Vec::<String>::new());
    assert_eq!(head.label_values("u", "job", &[], 0, 10_000), vec!["other"]);
    assert_eq!(head.label_values("none", "job", &[], 0, 10_000), Vec::<String>::new());
}

#[test]
fn for_each_series_dumps_everything() {
    let head = matcher_fixture();
    let mut seen = Vec::new();
    head.for_each_series(|tenant, labels, samples| {
        seen.push((
            tenant.to_owned(),
            labels.get("__name__").unwrap_or("").to_owned(),
            samples.to_vec(),
        ));
    });
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0].0, "t");
    assert_eq!(seen[4], ("u".into(), "up".into(), vec![Sample { t: 1000, v: 1.0 }]));

    // Re-appending the dump rebuilds the same head.
    let mut copy = Head::default();
    head.for_each_series(|tenant, labels, samples| {
        let ts: Vec<i64> = samples.iter().map(|s| s.t).collect();
        let vs: Vec<f64> = samples.iter().map(|s| s.v).collect();
        copy.append_labels(tenant, labels, &ts, &vs, &mut ApplyReport::default());
    });
    let (a, b) = (head.stats(), copy.stats());
    assert_eq!((a.tenants, a.series, a.samples), (b.tenants, b.series, b.samples));
    assert_eq!(
        selected(&copy, "t", &[m(MatchOp::Equal, "job", "")], 0, 10_000),
        vec!["__name__=up,instance=c"]
    );
}

#[test]
fn series_with_a_gap_is_not_selected_inside_it() {
    let mut head = Head::default();
    app(&mut head, "t", UP, &[1000, 2000, 9000], &[1.0, 2.0, 3.0]);
    assert!(head.select("t", &[], 3000, 8000).is_empty());
    assert_eq!(head.select("t", &[], 3000, 9000).len(), 1);
    assert_eq!(head.select("t", &[], 2000, 2000).len(), 1);
}

#[derive(Debug, Clone)]
struct RandomSeries {
    labels: Vec<(&'static str, &'static str)>,
    ts: Vec<i64>,
}

fn random_series() -> impl Strategy<Value = RandomSeries> {
    let value = prop::option::of(prop::sample::select(vec!["x", "y", "z", "xy"]));
    (prop::collection::vec(value, 3), prop::collection::btree_set(0i64..100, 1..5)).prop_map(
        |(values, ts)| {
            let labels = ["a", "b", "c"]
                .into_iter()
                .zip(values)
                .filter_map(|(n, v)| v.map(|v| (n, v)))
                .collect();
            RandomSeries { labels, ts: ts.into_iter().collect() }
        },
    )
}

fn random_matcher() -> impl Strategy<Value = Matcher> {
    let op = prop::sample::select(vec![
        MatchOp::Equal,
        MatchOp::NotEqual,
        MatchOp::Regex,
        MatchOp::NotRegex,
    ]);
    let name = prop::sample::select(vec!["a", "b", "c", "d"]);
    let value = prop::sample::select(vec!["", "x", "y", "xy", "x|y", ".*", ".+", "x.*", "|z"]);
    (op, name, value).prop_map(|(op, n, v)| m(op, n, v))
}

proptest! {
    #[test]
    fn select_matches_linear_scan(
        series in prop::collection::vec(random_series(), 0..25),
        matchers in prop::collection::vec(random_matcher(), 0..4),
        range in (0i64..110, 0i64..110),
    ) {
        let (mint, maxt) = (range.0.min(range.1), range.0.max(range.1));
        let mut head = Head::default();
        let mut distinct: Vec<&RandomSeries> = Vec::new();
        for s in &series {
            if s.labels.is_empty() || distinct.iter().any(|d| d.labels == s.labels) {
                continue;
            }
            let vs = vec![1.0; s.ts.len()];
            app(&mut head, "t", &s.labels, &s.ts, &vs);
            distinct.push(s);
        }
        let want: Vec<String> = distinct
            .iter()
            .filter(|s| {
                matchers.iter().all(|m| {
                    let v = s.labels.iter().find(|(n, _)| *n == m.name).map_or("", |l| l.1);
                    m.matches(v)
                }) && s.ts.iter().any(|t| mint <= *t && *t <= maxt)
            })
            .map(|s| s.labels.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(","))
            .collect();
        prop_assert_eq!(selected(&head, "t", &matchers, mint, maxt), want);
    }
}
