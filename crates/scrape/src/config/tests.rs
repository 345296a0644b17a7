use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::*;
use crate::relabel::Action;

fn testdata(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn env(k: &str) -> Option<String> {
    (k == "STRATA_TEST_REGION").then(|| "eu-west".to_string())
}

fn load(yaml: &str) -> Result<ScrapeConfigs, String> {
    ScrapeSection::from_yaml(yaml, "t.yml")
        .and_then(|s| s.validate_with_env(Path::new("/cfg"), &env))
        .map_err(|e| e.to_string())
}

#[test]
fn empty_config_has_prometheus_defaults() {
    let c = load("").unwrap();
    assert_eq!(c.global.scrape_interval, Duration::from_secs(60));
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
    assert_eq!(c.global.evaluation_interval, Duration::from_secs(60));
    assert!(c.scrape_configs.is_empty());

    let c = load("scrape_configs:\n- job_name: a\n").unwrap();
    let j = &c.scrape_configs[0];
    assert_eq!(
        (j.scrape_interval, j.scrape_timeout),
        (Duration::from_secs(60), Duration::from_secs(10))
    );
    assert_eq!((j.metrics_path.as_str(), j.scheme.as_str()), ("/metrics", "http"));
    assert!(j.honor_timestamps && !j.honor_labels && j.enable_compression);
    assert!(j.http.follow_redirects && j.http.enable_http2 && j.http.auth.is_none());
    assert_eq!(j.limits, Limits::default());
    assert_eq!(j.scrape_protocols, ScrapeProtocol::DEFAULT.to_vec());
}

#[test]
fn timeout_defaults_to_at_most_the_interval() {
    let c = load("global: {scrape_interval: 5s}\nscrape_configs:\n- {job_name: a}\n- {job_name: b, scrape_interval: 2s}\n- {job_name: c, scrape_interval: 1m}").unwrap();
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(5));
    let t: Vec<_> = c.scrape_configs.iter().map(|j| j.scrape_timeout.as_secs()).collect();
    assert_eq!(t, [5, 2, 5]);
}

/// The example Prometheus ships, read the way the server will read it: its own keys next
/// to `global` and `scrape_configs`.
#[test]
fn prometheus_example_config() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Whole {
        #[serde(default)]
        global: RawGlobal,
        #[serde(default)]
        scrape_configs: Vec<RawScrapeConfig>,
        #[allow(dead_code)]
        alerting: serde_yaml_ng::Value,
        #[allow(dead_code)]
        rule_files: serde_yaml_ng::Value,
    }
    let text = std::fs::read_to_string(testdata("prometheus.yml")).unwrap();
    let whole: Whole = serde_yaml_ng::from_str(&text).unwrap();
    let section = ScrapeSection { global: whole.global, scrape_configs: whole.scrape_configs };
    let c = section.validate(Path::new("/etc/prometheus")).unwrap();
    assert_eq!(c.global.scrape_interval, Duration::from_secs(15));
    assert_eq!(c.global.evaluation_interval, Duration::from_secs(15));
    let job = &c.scrape_configs[0];
    assert_eq!(job.job_name, "prometheus");
    assert_eq!(job.scrape_interval, Duration::from_secs(15));
    assert_eq!(job.static_configs[0].targets, ["localhost:9090"]);
    assert_eq!(job.static_configs[0].labels.get("app"), Some("prometheus"));
}

