//! Merging what several sources return for one query (a head and blocks, blocks that overlap):
//! series united by label set, samples by timestamp, one sample per timestamp.
use std::collections::BTreeMap;

use crate::{Labels, RawSeries, Sample};

/// Merges two ascending sample lists; a timestamp in both is taken from `a`.
pub fn merge_samples(a: Vec<Sample>, b: Vec<Sample>) -> Vec<Sample> {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].t.cmp(&b[j].t) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Merges lists of series by label set, sorted by labels; for a timestamp several lists hold,
/// the earliest list's sample is kept. A single list is returned as it is.
///
/// A series' parts that do not overlap in time (blocks of different days, a head after its
/// blocks: the common case) are concatenated with one copy; overlapping ones are merged in
/// list order.
pub fn merge_series(parts: Vec<Vec<RawSeries>>) -> Vec<RawSeries> {
    let mut parts = parts.into_iter().filter(|p| !p.is_empty());
    let Some(first) = parts.next() else { return Vec::new() };
    let mut rest = parts.peekable();
    if rest.peek().is_none() {
        return first;
    }
    let mut by: BTreeMap<Labels, Vec<Vec<Sample>>> = BTreeMap::new();
    for s in first.into_iter().chain(rest.flatten()) {
        by.entry(s.labels).or_default().push(s.samples);
    }
    by.into_iter().map(|(labels, lists)| RawSeries { labels, samples: join(lists) }).collect()
}

/// One series' sample lists, in priority order, as one ascending list.
fn join(mut lists: Vec<Vec<Sample>>) -> Vec<Sample> {
    lists.retain(|l| !l.is_empty());
    if lists.len() <= 1 {
        return lists.pop().unwrap_or_default();
    }
    let mut by_start: Vec<&Vec<Sample>> = lists.iter().collect();
    by_start.sort_by_key(|l| l[0].t);
    let disjoint = by_start.windows(2).all(|w| w[0][w[0].len() - 1].t < w[1][0].t);
    if disjoint {
        // The earliest list grows in place: the allocator can move a large one by remapping
        // its pages rather than copying them.
        let total = lists.iter().map(Vec::len).sum::<usize>();
        lists.sort_by_key(|l| l[0].t);
        let mut lists = lists.into_iter();
        let mut out = lists.next().unwrap_or_default();
        out.reserve_exact(total - out.len());
        for l in lists {
            out.extend_from_slice(&l);
        }
        return out;
    }
    lists.into_iter().reduce(merge_samples).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    #[test]
    fn samples_merge_without_gaps_or_duplicates() {
        let a = vec![s(3, 3.0), s(4, 4.0), s(6, 6.0)];
        let b = vec![s(1, 1.0), s(3, 3.0), s(5, 5.0)];
        let m = merge_samples(a, b);
        assert_eq!(m.iter().map(|x| x.t).collect::<Vec<_>>(), vec![1, 3, 4, 5, 6]);
    }

    #[test]
    fn series_merge_by_labels() {
        let l1 = Labels::from_pairs([("__name__", "a")]);
        let l2 = Labels::from_pairs([("__name__", "b")]);
        let head = vec![RawSeries { labels: l1.clone(), samples: vec![s(10, 1.0)] }];
        let blocks = vec![
            RawSeries { labels: l2.clone(), samples: vec![s(1, 2.0)] },
            RawSeries { labels: l1.clone(), samples: vec![s(5, 0.5), s(10, 1.0)] },
        ];
        let m = merge_series(vec![head, blocks]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].labels, l1);
        assert_eq!(m[0].samples, vec![s(5, 0.5), s(10, 1.0)]);
        assert_eq!(m[1].labels, l2);
    }

    #[test]
    fn disjoint_parts_are_concatenated_in_time_order_and_overlapping_ones_keep_priority() {
        let l = Labels::from_pairs([("__name__", "up")]);
        let part = |samples: Vec<Sample>| vec![RawSeries { labels: l.clone(), samples }];
        // Given newest first (a head, then older blocks).
        let m = merge_series(vec![
            part(vec![s(7, 7.0), s(8, 8.0)]),
            part(vec![s(1, 1.0), s(2, 2.0)]),
            part(vec![]),
            part(vec![s(4, 4.0)]),
        ]);
        assert_eq!(m[0].samples, vec![s(1, 1.0), s(2, 2.0), s(4, 4.0), s(7, 7.0), s(8, 8.0)]);
        // Touching at one timestamp: the first list's sample wins.
        let m =
            merge_series(vec![part(vec![s(2, 20.0), s(3, 3.0)]), part(vec![s(1, 1.0), s(2, 2.0)])]);
        assert_eq!(m[0].samples, vec![s(1, 1.0), s(2, 20.0), s(3, 3.0)]);
    }

    #[test]
    fn merge_series_dedups_timestamps() {
        let l = Labels::from_pairs([("__name__", "up")]);
        let a = vec![RawSeries { labels: l.clone(), samples: vec![s(1, 1.0), s(3, 3.0)] }];
        let b = vec![RawSeries { labels: l.clone(), samples: vec![s(2, 2.0), s(3, 3.0)] }];
        let m = merge_series(vec![a, b]);
        assert_eq!(
            m,
            vec![RawSeries { labels: l, samples: vec![s(1, 1.0), s(2, 2.0), s(3, 3.0)] }]
        );
    }
}
