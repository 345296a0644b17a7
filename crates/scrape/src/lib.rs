//! Scraping for Strata: today the exposition-format parsers; discovery, the target
//! manager, the scrape loop and relabeling will live here too (see DESIGN.md).
//!
//! [`expfmt::parse`] turns a scraped body into samples and per-family metadata. The format
//! is chosen from the response's `Content-Type` the way Prometheus chooses it
//! ([`expfmt::Format::negotiate`]), and [`expfmt::ACCEPT_HEADER`] is the `Accept` header
//! Prometheus sends.
//!
//! ```
//! use strata_scrape::expfmt::{parse, ParseOptions};
//! let body = b"# TYPE up gauge\nup{job=\"node\"} 1\n";
//! let parsed = parse(body, "text/plain; version=0.0.4", 1_000, &ParseOptions::default()).unwrap();
//! assert_eq!(parsed.samples[0].labels.get("job"), Some("node"));
//! assert_eq!(parsed.samples[0].timestamp_ms, 1_000);
//! ```

pub mod expfmt;
