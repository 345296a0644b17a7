//! `strata block inspect|verify TARGET`.
use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{bail, Context};
use object_store::ObjectStore;
use strata_block::{read_meta, verify, BlockReader};
use strata_objstore::{Bucket, BucketConfig};

use crate::cli::{BlockCommand, BlockTarget};

/// Opens the bucket holding the block and returns it with the tenant and block id.
fn locate(t: &BlockTarget) -> anyhow::Result<(Arc<dyn ObjectStore>, String, String)> {
    let (root, tenant, id) = if t.target.contains("://") {
        let trimmed = t.target.trim_end_matches('/');
        let mut parts = trimmed.rsplitn(3, '/');
        let id = parts.next().unwrap_or_default();
        let tenant = parts.next().unwrap_or_default();
        let root = parts.next().unwrap_or_default();
        if root.is_empty() || root.ends_with(':') || root.ends_with(":/") {
            bail!("{}: expected BUCKET-URL/TENANT/BLOCK-ID", t.target);
        }
        (root.to_string(), strata_objstore::paths::tenant_of_folder(tenant), id.to_string())
    } else {
        let dir = std::fs::canonicalize(&t.target)
            .with_context(|| format!("{}: no such block folder", t.target))?;
        let name = |p: Option<&std::path::Path>| {
            p.and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned())
        };
        let (Some(id), Some(tenant), Some(root)) =
            (name(Some(&dir)), name(dir.parent()), dir.parent().and_then(|p| p.parent()))
        else {
            bail!("{}: expected a folder BUCKET/TENANT/BLOCK-ID", t.target);
        };
        (
            format!("file://{}", root.display()),
            strata_objstore::paths::tenant_of_folder(&tenant),
            id,
        )
    };
    // Opening a file:// bucket creates its folder; a look into blocks must not.
    if let Some(dir) = strata_objstore::file_dir(&root) {
        if !std::path::Path::new(&dir).is_dir() {
            bail!("{}: no such folder {dir}", t.target);
        }
    }
    let mut cfg = BucketConfig::from_url(&root);
    if let Some(file) = &t.config {
        let bucket = crate::config::RawConfig::from_file(file)?.validate()?.storage.bucket;
        cfg = BucketConfig { url: root.clone(), ..bucket };
    }
    if let Some(e) = &t.s3_endpoint {
        // Plain HTTP is then allowed when the endpoint is an http:// URL.
        cfg.s3.endpoint = Some(e.clone());
    }
    let bucket = Bucket::open(&cfg, None)?;
    Ok((Arc::clone(bucket.store()), tenant, id))
}

async fn open(t: &BlockTarget) -> anyhow::Result<(Arc<dyn ObjectStore>, strata_block::BlockMeta)> {
    let (store, tenant, id) = locate(t)?;
    let meta = read_meta(&store, &tenant, &id).await?.with_context(|| {
        format!("{}: no meta.json (not a block, or an unfinished upload)", t.target)
    })?;
    Ok((store, meta))
}

pub async fn run(cmd: BlockCommand) -> anyhow::Result<()> {
    match cmd {
        BlockCommand::Inspect(t) => {
            let (store, meta) = open(&t).await?;
            let r = BlockReader::open(store, meta).await?;
            print!("{}", describe(&r));
            Ok(())
        }
        BlockCommand::Verify(t) => {
            let (store, meta) = open(&t).await?;
            let rep = verify(store, meta).await?;
            if rep.problems.is_empty() {
                println!("{}: ok ({} series, {} samples)", t.target, rep.series, rep.samples);
                Ok(())
            } else {
                for p in &rep.problems {
                    println!("{}: {p}", t.target);
                }
                bail!("{}: {} problems", t.target, rep.problems.len())
            }
        }
    }
}

fn describe(r: &BlockReader) -> String {
    let m = r.meta();
    let (lb, cb) = r.file_sizes();
    let per =
        |b: u64| if m.stats.num_samples == 0 { 0.0 } else { b as f64 / m.stats.num_samples as f64 };
    let mut out = String::new();
    let _ = writeln!(out, "block        {}", m.ulid);
    let _ = writeln!(out, "tenant       {}", m.tenant);
    let _ = writeln!(
        out,
        "range        {} .. {} ({})",
        strata_model::rfc3339(m.min_time),
        strata_model::rfc3339(m.max_time),
        strata_scrape::config::format_duration(std::time::Duration::from_millis(
            (m.max_time - m.min_time).max(0) as u64
        ))
    );
    let shard = m.shard.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "level        {} (sources {}), shard {shard}",
        m.compaction.level,
        m.compaction.sources.len().max(1)
    );
    let _ = writeln!(out, "series       {}", m.stats.num_series);
    let _ = writeln!(out, "samples      {}", m.stats.num_samples);
    let _ = writeln!(out, "chunks       {}", m.stats.num_chunks);
    let _ = writeln!(out, "bytes        {} (labels.parquet {lb}, chunks.parquet {cb})", lb + cb);
    let _ = writeln!(out, "bytes/sample {:.3} (chunks only {:.3})", per(lb + cb), per(cb));
    let _ = writeln!(
        out,
        "layout       {} data columns of {}, row groups of {} rows",
        m.parquet.data_columns,
        strata_scrape::config::format_duration(std::time::Duration::from_millis(
            m.parquet.data_column_duration_ms.max(0) as u64
        )),
        m.parquet.row_group_rows
    );
    let _ = writeln!(out, "columns:");
    for (file, col, bytes, rgs) in r.column_sizes() {
        let _ = writeln!(out, "  {file:<15} {col:<40} {bytes:>12} bytes  {rgs} row groups");
    }
    out
}
