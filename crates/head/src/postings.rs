//! The inverted index: label name → label value → sorted series ids, and the sorted-set
//! operations that matchers are evaluated with.

use crate::symbols::{map_heap_bytes, FastMap, IdList};

/// Postings keyed by interned label name, then interned label value. The inner map doubles as
/// the per-name value index used by `label_values`.
#[derive(Debug, Default)]
pub(crate) struct Postings {
    by_name: FastMap<u32, FastMap<u32, IdList>>,
}

impl Postings {
    /// Records that series `id` has label `name=value`. Ids must be added in increasing order.
    pub(crate) fn add(&mut self, name: u32, value: u32, id: u32) {
        self.by_name
            .entry(name)
            .or_default()
            .entry(value)
            .and_modify(|l| l.push(id))
            .or_insert(IdList::One(id));
    }

    /// Series having `name=value`, sorted.
    pub(crate) fn get(&self, name: u32, value: u32) -> &[u32] {
        self.by_name
            .get(&name)
            .and_then(|values| values.get(&value))
            .map(IdList::as_slice)
            .unwrap_or(&[])
    }

    /// Every value of label `name`, with its series.
    pub(crate) fn values(&self, name: u32) -> impl Iterator<Item = (u32, &[u32])> + '_ {
        self.by_name
            .get(&name)
            .into_iter()
            .flat_map(|values| values.iter().map(|(v, ids)| (*v, ids.as_slice())))
    }

    /// Every label name.
    pub(crate) fn names(&self) -> impl Iterator<Item = u32> + '_ {
        self.by_name.keys().copied()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let mut bytes = map_heap_bytes::<u32, FastMap<u32, IdList>>(self.by_name.capacity());
        for values in self.by_name.values() {
            bytes += map_heap_bytes::<u32, IdList>(values.capacity());
            bytes += values.values().map(IdList::heap_bytes).sum::<usize>();
        }
        bytes
    }
}

/// Ids in both sorted lists.
pub(crate) fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.len() * 16 < large.len() {
        // Much smaller: binary-search each id in the rest of the large list.
        let mut rest = large;
        for &id in small {
            match rest.binary_search(&id) {
                Ok(i) => {
                    out.push(id);
                    rest = &rest[i + 1..];
                }
                Err(i) => rest = &rest[i..],
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Ids of `a` that are not in `b` (both sorted).
pub(crate) fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &id in a {
        while j < b.len() && b[j] < id {
            j += 1;
        }
        if j < b.len() && b[j] == id {
            continue;
        }
        out.push(id);
    }
    out
}

/// The sorted union of sorted lists.
pub(crate) fn union<'a>(lists: impl IntoIterator<Item = &'a [u32]>) -> Vec<u32> {
    let lists: Vec<&[u32]> = lists.into_iter().filter(|l| !l.is_empty()).collect();
    match lists.as_slice() {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let mut out: Vec<u32> = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
            for l in &lists {
                out.extend_from_slice(l);
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        assert_eq!(intersect(&[], &[3, 4, 5]), Vec::<u32>::new());
        let large: Vec<u32> = (0..1000).collect();
        assert_eq!(intersect(&[5, 999, 1000], &large), vec![5, 999]);
        assert_eq!(subtract(&[1, 2, 3, 4], &[2, 4, 9]), vec![1, 3]);
        assert_eq!(subtract(&[1, 2], &[]), vec![1, 2]);
        let lists: [&[u32]; 3] = [&[1, 5], &[2, 5, 9], &[]];
        assert_eq!(union(lists), vec![1, 2, 5, 9]);
    }

    #[test]
    fn postings_by_name_and_value() {
        let mut p = Postings::default();
        p.add(0, 1, 0);
        p.add(0, 1, 4);
        p.add(0, 2, 5);
        p.add(3, 1, 5);
        assert_eq!(p.get(0, 1), &[0, 4]);
        assert_eq!(p.get(0, 2), &[5]);
        assert_eq!(p.get(0, 9), &[] as &[u32]);
        assert_eq!(p.get(9, 1), &[] as &[u32]);
        let mut values: Vec<_> = p.values(0).map(|(v, ids)| (v, ids.to_vec())).collect();
        values.sort();
        assert_eq!(values, vec![(1, vec![0, 4]), (2, vec![5])]);
        let mut names: Vec<_> = p.names().collect();
        names.sort();
        assert_eq!(names, vec![0, 3]);
        // One inner entry: a u32 key and an inline-or-vec id list.
        assert_eq!(std::mem::size_of::<(u32, IdList)>(), 32);
    }
}