#[test]
fn every_field() {
    let section = ScrapeSection::from_file(&testdata("conf.good.yml")).unwrap();
    let c = section.validate_with_env(Path::new("/cfg"), &env).unwrap();
    let g = &c.global;
    assert_eq!(
        (g.scrape_interval, g.scrape_timeout),
        (Duration::from_secs(15), Duration::from_secs(10))
    );
    assert_eq!(g.evaluation_interval, Duration::from_secs(30));
    let ext: Vec<_> =
        g.external_labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
    assert_eq!(
        ext,
        [("cost", "$5"), ("foo", "bar"), ("monitor", "codelab"), ("region", "eu-west")]
    );
    assert_eq!(g.limits.body_size_limit, 15 << 20);

    let [prom, x, z, auth, num, utf] = &c.scrape_configs[..] else {
        panic!("{:?}", c.scrape_configs.len())
    };
    assert!(prom.honor_labels);
    assert_eq!(prom.scrape_interval, Duration::from_secs(15));
    assert_eq!(prom.limits.sample_limit, 1500);
    assert_eq!(prom.limits.label_limit, 30);
    assert_eq!(
        prom.scrape_protocols,
        [ScrapeProtocol::OpenMetricsText1_0_0, ScrapeProtocol::PrometheusText0_0_4]
    );
    assert_eq!(prom.file_sd_configs.len(), 2);
    assert_eq!(prom.file_sd_configs[0].files[0], Path::new("/cfg/foo/*.slow.json"));
    assert_eq!(prom.file_sd_configs[0].refresh_interval, Duration::from_secs(600));
    assert_eq!(prom.file_sd_configs[1].refresh_interval, Duration::from_secs(300));
    assert_eq!(prom.static_configs[0].targets, ["localhost:9090", "localhost:9191"]);
    assert_eq!(prom.static_configs[0].labels.get("your"), Some("label"));
    let r = &prom.relabel_configs;
    assert_eq!(r.len(), 6);
    assert_eq!((r[0].regex.as_str(), r[0].replacement.as_str()), ("(.*)some-[regex]", "foo-${1}"));
    assert_eq!(
        (r[1].action, r[1].regex.as_str(), r[1].separator.as_str()),
        (Action::Replace, "(.*)", ";")
    );
    assert_eq!(r[3].regex.as_str(), "", "`regex:` without a value is the empty regex");
    assert_eq!((r[4].action, r[5].action), (Action::KeepEqual, Action::DropEqual));
    assert_eq!(
        prom.http.auth,
        Some(Auth::Header {
            kind: "Bearer".into(),
            credentials: Some(Secret::File("/cfg/valid_token_file".into()))
        })
    );

    assert_eq!(
        (x.scrape_interval, x.scrape_timeout),
        (Duration::from_secs(50), Duration::from_secs(5))
    );
    assert_eq!(x.scrape_protocols, [ScrapeProtocol::PrometheusText0_0_4]);
    assert_eq!(x.fallback_scrape_protocol, Some(ScrapeProtocol::PrometheusText0_0_4));
    assert_eq!(
        x.limits,
        Limits {
            body_size_limit: 10 << 20,
            sample_limit: 1000,
            target_limit: 35,
            label_limit: 10,
            label_name_length_limit: 20,
            label_value_length_limit: 30,
            keep_dropped_targets: 5,
        }
    );
    assert_eq!((x.metrics_path.as_str(), x.scheme.as_str()), ("/my_path", "https"));
    assert!(!x.honor_timestamps && x.track_timestamps_staleness && !x.enable_compression);
    assert!(!x.http.enable_http2 && !x.http.follow_redirects);
    let params: BTreeMap<String, Vec<String>> = [
        ("module".into(), vec!["http_2xx".into()]),
        ("target".into(), vec!["a".into(), "b".into()]),
    ]
    .into();
    assert_eq!(x.params, params);
    assert_eq!(
        x.http.auth,
        Some(Auth::Basic {
            username: Some(Secret::Inline("admin_name".into())),
            password: Some(Secret::Inline("multiline\nmysecret\ntest".into())),
        })
    );
    let actions: Vec<_> = x.relabel_configs.iter().map(|r| r.action).collect();
    use Action::*;
    assert_eq!(
        actions,
        [Drop, HashMod, Keep, LabelMap, LabelDrop, LabelKeep, Lowercase, Uppercase]
    );
    assert_eq!(x.relabel_configs[1].modulus, 8);
    assert_eq!(x.metric_relabel_configs[0].action, Drop);

    let tls = &z.http.tls;
    assert_eq!(tls.ca, Some(Secret::File("/etc/ca.pem".into())));
    assert_eq!(tls.cert, Some(Secret::File("/cfg/valid_cert_file".into())));
    assert_eq!(tls.key, Some(Secret::File("/cfg/valid_key_file".into())));
    assert_eq!(tls.server_name, None);
    assert!(tls.insecure_skip_verify);
    assert_eq!(
        (tls.min_version, tls.max_version),
        (Some(TlsVersion::Tls12), Some(TlsVersion::Tls13))
    );
    assert_eq!(
        z.http.auth,
        Some(Auth::Header {
            kind: "Bearer".into(),
            credentials: Some(Secret::Inline("avalidtoken".into()))
        })
    );
    assert_eq!(
        auth.http.auth,
        Some(Auth::Header {
            kind: "Token".into(),
            credentials: Some(Secret::File("/cfg/creds".into()))
        })
    );
    assert_eq!(num.job_name, "0123service-xxx");
    assert_eq!(utf.job_name, "測試");
    // Secrets stay out of debug output.
    assert!(!format!("{x:?}").contains("mysecret"));
}

