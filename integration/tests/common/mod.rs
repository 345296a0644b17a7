//! Shared harness for the multi-process tests: start `strata all` on loopback with a temporary
//! data directory, wait until it is ready, kill -9 and restart it, and talk to it (remote-write
//! 1.0/2.0 pushes, Prometheus JSON reads). Outside programs are found on PATH.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use serde_json::Value;
use strata_proto::prometheus::WriteRequest;
use strata_proto::write_v2;

mod wire;
pub use wire::*;

pub const V1_CONTENT_TYPE: &str = "application/x-protobuf";
pub const V2_CONTENT_TYPE: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A reqwest client builder. reqwest is built with rustls but no crypto provider (Strata
/// installs ring's), so the process's default provider is installed first.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    strata_scrape::scrape_loop::install_tls_provider();
    reqwest::Client::builder()
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Whether an outside program is on PATH. When it is not: panics under
/// `STRATA_REQUIRE_INTEROP=1`, otherwise says the test is skipped and returns false.
pub fn require_program(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| is_executable(&d.join(name))))
        .unwrap_or(false);
    require(found, &format!("{name} not found on PATH"))
}

/// `found`, or else: a panic saying `missing` under `STRATA_REQUIRE_INTEROP=1`, otherwise a
/// "skipped" line and false.
pub fn require(found: bool, missing: &str) -> bool {
    if found {
        return true;
    }
    if std::env::var("STRATA_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
        panic!("{missing} and STRATA_REQUIRE_INTEROP=1");
    }
    println!("skipped: {missing}");
    false
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

/// The last `n` bytes of a log file, for failure messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(n);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// A child process killed (SIGKILL) when dropped.
pub struct Guard {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Guard {
    /// Starts `program args...` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> Guard {
        Self::spawn_env(name, program, args, &[], log)
    }

    /// [`Guard::spawn`] with extra environment variables.
    pub fn spawn_env(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
    ) -> Guard {
        let out = File::options().create(true).append(true).open(log).expect("open log");
        let err = out.try_clone().expect("clone log handle");
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
        Guard { name: name.to_string(), child, log: log.to_path_buf() }
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where `name` is on PATH (`name` itself when it is not).
pub fn which(name: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Polls `url` until it answers 200; panics with the program's log after `within`.
pub async fn wait_ok(client: &reqwest::Client, url: &str, guard: &mut Guard, within: Duration) {
    let started = Instant::now();
    loop {
        if let Some(st) = guard.exited() {
            panic!("{} exited ({st}); log:\n{}", guard.name, log_tail(&guard.log, 4000));
        }
        if client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{} not answering {url}; log:\n{}",
            guard.name,
            log_tail(&guard.log, 4000)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts Debian's `prometheus-node-exporter` on a free port, logging into `dir`, and waits
/// until it serves `/metrics`. Returns it and its port.
pub async fn start_node_exporter(client: &reqwest::Client, dir: &Path) -> (Guard, u16) {
    let port = free_port();
    let mut node = Guard::spawn(
        "node_exporter",
        &which("prometheus-node-exporter"),
        &[format!("--web.listen-address=127.0.0.1:{port}")],
        &dir.join("node_exporter.log"),
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait_ok(client, &url, &mut node, Duration::from_secs(30)).await;
    (node, port)
}

/// A `strata all` process on loopback with its own data directory.
pub struct Strata {
    pub dir: tempfile::TempDir,
    pub http_port: u16,
    pub grpc_port: u16,
    pub base: String,
    config: Option<PathBuf>,
    proc: Option<Guard>,
    pub client: reqwest::Client,
    /// Environment of the next start.
    pub env: Vec<(String, String)>,
}

impl Strata {
    /// Starts with the embedded defaults and waits until it is ready.
    pub async fn start() -> Strata {
        Self::start_with_config(None).await
    }

    /// Starts with `yaml` as its `--config` file (when given) and waits until it is ready.
    pub async fn start_with_config(yaml: Option<&str>) -> Strata {
        let dir = tempfile::Builder::new().prefix("strata-it-").tempdir().expect("tempdir");
        let config = yaml.map(|y| {
            let p = dir.path().join("strata.yaml");
            std::fs::write(&p, y).expect("write config");
            p
        });
        let http_port = free_port();
        let client =
            http_client_builder().timeout(Duration::from_secs(60)).build().expect("http client");
        let mut s = Strata {
            dir,
            http_port,
            grpc_port: free_port(),
            base: format!("http://127.0.0.1:{http_port}"),
            config,
            proc: None,
            client,
            env: Vec::new(),
        };
        s.spawn_and_wait().await;
        s
    }

    /// Starts the process (after [`Strata::kill9`] or an exit) without waiting for it.
    pub fn start_again(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Whether the process has exited (e.g. at a failpoint), reaping it.
    pub fn has_exited(&mut self) -> bool {
        self.proc.as_mut().is_some_and(|p| p.exited().is_some())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("strata.log")
    }

    pub fn pid(&self) -> u32 {
        self.proc.as_ref().expect("strata is running").child.id()
    }

    fn spawn(&mut self) {
        let mut args = vec![
            "all".to_string(),
            "--data-dir".into(),
            self.data_dir().display().to_string(),
            "--http-addr".into(),
            format!("127.0.0.1:{}", self.http_port),
            "--grpc-addr".into(),
            format!("127.0.0.1:{}", self.grpc_port),
        ];
        if let Some(c) = &self.config {
            args.push("--config".into());
            args.push(c.display().to_string());
        }
        let bin = Path::new(env!("CARGO_BIN_EXE_strata"));
        let log = self.log();
        self.proc = Some(Guard::spawn_env("strata", bin, &args, &self.env, &log));
    }

    async fn spawn_and_wait(&mut self) {
        self.spawn();
        self.wait_ready().await;
    }

    /// Polls `/-/ready` until 200; panics with the log tail if the process exits or after 60 s.
    pub async fn wait_ready(&mut self) {
        let started = Instant::now();
        let url = format!("{}/-/ready", self.base);
        loop {
            if let Some(status) = self.proc.as_mut().and_then(Guard::exited) {
                panic!(
                    "strata exited ({status}) before ready; log:\n{}",
                    log_tail(&self.log(), 4000)
                );
            }
            let ok = self
                .client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ok {
                return;
            }
            if started.elapsed() > READY_TIMEOUT {
                panic!("strata not ready after 60 s; log:\n{}", log_tail(&self.log(), 4000));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// SIGTERM and wait up to `within` for the process to exit on its own.
    pub async fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut p = self.proc.take().expect("strata is running");
        let pid = p.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(s) = p.exited() {
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None // `p` is dropped here: SIGKILL.
    }

    /// Starts again on the same data directory and ports, and waits until ready.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn_and_wait().await;
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    /// POSTs a raw push body with the given headers.
    pub async fn push_raw(&self, body: Vec<u8>, headers: &[(&str, &str)]) -> Resp {
        let mut rb = self.client.post(self.url("/api/v1/push")).body(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        Resp::from(rb.send().await.expect("push request")).await
    }

    /// Pushes a remote-write 1.0 request the way Prometheus does; `tenant` sets X-Scope-OrgID.
    pub async fn push_v1(&self, req: &WriteRequest, tenant: Option<&str>) -> Resp {
        let mut h = vec![
            ("Content-Type", V1_CONTENT_TYPE),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ];
        if let Some(t) = tenant {
            h.push(("X-Scope-OrgID", t));
        }
        self.push_raw(snappy(&req.encode_to_vec()), &h).await
    }

    /// Pushes a remote-write 2.0 request.
    pub async fn push_v2(&self, req: &write_v2::Request, tenant: Option<&str>) -> Resp {
        let mut h = vec![
            ("Content-Type", V2_CONTENT_TYPE),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "2.0.0"),
        ];
        if let Some(t) = tenant {
            h.push(("X-Scope-OrgID", t));
        }
        self.push_raw(snappy(&req.encode_to_vec()), &h).await
    }

    /// GET `path` with query parameters (repeated keys allowed) as `tenant`.
    pub async fn get(&self, path: &str, params: &[(&str, &str)], tenant: Option<&str>) -> Resp {
        get(&self.client, &self.base, path, params, tenant).await
    }

    /// GET returning the parsed JSON body; panics unless the body is JSON.
    pub async fn get_json(
        &self,
        path: &str,
        params: &[(&str, &str)],
        tenant: Option<&str>,
    ) -> (u16, Value) {
        let r = self.get(path, params, tenant).await;
        let v = r.json();
        (r.status, v)
    }

    /// GET, asserting `status: success`, returning `data`.
    pub async fn data(&self, path: &str, params: &[(&str, &str)], tenant: Option<&str>) -> Value {
        data_of(self.get(path, params, tenant).await, path)
    }

    /// POST with an `application/x-www-form-urlencoded` body.
    pub async fn post_form(
        &self,
        path: &str,
        params: &[(&str, &str)],
        tenant: Option<&str>,
    ) -> Resp {
        let mut rb = self
            .client
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(encode_query(params));
        if let Some(t) = tenant {
            rb = rb.header("X-Scope-OrgID", t);
        }
        Resp::from(rb.send().await.expect("POST")).await
    }

    /// The series matching `selector` over the whole time range, as a set.
    pub async fn series_set(&self, selector: &str, tenant: Option<&str>) -> BTreeSet<LabelSet> {
        series_set(&self.data("/api/v1/series", &[("match[]", selector)], tenant).await)
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> String {
        let r = self.get("/metrics", &[], None).await;
        assert_eq!(r.status, 200, "/metrics: {}", r.body);
        r.body
    }
}

/// A remote-write 1.0 push that reports connection failures instead of panicking (for tests
/// that kill the server while pushes are in flight).
pub async fn try_push_v1(
    client: &reqwest::Client,
    base: &str,
    req: &WriteRequest,
) -> Result<Resp, reqwest::Error> {
    let r = client
        .post(format!("{base}/api/v1/push"))
        .header("Content-Type", V1_CONTENT_TYPE)
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(snappy(&req.encode_to_vec()))
        .send()
        .await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await?;
    Ok(Resp { status, headers, body })
}

/// GET against any Prometheus-compatible server.
pub async fn get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    params: &[(&str, &str)],
    tenant: Option<&str>,
) -> Resp {
    let q = encode_query(params);
    let url = if q.is_empty() { format!("{base}{path}") } else { format!("{base}{path}?{q}") };
    let mut rb = client.get(&url);
    if let Some(t) = tenant {
        rb = rb.header("X-Scope-OrgID", t);
    }
    Resp::from(rb.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))).await
}

/// The `data` of a successful Prometheus API answer.
pub fn data_of(r: Resp, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what}: {}", r.body);
    let v = r.json();
    assert_eq!(v["status"], "success", "{what}: {v}");
    v["data"].clone()
}

pub fn encode_query(params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A finished HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub async fn from(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.text().await.expect("response body");
        Resp { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.body))
    }
}
