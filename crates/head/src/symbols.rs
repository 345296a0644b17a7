//! Compact building blocks of a tenant's index: a fast hasher for integer keys, a list of ids
//! that does not allocate while it holds one id, a hash → ids map with a collision path, and the
//! string interner.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::mem::size_of;

/// Estimated allocator overhead per heap allocation, used by the memory estimates.
pub(crate) const ALLOC_OVERHEAD: usize = 16;

/// An Fx-style hasher for keys that are integers or already hashes. Not DoS resistant; it is
/// only used on ids the head assigns itself and on hashes of label sets and strings.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(SEED);
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Heap bytes of a `HashMap` with the given capacity (hashbrown layout: one control byte per
/// bucket plus a group of trailing control bytes).
pub(crate) fn map_heap_bytes<K, V>(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity <= 3 { 4 } else { (capacity * 8 / 7).next_power_of_two() };
    buckets * (size_of::<(K, V)>() + 1) + 16 + ALLOC_OVERHEAD
}

pub(crate) fn vec_heap_bytes<T>(v: &Vec<T>) -> usize {
    match v.capacity() {
        0 => 0,
        c => c * size_of::<T>() + ALLOC_OVERHEAD,
    }
}

/// Sorted ids, stored inline while there is only one (the common case for unique label values).
#[derive(Debug, Clone)]
pub(crate) enum IdList {
    One(u32),
    Many(Vec<u32>),
}

impl IdList {
    /// Adds an id larger than every id already present (callers assign ids in increasing order).
    pub(crate) fn push(&mut self, id: u32) {
        match self {
            IdList::One(first) => *self = IdList::Many(vec![*first, id]),
            IdList::Many(v) => v.push(id),
        }
    }

    pub(crate) fn as_slice(&self) -> &[u32] {
        match self {
            IdList::One(id) => std::slice::from_ref(id),
            IdList::Many(v) => v,
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            IdList::One(_) => 0,
            IdList::Many(v) => vec_heap_bytes(v),
        }
    }
}

/// Maps a 64-bit hash to the ids that have it. One id per hash is kept in a flat map; the rare
/// extra ids of colliding hashes go to a side map.
#[derive(Debug, Default)]
pub(crate) struct HashIndex {
    first: FastMap<u64, u32>,
    more: FastMap<u64, Vec<u32>>,
}

impl HashIndex {
    /// Ids stored under `hash`, oldest first.
    pub(crate) fn get(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        let first = self.first.get(&hash).copied();
        // Collisions are rare: skip the second probe while there are none at all.
        let more = match first {
            Some(_) if !self.more.is_empty() => self.more.get(&hash).map_or(&[][..], Vec::as_slice),
            _ => &[],
        };
        first.into_iter().chain(more.iter().copied())
    }

    /// The first id stored under `hash`.
    #[inline]
    pub(crate) fn first(&self, hash: u64) -> Option<u32> {
        self.first.get(&hash).copied()
    }

    pub(crate) fn insert(&mut self, hash: u64, id: u32) {
        match self.first.entry(hash) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.more.entry(hash).or_default().push(id);
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        map_heap_bytes::<u64, u32>(self.first.capacity())
            + map_heap_bytes::<u64, Vec<u32>>(self.more.capacity())
            + self.more.values().map(vec_heap_bytes).sum::<usize>()
    }
}

/// Stores each distinct string once, in one buffer, and names it by a dense `u32` symbol.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    buf: String,
    /// `ends[i]` is where symbol `i` ends in `buf`; it starts where symbol `i - 1` ends.
    ends: Vec<usize>,
    index: HashIndex,
    hasher: RandomState,
}

impl Interner {
    /// The symbol of `s`, if it was interned.
    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        self.get_hashed(self.hasher.hash_one(s), s)
    }

    fn get_hashed(&self, hash: u64, s: &str) -> Option<u32> {
        self.index.get(hash).find(|&sym| self.resolve(sym) == s)
    }

    /// The symbol of `s`, interning it if needed; `None` once the `u32` symbol space is used up.
    pub(crate) fn intern(&mut self, s: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(s);
        if let Some(sym) = self.get_hashed(hash, s) {
            return Some(sym);
        }
        let sym = u32::try_from(self.ends.len()).ok()?;
        self.buf.push_str(s);
        self.ends.push(self.buf.len());
        self.index.insert(hash, sym);
        Some(sym)
    }

    /// The string of a symbol this interner handed out ("" for any other).
    pub(crate) fn resolve(&self, sym: u32) -> &str {
        let (start, end) = self.span(sym);
        self.buf.get(start..end).unwrap_or("")
    }

    #[inline]
    fn span(&self, sym: u32) -> (usize, usize) {
        let i = sym as usize;
        let start = if i == 0 { 0 } else { self.ends.get(i - 1).copied().unwrap_or(0) };
        (start, self.ends.get(i).copied().unwrap_or(start))
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let buf = match self.buf.capacity() {
            0 => 0,
            c => c + ALLOC_OVERHEAD,
        };
        buf + vec_heap_bytes(&self.ends) + self.index.heap_bytes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn interner_round_trips_and_dedups() {
        let mut i = Interner::default();
        let a = i.intern("job").unwrap();
        let b = i.intern("").unwrap();
        let c = i.intern("instance").unwrap();
        assert_eq!(i.intern("job"), Some(a));
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(i.resolve(a), "job");
        assert_eq!(i.resolve(b), "");
        assert_eq!(i.resolve(c), "instance");
        assert_eq!(i.resolve(99), "");
        assert_eq!(i.get("instance"), Some(c));
        assert_eq!(i.get("nope"), None);
    }

    #[test]
    fn hash_index_keeps_colliding_ids() {
        let mut h = HashIndex::default();
        h.insert(7, 1);
        h.insert(7, 5);
        h.insert(8, 2);
        assert_eq!(h.get(7).collect::<Vec<_>>(), vec![1, 5]);
        assert_eq!(h.get(8).collect::<Vec<_>>(), vec![2]);
        assert_eq!(h.get(9).count(), 0);
    }

    #[test]
    fn id_list_stays_inline_for_one_id() {
        let mut l = IdList::One(3);
        assert_eq!(l.as_slice(), &[3]);
        assert_eq!(l.heap_bytes(), 0);
        l.push(9);
        assert_eq!(l.as_slice(), &[3, 9]);
        assert_eq!(size_of::<IdList>(), size_of::<Vec<u32>>());
    }
}
