use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use strata_model::{PushOutcome, PushRequest};

use super::*;
use crate::config::ScrapeSection;

struct NullSink;

#[async_trait]
impl PushSink for NullSink {
    async fn push(
        &self,
        _: PushRequest,
    ) -> Result<PushOutcome, (strata_model::Error, PushOutcome)> {
        Ok(PushOutcome::default())
    }
}

fn configs(yaml: &str, dir: &Path) -> ScrapeConfigs {
    ScrapeSection::from_yaml(yaml, "t.yaml").unwrap().validate(dir).unwrap()
}

fn urls(s: &Snapshot) -> Vec<String> {
    s.active.iter().map(|a| a.target.url()).collect()
}

#[tokio::test]
async fn static_targets_and_dropped_targets() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"
scrape_configs:
  - job_name: a
    scrape_interval: 1h
    static_configs:
      - targets: ["127.0.0.1:1", "127.0.0.1:2"]
    relabel_configs:
      - source_labels: [__address__]
        regex: ".*:2"
        action: drop
"#;
    let m = TargetManager::start(configs(yaml, dir.path()), Arc::new(NullSink));
    let deadline = Instant::now() + Duration::from_secs(5);
    let snap = loop {
        let s = m.snapshot();
        if !s.active.is_empty() || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(urls(&snap), ["http://127.0.0.1:1/metrics"]);
    assert_eq!(snap.active[0].pool, "a");
    assert_eq!(snap.active[0].target.public_labels().get("job"), Some("a"));
    assert_eq!(snap.dropped.len(), 1);
    assert_eq!(snap.dropped[0].discovered_labels.get("__address__"), Some("127.0.0.1:2"));
    assert_eq!(snap.dropped_counts.get("a"), Some(&1));
    m.stop().await;
}

#[tokio::test]
async fn file_sd_changes_start_and_stop_loops() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(&file, r#"[{"targets": ["127.0.0.1:1"], "labels": {"env": "x"}}]"#).unwrap();
    let yaml = r#"
scrape_configs:
  - job_name: f
    scrape_interval: 1h
    file_sd_configs:
      - files: ["*.json"]
        refresh_interval: 20ms
"#;
    let m = TargetManager::start(configs(yaml, dir.path()), Arc::new(NullSink));
    let wait_for = |want: &'static str| {
        let m = &m;
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let s = m.snapshot();
                if urls(&s) == [want] || Instant::now() > deadline {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let s = wait_for("http://127.0.0.1:1/metrics").await;
    assert_eq!(urls(&s), ["http://127.0.0.1:1/metrics"]);
    assert_eq!(s.active[0].target.public_labels().get("env"), Some("x"));
    assert_eq!(s.active[0].status.health.as_str(), "unknown");

    std::fs::write(&file, r#"[{"targets": ["127.0.0.1:2"]}]"#).unwrap();
    let s = wait_for("http://127.0.0.1:2/metrics").await;
    assert_eq!(urls(&s), ["http://127.0.0.1:2/metrics"]);
    m.stop().await;
}

#[tokio::test]
async fn a_pool_over_its_target_limit_is_down_with_the_limit_error() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"
scrape_configs:
  - job_name: a
    scrape_interval: 50ms
    scrape_timeout: 50ms
    target_limit: 1
    static_configs:
      - targets: ["127.0.0.1:1", "127.0.0.1:2"]
"#;
    let m = TargetManager::start(configs(yaml, dir.path()), Arc::new(NullSink));
    let deadline = Instant::now() + Duration::from_secs(5);
    let snap = loop {
        let s = m.snapshot();
        if s.active.len() == 2 && s.active.iter().all(|a| a.status.last_error.is_some())
            || Instant::now() > deadline
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(snap.active.len(), 2);
    for a in &snap.active {
        let e = a.status.last_error.as_deref().unwrap_or_default();
        assert_eq!(e, "target_limit exceeded (number of targets: 2, limit: 1)", "{a:?}");
    }
    m.stop().await;
}
