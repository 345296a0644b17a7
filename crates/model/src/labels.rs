use serde::Serialize;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Clone for Label {
    fn clone(&self) -> Self {
        Label { name: self.name.clone(), value: self.value.clone() }
    }

    /// Reuses the strings' buffers (what `Vec::clone_from` of label sets relies on).
    fn clone_from(&mut self, source: &Self) {
        self.name.clone_from(&source.name);
        self.value.clone_from(&source.value);
    }
}

/// A label set, sorted by name, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(pub Vec<Label>);

impl Labels {
    /// Builds a label set from pairs, sorting them by name.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<Label> =
            pairs.into_iter().map(|(n, v)| Label { name: n.into(), value: v.into() }).collect();
        v.sort();
        Labels(v)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|l| l.name == name).map(|l| l.value.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The hash of a label set, stored in blocks (`s_series_hash`) and used to group series:
/// xxh3 over `name 0xff value 0xff` for each pair in order. Pairs must already be sorted.
/// (Routing and the head's lookup hash the series key instead: [`crate::key_hash`].)
pub fn label_hash<'a, I>(pairs: I) -> u64
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    // This runs for every series of every push. xxh3's one-shot and streaming forms give the
    // same digest, and one-shot over a stack buffer is several times faster than four small
    // streaming updates per label, so stream only label sets too long for the buffer.
    let mut buf = [0u8; 512];
    let mut len = 0;
    let mut pairs = pairs.into_iter();
    while let Some((n, v)) = pairs.next() {
        let end = len + n.len() + v.len() + 2;
        if end > buf.len() {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(&buf[..len]);
            for (n, v) in std::iter::once((n, v)).chain(pairs) {
                h.update(n);
                h.update(&[0xff]);
                h.update(v);
                h.update(&[0xff]);
            }
            return h.digest();
        }
        buf[len..len + n.len()].copy_from_slice(n);
        len += n.len();
        buf[len] = 0xff;
        buf[len + 1..end - 1].copy_from_slice(v);
        buf[end - 1] = 0xff;
        len = end;
    }
    xxhash_rust::xxh3::xxh3_64(&buf[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_separates_names_from_values() {
        let a = label_hash([(&b"ab"[..], &b"c"[..])]);
        let b = label_hash([(&b"a"[..], &b"bc"[..])]);
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_xxh3_of_the_separated_pairs() {
        // Short sets hash from the stack buffer, long ones (past 512 bytes) stream; both
        // must equal xxh3 over `name 0xff value 0xff ...`, which blocks store.
        for len in [0, 1, 100, 250, 254, 255, 256, 300, 600, 5000] {
            let value = "v".repeat(len);
            let pairs = [("__name__", "up"), ("a", value.as_str()), ("b", "x"), ("c", "")];
            let mut flat = Vec::new();
            for (n, v) in pairs {
                flat.extend_from_slice(n.as_bytes());
                flat.push(0xff);
                flat.extend_from_slice(v.as_bytes());
                flat.push(0xff);
            }
            let got = label_hash(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
            assert_eq!(got, xxhash_rust::xxh3::xxh3_64(&flat), "value length {len}");
            // The streaming form the hash was first computed with.
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            for (n, v) in pairs {
                h.update(n.as_bytes());
                h.update(&[0xff]);
                h.update(v.as_bytes());
                h.update(&[0xff]);
            }
            assert_eq!(got, h.digest(), "value length {len}");
        }
        assert_eq!(label_hash(std::iter::empty()), xxhash_rust::xxh3::xxh3_64(b""));
    }

    #[test]
    fn from_pairs_sorts() {
        let l = Labels::from_pairs([("job", "x"), ("__name__", "up")]);
        assert_eq!(l.0[0].name, "__name__");
        assert_eq!(l.get("job"), Some("x"));
    }
}
