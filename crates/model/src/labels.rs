use serde::Serialize;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Label {
    pub name: String,
    pub value: String,
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

/// The hash of a label set, used for routing and series lookup: xxh3 over
/// `name 0xff value 0xff` for each pair in order. Pairs must already be sorted.
pub fn label_hash<'a, I>(pairs: I) -> u64
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (n, v) in pairs {
        h.update(n);
        h.update(&[0xff]);
        h.update(v);
        h.update(&[0xff]);
    }
    h.digest()
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
    fn from_pairs_sorts() {
        let l = Labels::from_pairs([("job", "x"), ("__name__", "up")]);
        assert_eq!(l.0[0].name, "__name__");
        assert_eq!(l.get("job"), Some("x"));
    }
}
