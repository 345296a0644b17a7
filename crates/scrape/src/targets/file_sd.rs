//! File-based service discovery (`file_sd_configs`): target group files in JSON or YAML,
//! found through patterns whose last element may hold `*` and `?`. This is the parsing; the
//! watcher that re-reads files on change and every `refresh_interval` comes later.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::TargetGroup;
use crate::config::{labels_from_map, scalar_text};
use crate::relabel::is_valid_label_name;

/// The label file SD puts on every group: the file it came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// A validated `file_sd_configs` entry; relative patterns are already joined with the
/// config file's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSdConfig {
    pub files: Vec<PathBuf>,
    pub refresh_interval: Duration,
}

/// Why a target group file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Prometheus' `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`: a `*` only in the last
/// path element, and a known extension.
pub fn is_valid_file_sd_pattern(p: &str) -> bool {
    let ext_ok = ["json", "yml", "yaml", "JSON", "YML", "YAML"].iter().any(|e| {
        p.len() > e.len() && p.ends_with(e) && p.as_bytes()[p.len() - e.len() - 1] == b'.'
    });
    let star_ok = match p.find('*') {
        None => true,
        Some(i) => !p[i + 1..].contains('*') && !p[i..].contains('/'),
    };
    ext_ok && star_ok
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, serde_yaml_ng::Value>>,
}

/// Parses one target group file: a list of `{targets: [...], labels: {...}}`, JSON for a
/// `.json` name and YAML for `.yml`/`.yaml` (any case). Each group gets
/// `__meta_filepath` and the source `<path>:<index>`, as in Prometheus.
pub fn parse_file_sd(content: &str, path: &Path) -> Result<Vec<TargetGroup>, FileSdError> {
    let bad = |message: String| FileSdError::Invalid { path: path.to_path_buf(), message };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let groups: Vec<Option<RawGroup>> = match ext.as_str() {
        "json" => serde_json::from_str(content).map_err(|e| bad(e.to_string()))?,
        "yml" | "yaml" => {
            if content.trim().is_empty() {
                Vec::new()
            } else {
                serde_yaml_ng::from_str(content).map_err(|e| bad(e.to_string()))?
            }
        }
        _ => return Err(bad(format!("unknown file extension {ext:?} (use .json, .yml or .yaml)"))),
    };
    let filepath = path.display().to_string();
    let mut out = Vec::with_capacity(groups.len());
    for (i, g) in groups.into_iter().enumerate() {
        let g = g.ok_or_else(|| bad("nil target group item found".into()))?;
        let mut labels = std::collections::BTreeMap::new();
        for (name, value) in g.labels.unwrap_or_default() {
            if !is_valid_label_name(&name) {
                return Err(bad(format!("{name:?} is not a valid label name")));
            }
            let text = match (&value, ext.as_str()) {
                // JSON label values must be strings, as Go's decoder requires.
                (serde_yaml_ng::Value::String(s), _) => Some(s.clone()),
                (_, "json") => None,
                _ => scalar_text(&value),
            };
            let text =
                text.ok_or_else(|| bad(format!("the value of label {name:?} must be a string")))?;
            labels.insert(name, text);
        }
        labels.insert(FILEPATH_LABEL.to_string(), filepath.clone());
        out.push(TargetGroup {
            targets: g.targets.unwrap_or_default(),
            labels: labels_from_map(labels),
            source: format!("{filepath}:{i}"),
        });
    }
    Ok(out)
}

/// Reads and parses one target group file.
pub fn read_file_sd(path: &Path) -> Result<Vec<TargetGroup>, FileSdError> {
    let content = std::fs::read_to_string(path)
        .map_err(|source| FileSdError::Read { path: path.to_path_buf(), source })?;
    parse_file_sd(&content, path)
}

/// The files a pattern names, sorted, as Go's `filepath.Glob`: `*` and `?` match within
/// the last path element; a pattern without them names itself if it exists. Unreadable
/// folders give no files.
pub fn expand_pattern(pattern: &Path) -> Vec<PathBuf> {
    let Some(name) = pattern.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    if !name.contains(['*', '?']) {
        return if pattern.exists() { vec![pattern.to_path_buf()] } else { Vec::new() };
    }
    let dir = match pattern.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_str()?.to_string();
            wildcard_match(name.as_bytes(), n.as_bytes()).then(|| pattern.with_file_name(n))
        })
        .collect();
    found.sort();
    found
}

/// The target groups of a `file_sd_configs` entry, by file.
pub type FileGroups = BTreeMap<PathBuf, Vec<TargetGroup>>;

/// Reads every file of a `file_sd_configs` entry. A file that fails to read or parse is
/// reported and keeps the groups it had in `last` (as Prometheus keeps a file's last good
/// targets: a file caught half-written, or with a typo, does not take its targets down); a
/// file that is gone takes its groups with it.
pub fn load_file_sd(cfg: &FileSdConfig, last: &FileGroups) -> (FileGroups, Vec<FileSdError>) {
    let mut groups = FileGroups::new();
    let mut errors = Vec::new();
    for pattern in &cfg.files {
        for path in expand_pattern(pattern) {
            match read_file_sd(&path) {
                Ok(g) => {
                    groups.insert(path, g);
                }
                Err(e) => {
                    errors.push(e);
                    if let Some(g) = last.get(&path) {
                        groups.insert(path, g.clone());
                    }
                }
            }
        }
    }
    (groups, errors)
}

/// `*` (any run of bytes) and `?` (one byte) against a file name.
fn wildcard_match(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        for ok in ["foo/*.slow.json", "single/file.yml", "bar/*.yaml", "a.JSON", "/abs/x*.YML"] {
            assert!(is_valid_file_sd_pattern(ok), "{ok}");
        }
        for bad in ["foo/*/x.json", "a.txt", "json", "*.json*", "a*b*.json", ".json.x"] {
            assert!(!is_valid_file_sd_pattern(bad), "{bad}");
        }
        assert!(wildcard_match(b"*.json", b"a.json"));
        assert!(wildcard_match(b"a*b?.json", b"axxbc.json"));
        assert!(!wildcard_match(b"*.json", b"a.yml"));
        assert!(wildcard_match(b"*", b""));
    }
}
