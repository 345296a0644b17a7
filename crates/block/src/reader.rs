//! Reading a block from the object store: only the row groups that can match (by the statistics
//! of the label columns the matchers name) and only the data columns that overlap the query.
//! Footers are read once when the reader opens and kept.
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, RowSelection, RowSelector,
};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use strata_model::{Label, Labels, MatchOp, Matcher, RawSeries};

use crate::meta::BlockMeta;
use crate::{label_column, paths, Error, Result, LABEL_PREFIX};

/// Rows decoded per Arrow batch.
const BATCH_ROWS: usize = 4096;
/// Most samples reserved for a series ahead of decoding it (the headers of a corrupt block may
/// claim anything).
const MAX_RESERVE: usize = 1 << 20;

/// An open block.
#[derive(Debug)]
pub struct BlockReader {
    store: Arc<dyn ObjectStore>,
    meta: BlockMeta,
    labels: ParquetFile,
    chunks: ParquetFile,
}

#[derive(Debug)]
struct ParquetFile {
    path: Path,
    size: u64,
    md: ArrowReaderMetadata,
}

impl ParquetFile {
    /// Opens a file, reading its footer and, with `page_index`, its page index (kept for as
    /// long as the block is open: only worth it where row selections skip pages).
    async fn open(
        store: &Arc<dyn ObjectStore>,
        path: Path,
        page_index: bool,
    ) -> Result<ParquetFile> {
        let size = store.head(&path).await?.size;
        let mut r = StoreReader { store: Arc::clone(store), path: path.clone(), size };
        let policy = if page_index { PageIndexPolicy::Optional } else { PageIndexPolicy::Skip };
        let opts = ArrowReaderOptions::new().with_page_index_policy(policy);
        let md = ArrowReaderMetadata::load_async(&mut r, opts).await?;
        Ok(ParquetFile { path, size, md })
    }

    fn builder(
        &self,
        store: &Arc<dyn ObjectStore>,
    ) -> ParquetRecordBatchStreamBuilder<StoreReader> {
        let r = StoreReader { store: Arc::clone(store), path: self.path.clone(), size: self.size };
        ParquetRecordBatchStreamBuilder::new_with_metadata(r, self.md.clone())
            .with_batch_size(BATCH_ROWS)
    }
}

/// Parquet's view of an object: range reads of a file whose size is known.
struct StoreReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

fn parquet_err(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for StoreReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { self.store.get_range(&self.path, range).await.map_err(parquet_err) }.boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move { self.store.get_ranges(&self.path, &ranges).await.map_err(parquet_err) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let md = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .with_prefetch_hint(Some(64 << 10))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(md))
        }
        .boxed()
    }
}

/// The rows of one row group that matched, with their labels.
struct Matched {
    rg: usize,
    rows: Vec<(usize, Labels)>,
}

/// What readers rely on in a block's `meta.json` before trusting its numbers: a time range,
/// data columns of a positive duration that cover it exactly as the writer lays them out, and
/// label names sorted and unique (they are binary-searched).
fn check_layout(meta: &BlockMeta) -> Result<()> {
    let bad = |what: String| Err(Error::Corrupt(format!("meta.json: {what}")));
    if meta.max_time <= meta.min_time {
        return bad(format!("empty time range [{}, {})", meta.min_time, meta.max_time));
    }
    let layout = &meta.parquet;
    if layout.data_columns > 0 {
        let d = layout.data_column_duration_ms;
        let span = i128::from(meta.max_time) - i128::from(meta.min_time);
        let needed = if d > 0 { (span + i128::from(d) - 1) / i128::from(d) } else { -1 };
        if needed != i128::from(layout.data_columns) {
            return bad(format!(
                "{} data columns of {d} ms do not cover [{}, {})",
                layout.data_columns, meta.min_time, meta.max_time
            ));
        }
    }
    if !layout.label_names.windows(2).all(|w| w[0] < w[1]) {
        return bad("label names are not sorted and unique".into());
    }
    Ok(())
}

