use std::path::Path;

use super::*;
use crate::config::ScrapeSection;

fn job(yaml: &str) -> ScrapeConfig {
    let section = ScrapeSection::from_yaml(yaml, "t.yml").unwrap();
    let mut c = section.validate(Path::new("/cfg")).unwrap();
    c.scrape_configs.remove(0)
}

fn pairs(l: &Labels) -> Vec<(&str, &str)> {
    l.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect()
}

fn active(o: &Outcome) -> &Target {
    match o {
        Outcome::Active(t) => t,
        Outcome::Dropped(l) => panic!("dropped: {l:?}"),
    }
}

#[test]
fn static_targets_get_prometheus_labels() {
    let cfg = job("scrape_configs:
- job_name: node
  scrape_interval: 1m30s
  params: {module: [http_2xx, x], 'a b': ['c&d']}
  static_configs:
  - targets: ['host1:9100', 'host2:9100']
    labels: {env: prod}");
    let (out, errors) = targets_from_group(&cfg, &cfg.static_configs[0]);
    assert!(errors.is_empty(), "{errors:?}");
    let t = active(&out[0]);
    assert_eq!(
        pairs(&t.labels),
        [
            ("__address__", "host1:9100"),
            ("__metrics_path__", "/metrics"),
            ("__param_a b", "c&d"),
            ("__param_module", "http_2xx"),
            ("__scheme__", "http"),
            ("__scrape_interval__", "1m30s"),
            ("__scrape_timeout__", "10s"),
            ("env", "prod"),
            ("instance", "host1:9100"),
            ("job", "node"),
        ]
    );
    assert_eq!(
        pairs(&t.public_labels()),
        [("env", "prod"), ("instance", "host1:9100"), ("job", "node")]
    );
    assert_eq!(t.url(), "http://host1:9100/metrics?a+b=c%26d&module=http_2xx&module=x");
    assert_eq!((t.interval().as_secs(), t.timeout().as_secs()), (90, 10));
    assert_eq!(active(&out[1]).address(), "host2:9100");
}

#[test]
fn relabeling_rewrites_address_path_params_and_drops() {
    // The blackbox-exporter pattern from Prometheus' documentation.
    let cfg = job("scrape_configs:
- job_name: blackbox
  metrics_path: /probe
  params: {module: [http_2xx]}
  static_configs:
  - targets: ['https://example.com/x', 'skip.me']
  relabel_configs:
  - {source_labels: [__address__], regex: 'skip.*', action: drop}
  - {source_labels: [__address__], target_label: __param_target}
  - {source_labels: [__param_target], target_label: instance}
  - {target_label: __address__, replacement: '127.0.0.1:9115'}
  - {target_label: __meta_extra, replacement: gone}
  - {target_label: __scheme__, replacement: https}");
    let (out, errors) = targets_from_group(&cfg, &cfg.static_configs[0]);
    assert!(errors.is_empty(), "{errors:?}");
    let t = active(&out[0]);
    assert_eq!(
        t.url(),
        "https://127.0.0.1:9115/probe?module=http_2xx&target=https%3A%2F%2Fexample.com%2Fx"
    );
    assert_eq!(
        pairs(&t.public_labels()),
        [("instance", "https://example.com/x"), ("job", "blackbox")]
    );
    assert!(t.labels.get("__meta_extra").is_none(), "__meta_ labels are removed after relabeling");
    assert_eq!(t.discovered_labels.get("__address__"), Some("https://example.com/x"));
    match &out[1] {
        Outcome::Dropped(l) => assert_eq!(l.get("__address__"), Some("skip.me")),
        o => panic!("{o:?}"),
    }
}

#[test]
fn target_labels_win_and_group_labels_can_set_internals() {
    let cfg = job("scrape_configs:
- job_name: j
  static_configs:
  - targets: ['a:1']
    labels: {job: custom, __metrics_path__: /m, __scrape_interval__: 30s, __scrape_timeout__: 30s, instance: fixed}");
    let (out, _) = targets_from_group(&cfg, &cfg.static_configs[0]);
    let t = active(&out[0]);
    assert_eq!(pairs(&t.public_labels()), [("instance", "fixed"), ("job", "custom")]);
    assert_eq!(t.url(), "http://a:1/m");
    assert_eq!(t.interval().as_secs(), 30);
}

#[test]
fn invalid_targets_report_prometheus_errors() {
    let cases = [
        ("[{target_label: __address__, replacement: ''}]", "no address"),
        ("[{target_label: __address__, replacement: 'h/x'}]", r#""h/x" is not a valid hostname"#),
        (
            "[{target_label: __scrape_interval__, replacement: soon}]",
            "error parsing scrape interval",
        ),
        ("[{target_label: __scrape_interval__, replacement: '0s'}]", "scrape interval cannot be 0"),
        ("[{target_label: __scrape_timeout__, replacement: '0s'}]", "scrape timeout cannot be 0"),
        (
            "[{target_label: __scrape_timeout__, replacement: '2m'}]",
            r#"scrape timeout cannot be greater than scrape interval ("2m" > "1m")"#,
        ),
        ("[{target_label: __scheme__, replacement: ftp}]", r#"invalid scheme: "ftp""#),
    ];
    for (rules, want) in cases {
        let cfg = job(&format!(
            "scrape_configs:\n- job_name: j\n  static_configs: [{{targets: ['a:1']}}]\n  relabel_configs: {rules}\n"
        ));
        let (out, errors) = targets_from_group(&cfg, &cfg.static_configs[0]);
        assert!(out.is_empty());
        assert_eq!(errors.len(), 1);
        let e = errors[0].to_string();
        assert!(e.contains(want) && e.starts_with("instance 0 in group 0: "), "{rules}: {e}");
    }
}

#[test]
fn url_escaping_follows_go() {
    let cfg = job("scrape_configs:
- job_name: j
  metrics_path: 'metrics path?x'
  static_configs: [{targets: ['[::1]:9090']}]");
    let (out, _) = targets_from_group(&cfg, &cfg.static_configs[0]);
    assert_eq!(active(&out[0]).url(), "http://[::1]:9090/metrics%20path%3Fx");
}

#[test]
fn file_sd_files_parse_to_groups() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/file_sd");
    let json = read_file_sd(&dir.join("nodes.json")).unwrap();
    assert_eq!(json.len(), 2);
    assert_eq!(json[0].targets, ["node1:9100", "node2:9100"]);
    let path = dir.join("nodes.json").display().to_string();
    assert_eq!(
        pairs(&json[0].labels),
        [("__meta_filepath", path.as_str()), ("env", "prod"), ("rack", "r1")]
    );
    assert_eq!(json[1].source, format!("{path}:1"));
    let yml = read_file_sd(&dir.join("nodes.yml")).unwrap();
    assert_eq!(yml[0].labels.get("shard"), Some("3"));
    assert!(yml[1].targets.is_empty());

    let cfg = FileSdConfig {
        files: vec![dir.join("*.json"), dir.join("nodes.y?l"), dir.join("none.yml")],
        refresh_interval: Duration::from_secs(1),
    };
    let (by_file, errors) = load_file_sd(&cfg, &FileGroups::new());
    assert!(errors.is_empty(), "{errors:?}");
    let groups: Vec<TargetGroup> = by_file.values().flatten().cloned().collect();
    assert_eq!(groups.len(), 4);

    // The file path reaches relabeling as __meta_filepath and is gone afterwards.
    let job = job("scrape_configs:
- job_name: f
  file_sd_configs: [{files: ['x.json']}]
  relabel_configs:
  - {source_labels: [__meta_filepath], regex: '.*/(.*)\\.json', target_label: file}");
    let (out, _) = targets_from_group(&job, &groups[0]);
    let t = active(&out[0]);
    assert_eq!(t.public_labels().get("file"), Some("nodes"));
    assert!(t.labels.get(FILEPATH_LABEL).is_none());
}

#[test]
fn bad_file_sd_content() {
    let p = Path::new("/sd/t.json");
    for (content, path, want) in [
        (
            "[{\"targets\": [\"a\"], \"labels\": {\"a-b\": \"x\"}}]",
            p,
            r#""a-b" is not a valid label name"#,
        ),
        ("[{\"targets\": [\"a\"], \"labels\": {\"n\": 1}}]", p, "must be a string"),
        ("[null]", p, "nil target group item found"),
        ("[{\"target\": []}]", p, "unknown field"),
        ("{", p, "expected a sequence"),
        ("- targets: [a]\n  labelz: {}\n", Path::new("/sd/t.yml"), "unknown field `labelz`"),
        ("[]", Path::new("/sd/t.txt"), "unknown file extension"),
    ] {
        let e = parse_file_sd(content, path).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("/sd/t."), "{content}: {e}");
    }
    assert!(parse_file_sd("", Path::new("/sd/t.YAML")).unwrap().is_empty());
}

#[test]
fn a_file_sd_file_that_fails_keeps_its_last_good_targets() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/file_sd");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for f in ["nodes.json", "nodes.yml"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let cfg = FileSdConfig {
        files: vec![dir.join("*.json"), dir.join("*.yml")],
        refresh_interval: Duration::from_secs(1),
    };
    let (good, errors) = load_file_sd(&cfg, &FileGroups::new());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(good.values().flatten().count(), 4);
    // Caught half-written (or with a typo): its last good groups stay.
    std::fs::write(dir.join("nodes.json"), "[{\"targets\": [").unwrap();
    let (again, errors) = load_file_sd(&cfg, &good);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(again, good);
    // Without earlier groups there is nothing to keep.
    let (fresh, _) = load_file_sd(&cfg, &FileGroups::new());
    assert_eq!(fresh.values().flatten().count(), 2);
    // A file that is gone takes its groups with it.
    std::fs::remove_file(dir.join("nodes.json")).unwrap();
    let (gone, errors) = load_file_sd(&cfg, &good);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(gone.values().flatten().count(), 2);
}