#[test]
fn bad_configs_name_the_field() {
    let cases: &[(&str, &[&str])] = &[
        // Unknown keys, with the line.
        ("scrape_configs:\n- job_name: a\n  scrape_intervall: 1m\n", &["scrape_intervall", "line 3"]),
        ("global:\n  scrape_interval: 1m\n  foo: 1\n", &["foo", "line 3"]),
        ("scrape_configs:\n- job_name: a\n  static_configs:\n  - targetz: [a]\n", &["targetz", "line 4"]),
        ("scrape_configs:\n- job_name: a\n  tls_config: {ca_fil: x}\n", &["ca_fil", "line 3"]),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - {target_label: a, regexp: x}\n", &["regexp", "line 4"]),
        // Bad values, with the path and line.
        ("scrape_configs:\n- job_name: a\n  scrape_interval: 1x\n", &["scrape_configs[0].scrape_interval", "unknown unit", "line 3"]),
        ("global:\n  scrape_timeout: soon\n", &["global.scrape_timeout", "not a valid duration", "line 2"]),
        ("scrape_configs:\n- job_name: a\n  scrape_interval: 30\n", &["scrape_interval", "line 3"]),
        ("scrape_configs:\n- job_name: a\n  body_size_limit: 10 MB\n", &["body_size_limit", "invalid byte size"]),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - {source_labels: [a], regex: '(', action: keep}\n", &["scrape_configs[0].relabel_configs", "invalid regex", "line 4"]),
        ("scrape_configs:\n- job_name: a\n  metric_relabel_configs:\n  - {action: explode}\n", &["metric_relabel_configs", r#"unknown relabel action "explode""#]),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - {action: hashmod, target_label: x}\n", &["relabel_configs", "requires non-zero modulus"]),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - {action: labelmap, replacement: '-'}\n", &["relabel_configs", "invalid 'replacement' for labelmap"]),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - {action: replace}\n", &["relabel_configs", "requires 'target_label'"]),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - {action: lowercase, source_labels: [a]}\n", &["requires 'target_label'"]),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - {action: labelkeep, source_labels: [a]}\n", &["labelkeep action requires only 'regex'"]),
        ("scrape_configs:\n- job_name: a\n  static_configs:\n  - labels: {'not$allowed': x}\n", &["static_configs[0].labels", r#""not$allowed" is not a valid label name"#]),
        ("scrape_configs:\n- job_name: a\n  static_configs:\n  - labels: {'not:allowed': x}\n", &[r#""not:allowed" is not a valid label name"#]),
        ("global:\n  external_labels: {'a-b': x}\n", &["global.external_labels", r#""a-b" is not a valid label name"#]),
        ("scrape_configs:\n- job_name: a\n  scrape_protocols: [Foo]\n", &["scrape_protocols", "unknown scrape protocol Foo"]),
        ("scrape_configs:\n- job_name: a\n  fallback_scrape_protocol: PrometheusProto\n", &["fallback_scrape_protocol", "not supported"]),
        ("scrape_configs:\n- job_name: a\n  tls_config: {min_version: TLS14}\n", &["min_version", "unknown TLS version"]),
        ("scrape_configs:\n- job_name: a\n  tls_config: {cert_file: c}\n", &["tls_config", "exactly one of key or key_file"]),
        ("scrape_configs:\n- job_name: a\n  tls_config: {server_name: x}\n", &["tls_config", "server_name is not supported"]),
        ("scrape_configs:\n- job_name: a\n  proxy_url: http://proxy:8080\n", &["scrape_configs[0].proxy_url", "proxies are not supported", "line 3"]),
        ("scrape_configs:\n- job_name: a\n  oauth2: {client_id: x}\n", &["oauth2", "not supported"]),
        ("scrape_configs:\n- job_name: a\n  kubernetes_sd_configs: [{role: pod}]\n", &["kubernetes_sd_configs", "use static_configs or file_sd_configs"]),
        ("scrape_configs:\n- job_name: a\n  honor_labels: maybe\n", &["honor_labels", "line 3"]),
        // Cross-field checks, naming the field.
        ("scrape_configs:\n- scrape_interval: 1m\n", &["scrape_configs[0].job_name", "job_name is empty"]),
        ("scrape_configs:\n- job_name: ''\n", &["job_name is empty"]),
        ("scrape_configs:\n- job_name: a\n- job_name: b\n- job_name: a\n", &["scrape_configs[2].job_name", r#"found multiple scrape configs with job name "a""#]),
        ("scrape_configs:\n- {job_name: a, scrape_interval: 5s, scrape_timeout: 10s}\n", &["scrape_configs[0].scrape_timeout", "scrape timeout greater than scrape interval", "(10s > 5s)"]),
        ("global: {scrape_interval: 5s}\nscrape_configs:\n- {job_name: a, scrape_timeout: 6s}\n", &["scrape_configs[0].scrape_timeout", "greater than scrape interval"]),
        ("global: {scrape_interval: 5s, scrape_timeout: 6s}\n", &["global.scrape_timeout", "global scrape timeout greater than scrape interval"]),
        ("scrape_configs:\n- {job_name: a, scheme: ftp}\n", &["scrape_configs[0].scheme", "ftp"]),
        ("scrape_configs:\n- {job_name: a, scrape_protocols: []}\n", &["scrape_configs[0].scrape_protocols", "cannot be empty"]),
        ("scrape_configs:\n- {job_name: a, scrape_protocols: [PrometheusText0.0.4, PrometheusText0.0.4]}\n", &["duplicated protocol"]),
        ("scrape_configs:\n- {job_name: a, bearer_token: x, bearer_token_file: y}\n", &["scrape_configs[0]", "at most one of bearer_token & bearer_token_file"]),
        ("scrape_configs:\n- {job_name: a, bearer_token: x, basic_auth: {username: u}}\n", &["at most one of basic_auth, oauth2, bearer_token & bearer_token_file"]),
        ("scrape_configs:\n- {job_name: a, authorization: {credentials: x}, basic_auth: {username: u}}\n", &["at most one of basic_auth, oauth2 & authorization"]),
        ("scrape_configs:\n- {job_name: a, authorization: {type: Basic}}\n", &[r#"authorization type cannot be set to "basic""#]),
        ("scrape_configs:\n- {job_name: a, basic_auth: {password: p, password_file: f}}\n", &["basic_auth password & password_file"]),
        ("scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['http://host:80/metrics']}]\n", &["static_configs[0].targets", "is not a valid hostname"]),
        ("scrape_configs:\n- job_name: a\n  file_sd_configs: [{files: []}]\n", &["file_sd_configs[0].files", "at least one path name"]),
        ("scrape_configs:\n- job_name: a\n  file_sd_configs: [{files: [targets.txt]}]\n", &["file_sd_configs[0].files", "is not valid for file discovery"]),
        ("scrape_configs:\n- job_name: a\n  file_sd_configs: [{files: ['a/*/b.json']}]\n", &["is not valid for file discovery"]),
        ("scrape_configs:\n- {job_name: a, scrape_native_histograms: true}\n", &["scrape_native_histograms", "not supported"]),
        ("scrape_configs:\n- {job_name: a, metric_name_validation_scheme: utf8}\n", &["metric_name_validation_scheme", "legacy"]),
    ];
    for (yaml, wants) in cases {
        let e = match load(yaml) {
            Ok(_) => panic!("accepted:\n{yaml}"),
            Err(e) => e,
        };
        for want in *wants {
            assert!(e.contains(want), "error for\n{yaml}\nlacks {want:?}: {e}");
        }
    }
    // A URL-like target is allowed when relabeling may rewrite it.
    load("scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['h/x']}]\n  relabel_configs: [{target_label: __address__, replacement: h}]\n").unwrap();
}

#[test]
fn external_labels_expand_the_environment() {
    let vars = |k: &str| match k {
        "A" => Some("1".to_string()),
        "B_2" => Some("two".to_string()),
        _ => None,
    };
    for (input, want) in [
        ("$A", "1"),
        ("${A}x", "1x"),
        ("$B_2-$A", "two-1"),
        ("$$A", "$A"),
        ("a$", "a$"),
        ("$UNSET", ""),
        ("${}", ""),
        ("x${A", "xA"),
        ("cost: 5$ each", "cost: 5$ each"),
    ] {
        assert_eq!(expand_env(input, &vars), want, "{input:?}");
    }
    let c = load("global:\n  external_labels: {a: $UNSET, b: x}\n").unwrap();
    assert_eq!(c.global.external_labels.len(), 1, "empty values are dropped");
}

#[test]
fn limits_inherit_from_global() {
    let c = load("global: {sample_limit: 10, label_limit: 3, body_size_limit: 1KiB}\nscrape_configs:\n- {job_name: a, sample_limit: 5}\n").unwrap();
    let l = c.scrape_configs[0].limits;
    assert_eq!((l.sample_limit, l.label_limit, l.body_size_limit), (5, 3, 1024));
}

#[test]
fn accept_header_follows_scrape_protocols_and_escaping() {
    assert_eq!(
        ScrapeProtocol::accept_header(&ScrapeProtocol::DEFAULT, "underscores"),
        "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,\
application/openmetrics-text;version=0.0.1;q=0.5,\
text/plain;version=1.0.0;escaping=underscores;q=0.4,\
text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    );
    let c = load("scrape_configs:\n- job_name: a\n  scrape_protocols: [PrometheusText0.0.4]\n");
    let j = &c.unwrap().scrape_configs[0];
    assert_eq!(j.metric_name_escaping_scheme, "underscores");
    assert_eq!(
        ScrapeProtocol::accept_header(&j.scrape_protocols, &j.metric_name_escaping_scheme),
        "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
    );
    let c = load("global: {metric_name_escaping_scheme: dots}\nscrape_configs:\n- job_name: a\n");
    assert_eq!(c.unwrap().scrape_configs[0].metric_name_escaping_scheme, "dots");
}