impl BlockReader {
    /// Opens the block `meta` describes, reading both files' footers.
    pub async fn open(store: Arc<dyn ObjectStore>, meta: BlockMeta) -> Result<BlockReader> {
        // Before any read: a layout that would be misread is refused from meta.json alone.
        check_layout(&meta)?;
        let id = meta.ulid.to_string();
        // Label columns are read whole per row group (pruned by row-group statistics); chunk
        // columns a few rows at a time, where the offset index skips the other pages.
        let labels =
            ParquetFile::open(&store, paths::block_file(&meta.tenant, &id, paths::LABELS), false)
                .await?;
        let chunks =
            ParquetFile::open(&store, paths::block_file(&meta.tenant, &id, paths::CHUNKS), true)
                .await?;
        // Reads project data columns `0..data_columns` by position: they must all exist.
        let columns = chunks.md.schema().fields().len();
        if meta.parquet.data_columns as usize > columns {
            return Err(Error::Corrupt(format!(
                "meta.json names {} data columns but {} has {columns}",
                meta.parquet.data_columns,
                paths::CHUNKS
            )));
        }
        let lrg = labels.md.metadata().row_groups();
        let crg = chunks.md.metadata().row_groups();
        if meta.parquet.data_columns > 0 && crg.len() != lrg.len() {
            return Err(Error::Corrupt(format!(
                "{} has {} row groups, {} has {}",
                paths::LABELS,
                lrg.len(),
                paths::CHUNKS,
                crg.len()
            )));
        }
        let mut at = 0usize;
        for (i, rg) in lrg.iter().enumerate() {
            // Readers walk rows a row group at a time; an empty one is not written by Strata.
            let n = usize::try_from(rg.num_rows())
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| Error::Corrupt(format!("row group {i} has no rows")))?;
            if meta.parquet.data_columns > 0
                && crg.get(i).map(|c| c.num_rows()) != Some(rg.num_rows())
            {
                return Err(Error::Corrupt(format!(
                    "row group {i} differs between labels and chunks"
                )));
            }
            at = at.saturating_add(n);
        }
        if at as u64 != meta.stats.num_series {
            return Err(Error::Corrupt(format!(
                "{at} rows but meta.json says {} series",
                meta.stats.num_series
            )));
        }
        Ok(BlockReader { store, meta, labels, chunks })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// `(file, column, compressed bytes, row groups)` of both files, from their footers.
    pub fn column_sizes(&self) -> Vec<(&'static str, String, u64, usize)> {
        let mut out = Vec::new();
        for (file, f) in [(paths::LABELS, &self.labels), (paths::CHUNKS, &self.chunks)] {
            let md = f.md.metadata();
            let schema = f.md.schema();
            for (i, field) in schema.fields().iter().enumerate() {
                let bytes: i64 =
                    md.row_groups().iter().map(|rg| rg.column(i).compressed_size()).sum();
                out.push((file, field.name().clone(), bytes.max(0) as u64, md.num_row_groups()));
            }
        }
        out
    }

    /// Sizes of `labels.parquet` and `chunks.parquet`.
    pub fn file_sizes(&self) -> (u64, u64) {
        (self.labels.size, self.chunks.size)
    }

    /// Series matching all `matchers` (all series when empty), with their samples in
    /// `[mint, maxt]`; series without samples there are left out.
    pub async fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<RawSeries>> {
        if !self.meta.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        let matched = self.matching_rows(matchers).await?;
        let mut out = self.read_samples(matched, mint, maxt).await?;
        out.retain(|s| !s.samples.is_empty());
        Ok(out)
    }

    /// Label sets of the series matching all `matchers`.
    pub async fn series(&self, matchers: &[Matcher]) -> Result<Vec<Labels>> {
        let matched = self.matching_rows(matchers).await?;
        Ok(matched.into_iter().flat_map(|m| m.rows.into_iter().map(|(_, l)| l)).collect())
    }

