//! Scraping for Strata: the exposition-format parsers, the `scrape_configs` configuration,
//! relabeling, target building, the scrape loop and the target manager (see DESIGN.md).
//!
//! - [`config::ScrapeSection`]: `global` and `scrape_configs` in `prometheus.yml` syntax,
//!   validated into [`config::ScrapeConfigs`].
//! - [`relabel::relabel`]: Prometheus' relabeling, every action.
//! - [`targets::targets_from_group`]: the labels and URL of each target of a static or
//!   file-discovered group, after `relabel_configs`.
//! - [`scrape_loop::spawn`]: scrapes one target every interval and writes its samples, the
//!   `up`/`scrape_*` series and staleness markers to a [`strata_model::PushSink`].
//! - [`manager::TargetManager`]: one scrape loop per target of every pool, kept in step
//!   with `static_configs` and `file_sd_configs`; the snapshot `/api/v1/targets` shows.
//!
//! [`expfmt::parse`] turns a scraped body into samples and per-family metadata. The format
//! is chosen from the response's `Content-Type` the way Prometheus chooses it
//! ([`expfmt::Format::negotiate`]), and [`config::ScrapeProtocol::accept_header`] is the
//! `Accept` header Prometheus sends.
//!
//! ```
//! use strata_scrape::expfmt::{parse, ParseOptions};
//! let body = b"# TYPE up gauge\nup{job=\"node\"} 1\n";
//! let parsed = parse(body, "text/plain; version=0.0.4", 1_000, &ParseOptions::default()).unwrap();
//! assert_eq!(parsed.samples[0].labels.get("job"), Some("node"));
//! assert_eq!(parsed.samples[0].timestamp_ms, 1_000);
//! ```

pub mod config;
pub mod expfmt;
pub mod manager;
pub mod relabel;
pub mod scrape_loop;
pub mod targets;