    /// The values of label `name` among the series matching all `matchers`, added to `out`.
    /// Reads only that label's column and the matchers' columns, a batch at a time (what
    /// Grafana's variable queries ask of every block in range).
    pub async fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        out: &mut std::collections::BTreeSet<String>,
    ) -> Result<()> {
        let names = &self.meta.parquet.label_names;
        if names.binary_search_by(|n| n.as_str().cmp(name)).is_err() || self.cannot_match(matchers)
        {
            return Ok(());
        }
        let rgs = self.candidate_row_groups(matchers);
        if rgs.is_empty() {
            return Ok(());
        }
        let schema = Arc::clone(self.labels.md.schema());
        let mut wanted: Vec<usize> = std::iter::once(name)
            .chain(matchers.iter().map(|m| m.name.as_str()))
            .filter_map(|n| schema.index_of(&label_column(n)).ok())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mask = ProjectionMask::roots(self.labels.md.parquet_schema(), wanted);
        let mut stream =
            self.labels.builder(&self.store).with_row_groups(rgs).with_projection(mask).build()?;
        let column = label_column(name);
        while let Some(batch) = stream.try_next().await? {
            let col = |n: &str| {
                batch.column_by_name(&label_column(n)).and_then(|c| c.as_string_opt::<i32>())
            };
            let Some(values) = batch.column_by_name(&column).and_then(|c| c.as_string_opt::<i32>())
            else {
                continue;
            };
            let by_matcher: Vec<_> = matchers.iter().map(|m| col(&m.name)).collect();
            for row in 0..batch.num_rows() {
                if !values.is_valid(row) {
                    continue;
                }
                let ok = matchers.iter().zip(&by_matcher).all(|(m, c)| {
                    m.matches(c.filter(|c| c.is_valid(row)).map_or("", |c| c.value(row)))
                });
                if ok && !out.contains(values.value(row)) {
                    out.insert(values.value(row).to_string());
                }
            }
        }
        Ok(())
    }

    /// Every series with every sample, in row order (whole blocks in memory: for tests).
    #[cfg(test)]
    pub(crate) async fn read_all(&self) -> Result<Vec<RawSeries>> {
        let matched = self.matching_rows(&[]).await?;
        self.read_samples(matched, i64::MIN, i64::MAX).await
    }

    /// Row groups whose statistics do not rule out the matchers.
    fn candidate_row_groups(&self, matchers: &[Matcher]) -> Vec<usize> {
        let md = self.labels.md.metadata();
        let schema = self.labels.md.schema();
        (0..md.num_row_groups())
            .filter(|&rg| {
                matchers.iter().all(|m| {
                    if m.op != MatchOp::Equal || m.value.is_empty() {
                        return true;
                    }
                    let Ok(col) = schema.index_of(&label_column(&m.name)) else { return false };
                    let Some(st) = md.row_group(rg).column(col).statistics() else { return true };
                    let v = m.value.as_bytes();
                    let below = st.min_bytes_opt().is_some_and(|min| v < min);
                    let above = st.max_bytes_opt().is_some_and(|max| v > max);
                    !(below || above)
                })
            })
            .collect()
    }

    /// Number of row groups (the same in both files).
    pub fn num_row_groups(&self) -> usize {
        self.labels.md.metadata().num_row_groups()
    }

    /// Every series of row group `rg`, in row order, with its cells (encoded chunks, one per
    /// data column it has samples in, with that column's index; see [`crate::cell`])
    /// undecoded: what a merge holds of a block at a time.
    pub async fn read_row_group_cells(
        &self,
        rg: usize,
    ) -> Result<Vec<(Labels, Vec<(usize, Bytes)>)>> {
        let matched = self.matching_rows_in(&[], vec![rg]).await?;
        let cols: Vec<usize> = (0..self.meta.parquet.data_columns as usize).collect();
        if cols.is_empty() || matched.is_empty() {
            return Ok(matched
                .into_iter()
                .flat_map(|m| m.rows.into_iter().map(|(_, labels)| (labels, Vec::new())))
                .collect());
        }
        let mut out = Vec::new();
        self.for_each_row(matched, &cols, |labels, cells| {
            out.push((
                labels,
                cells.iter().map(|&(i, c)| (i, Bytes::copy_from_slice(c))).collect(),
            ));
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Whether a matcher needs a label no series here has.
    fn cannot_match(&self, matchers: &[Matcher]) -> bool {
        let names = &self.meta.parquet.label_names;
        matchers.iter().any(|m| !m.matches_empty() && names.binary_search(&m.name).is_err())
    }

    async fn matching_rows(&self, matchers: &[Matcher]) -> Result<Vec<Matched>> {
        if self.cannot_match(matchers) {
            return Ok(Vec::new());
        }
        let rgs = self.candidate_row_groups(matchers);
        self.matching_rows_in(matchers, rgs).await
    }

    /// The rows of row groups `rgs` that match all `matchers`.
    async fn matching_rows_in(
        &self,
        matchers: &[Matcher],
        rgs: Vec<usize>,
    ) -> Result<Vec<Matched>> {
        if rgs.is_empty() {
            return Ok(Vec::new());
        }
        let schema = Arc::clone(self.labels.md.schema());
        let label_cols: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| schema.field(i).name().starts_with(LABEL_PREFIX))
            .collect();
        let mut matcher_cols: Vec<usize> =
            matchers.iter().filter_map(|m| schema.index_of(&label_column(&m.name)).ok()).collect();
        matcher_cols.sort_unstable();
        matcher_cols.dedup();
        if matcher_cols.is_empty() || matcher_cols.len() >= label_cols.len() {
            return self.label_rows(matchers, rgs, label_cols, None).await;
        }
        // Two passes when the matchers need fewer columns than the labels: which rows match,
        // from the matchers' columns alone, then every label of those rows only.
        let hits = self.label_rows(matchers, rgs, matcher_cols, None).await?;
        if hits.is_empty() {
            return Ok(hits);
        }
        let selection = self.row_selection(&hits);
        let rows: Vec<(usize, usize)> =
            hits.iter().flat_map(|m| m.rows.iter().map(|(r, _)| (m.rg, *r))).collect();
        let rgs = hits.iter().map(|m| m.rg).collect();
        self.label_rows(&[], rgs, label_cols, Some((selection, rows))).await
    }

    /// The rows of row groups `rgs` matching all `matchers`, with the labels in columns
    /// `cols`. With a selection, only its rows are read: `rows` names each (row group, row).
    async fn label_rows(
        &self,
        matchers: &[Matcher],
        rgs: Vec<usize>,
        cols: Vec<usize>,
        selection: Option<(RowSelection, Vec<(usize, usize)>)>,
    ) -> Result<Vec<Matched>> {
        let mask = ProjectionMask::roots(self.labels.md.parquet_schema(), cols);
        let mut builder =
            self.labels.builder(&self.store).with_row_groups(rgs.clone()).with_projection(mask);
        let mut selected = None;
        if let Some((selection, rows)) = selection {
            builder = builder.with_row_selection(selection);
            selected = Some(rows.into_iter());
        }
        let mut stream = builder.build()?;

        let mut out: Vec<Matched> = Vec::new();
        let mut rg_iter = rgs.iter();
        let mut current: Option<(usize, usize)> = None; // (row group, rows left in it)
        while let Some(batch) = stream.try_next().await? {
            let cols: Vec<(String, &arrow::array::StringArray)> = batch
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter_map(|(i, f)| {
                    let name = f.name().strip_prefix(LABEL_PREFIX)?.to_string();
                    Some((name, batch.column(i).as_string_opt::<i32>()?))
                })
                .collect();
            let by_matcher: Vec<Option<&arrow::array::StringArray>> = matchers
                .iter()
                .map(|m| cols.iter().find(|(n, _)| *n == m.name).map(|(_, a)| *a))
                .collect();
            for row in 0..batch.num_rows() {
                let (rg, row_in_rg) = match selected.as_mut() {
                    Some(rows) => rows
                        .next()
                        .ok_or_else(|| Error::Corrupt("more rows than selected".into()))?,
                    None => {
                        let (rg, left) = match current {
                            Some((rg, left)) if left > 0 => (rg, left),
                            _ => {
                                let rg = *rg_iter.next().ok_or_else(|| {
                                    Error::Corrupt("more rows than row groups".into())
                                })?;
                                (rg, self.rg_rows(rg))
                            }
                        };
                        current = Some((rg, left - 1));
                        (rg, self.rg_rows(rg) - left)
                    }
                };
                let ok = matchers.iter().zip(&by_matcher).all(|(m, col)| {
                    let v = col.filter(|c| c.is_valid(row)).map(|c| c.value(row)).unwrap_or("");
                    m.matches(v)
                });
                if !ok {
                    continue;
                }
                let labels = Labels(
                    cols.iter()
                        .filter(|(_, c)| c.is_valid(row))
                        .map(|(n, c)| Label { name: n.clone(), value: c.value(row).to_string() })
                        .collect(),
                );
                match out.last_mut() {
                    Some(m) if m.rg == rg => m.rows.push((row_in_rg, labels)),
                    _ => out.push(Matched { rg, rows: vec![(row_in_rg, labels)] }),
                }
            }
        }
        if selected.is_some_and(|mut rows| rows.next().is_some()) {
            return Err(Error::Corrupt("fewer label rows than selected".into()));
        }
        Ok(out)
    }

    /// The rows of `matched` within their row groups, as a selection over those row groups
    /// read in order.
    fn row_selection(&self, matched: &[Matched]) -> RowSelection {
        let mut selectors = Vec::new();
        for m in matched {
            let mut at = 0;
            for (row, _) in &m.rows {
                if *row > at {
                    selectors.push(RowSelector::skip(row - at));
                }
                selectors.push(RowSelector::select(1));
                at = row + 1;
            }
            let total = self.rg_rows(m.rg);
            if total > at {
                selectors.push(RowSelector::skip(total - at));
            }
        }
        RowSelection::from(selectors)
    }

    fn rg_rows(&self, rg: usize) -> usize {
        let md = self.labels.md.metadata();
        usize::try_from(md.row_group(rg).num_rows()).unwrap_or(0)
    }

    async fn read_samples(
        &self,
        matched: Vec<Matched>,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<RawSeries>> {
        let layout = &self.meta.parquet;
        let d = layout.data_column_duration_ms;
        let cols: Vec<usize> = (0..layout.data_columns as usize)
            .filter(|&i| {
                let start = self.meta.min_time + i as i64 * d;
                start <= maxt && mint < start + d
            })
            .collect();
        if cols.is_empty() || matched.is_empty() {
            return Ok(matched
                .into_iter()
                .flat_map(|m| {
                    m.rows.into_iter().map(|(_, labels)| RawSeries { labels, samples: Vec::new() })
                })
                .collect());
        }
        let mut out: Vec<RawSeries> = Vec::new();
        self.for_each_row(matched, &cols, |labels, cells| {
            // Room for the cells' samples inside the query's window only (an instant query
            // on a 24h block wants a few of a column's thousands): the share of each cell's
            // column that the window overlaps, assuming samples evenly spread.
            let room = cells
                .iter()
                .map(|&(i, c)| {
                    let (start, end) = self.meta.data_column_window(i);
                    let overlap = end.min(maxt.saturating_add(1)).saturating_sub(start.max(mint));
                    let share = overlap.max(0) as f64 / (end - start).max(1) as f64;
                    (crate::cell::sample_count(c) as f64 * share.min(1.0)).ceil() as usize
                })
                .fold(0usize, usize::saturating_add);
            let mut samples = Vec::with_capacity(room.min(MAX_RESERVE));
            for (_, c) in cells {
                crate::cell::decode(c, mint, maxt, &mut samples)?;
            }
            out.push(RawSeries { labels, samples });
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Reads data columns `cols` of the `matched` rows (at least one) and calls `f` with each
    /// row's labels and non-null cells, in row order.
    async fn for_each_row(
        &self,
        matched: Vec<Matched>,
        cols: &[usize],
        mut f: impl FnMut(Labels, &[(usize, &[u8])]) -> Result<()>,
    ) -> Result<()> {
        let selection = self.row_selection(&matched);
        let rgs: Vec<usize> = matched.iter().map(|m| m.rg).collect();
        let mask = ProjectionMask::roots(self.chunks.md.parquet_schema(), cols.iter().copied());
        let stream = self
            .chunks
            .builder(&self.store)
            .with_row_groups(rgs)
            .with_projection(mask)
            .with_row_selection(selection)
            .build()?;
        let batches: Vec<RecordBatch> = stream.try_collect().await?;
        let mut rows = matched.into_iter().flat_map(|m| m.rows.into_iter().map(|(_, l)| l));
        // Each cell with the data column it is in.
        let mut cells: Vec<(usize, &[u8])> = Vec::with_capacity(cols.len());
        for batch in &batches {
            let arrays: Vec<(usize, &arrow::array::BinaryArray)> = batch
                .columns()
                .iter()
                .zip(cols)
                .filter_map(|(c, &i)| Some((i, c.as_binary_opt::<i32>()?)))
                .collect();
            for row in 0..batch.num_rows() {
                let labels = rows
                    .next()
                    .ok_or_else(|| Error::Corrupt("more chunk rows than label rows".into()))?;
                cells.clear();
                cells.extend(
                    arrays.iter().filter(|(_, a)| a.is_valid(row)).map(|(i, a)| (*i, a.value(row))),
                );
                f(labels, &cells)?;
            }
        }
        if rows.next().is_some() {
            return Err(Error::Corrupt("fewer chunk rows than label rows".into()));
        }
        Ok(())
    }
}
#[cfg(test)]
impl BlockReader {
    pub(crate) fn candidate_row_groups_for_test(&self, m: &[Matcher]) -> Vec<usize> {
        self.candidate_row_groups(m)
    }

    pub(crate) fn store_for_test(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }
}
