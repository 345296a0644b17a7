//! Relabeling with Prometheus' semantics (`model/relabel`): the `relabel_configs` applied to
//! targets before a scrape and the `metric_relabel_configs` applied to scraped series.
//!
//! [`RelabelConfig`] deserializes from a `relabel_config` YAML block and is validated as it
//! is read, so a bad rule fails with its line; [`relabel`] applies a list of rules to a
//! label set and returns `None` when a rule drops it.
//!
//! ```
//! use strata_model::Labels;
//! use strata_scrape::relabel::{relabel, RelabelConfig};
//! let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(
//!     "- {source_labels: [__name__], regex: 'go_.*', action: drop}\n\
//!      - {source_labels: [pod], regex: '(.*)-[a-z0-9]+', target_label: app}\n",
//! ).unwrap();
//! let out = relabel(&Labels::from_pairs([("__name__", "up"), ("pod", "api-7f9c")]), &rules);
//! assert_eq!(out.unwrap().get("app"), Some("api"));
//! let dropped = relabel(&Labels::from_pairs([("__name__", "go_goroutines")]), &rules);
//! assert!(dropped.is_none());
//! ```

mod expand;
mod md5;
#[cfg(test)]
mod tests;

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer};
use strata_model::{Label, Labels};

pub use expand::is_valid_label_name;

/// What a rule does. Read case-insensitively, as Prometheus does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        const ALL: [Action; 11] = [
            Action::Replace,
            Action::Keep,
            Action::Drop,
            Action::KeepEqual,
            Action::DropEqual,
            Action::HashMod,
            Action::LabelMap,
            Action::LabelDrop,
            Action::LabelKeep,
            Action::Lowercase,
            Action::Uppercase,
        ];
        let lower = s.to_lowercase();
        ALL.into_iter().find(|a| a.as_str() == lower)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::parse_scalar(d, "a relabel action", |s| {
            Action::parse(s).ok_or_else(|| format!("unknown relabel action {s:?}"))
        })
    }
}

/// A rule as written; `None` means "not given" (Prometheus' defaults then apply, and some
/// actions forbid fields that are given). Turned into a [`RelabelConfig`] by `try_from`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelabelConfig {
    pub source_labels: Option<Vec<String>>,
    pub separator: Option<String>,
    /// `regex:` with no value is the empty regex, as in Prometheus (not the default).
    #[serde(default, deserialize_with = "null_is_empty")]
    pub regex: Option<String>,
    pub modulus: Option<u64>,
    pub target_label: Option<String>,
    pub replacement: Option<String>,
    pub action: Option<Action>,
}

fn null_is_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?.unwrap_or_default()))
}

/// A regular expression anchored at both ends (`^(?:...)$`), as Prometheus compiles them.
#[derive(Debug, Clone)]
pub struct AnchoredRegex {
    source: String,
    re: Regex,
}

impl AnchoredRegex {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let re = Regex::new(&format!("^(?:{source})$"))?;
        Ok(AnchoredRegex { source: source.to_string(), re })
    }

    /// The expression as written, without the anchors.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

impl PartialEq for AnchoredRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// A validated relabeling rule, its regex compiled.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawRelabelConfig")]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: AnchoredRegex,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
}

pub const DEFAULT_SEPARATOR: &str = ";";
pub const DEFAULT_REGEX: &str = "(.*)";
pub const DEFAULT_REPLACEMENT: &str = "$1";

impl TryFrom<RawRelabelConfig> for RelabelConfig {
    type Error = String;

    /// Applies Prometheus' defaults and its `relabel.Config.Validate` checks, with its
    /// messages.
    fn try_from(raw: RawRelabelConfig) -> Result<Self, String> {
        let action = raw.action.unwrap_or(Action::Replace);
        for name in raw.source_labels.iter().flatten() {
            if !is_valid_label_name(name) {
                return Err(format!("{name:?} is not a valid label name in source_labels"));
            }
        }
        let regex_src = raw.regex.as_deref().unwrap_or(DEFAULT_REGEX);
        let regex = AnchoredRegex::new(regex_src).map_err(|e| {
            // Report the error against the text as written, not the anchored form.
            let e = Regex::new(regex_src).err().unwrap_or(e);
            format!("invalid regex {regex_src:?}: {e}")
        })?;
        let cfg = RelabelConfig {
            source_labels: raw.source_labels.clone().unwrap_or_default(),
            separator: raw.separator.clone().unwrap_or_else(|| DEFAULT_SEPARATOR.into()),
            regex,
            modulus: raw.modulus.unwrap_or(0),
            target_label: raw.target_label.clone().unwrap_or_default(),
            replacement: raw.replacement.clone().unwrap_or_else(|| DEFAULT_REPLACEMENT.into()),
            action,
        };
        use Action::*;
        let (a, target) = (cfg.action, cfg.target_label.as_str());
        if a == HashMod && cfg.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target =
            matches!(a, Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual);
        if needs_target && target.is_empty() {
            return Err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        let invalid_target = || format!("{target:?} is invalid 'target_label' for {a} action");
        if a == Replace {
            let ok = if target.contains('$') {
                expand::is_valid_label_template(target)
            } else {
                is_valid_label_name(target)
            };
            if !ok {
                return Err(invalid_target());
            }
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual | HashMod)
            && !is_valid_label_name(target)
        {
            return Err(invalid_target());
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual)
            && cfg.replacement != DEFAULT_REPLACEMENT
        {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if a == LabelMap && !expand::is_valid_label_template(&cfg.replacement) {
            return Err(format!("{:?} is invalid 'replacement' for {a} action", cfg.replacement));
        }
        if matches!(a, KeepEqual | DropEqual)
            && (raw.regex.is_some()
                || cfg.modulus != 0
                || cfg.separator != DEFAULT_SEPARATOR
                || cfg.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (raw.source_labels.is_some()
                || !target.is_empty()
                || cfg.modulus != 0
                || cfg.separator != DEFAULT_SEPARATOR
                || cfg.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!("{a} action requires only 'regex', and no other fields"));
        }
        Ok(cfg)
    }
}

/// Applies `cfgs` in order to a copy of `labels`. `None` means a rule dropped the set.
pub fn relabel(labels: &Labels, cfgs: &[RelabelConfig]) -> Option<Labels> {
    let mut b = Builder::new(labels);
    if !process(&mut b, cfgs) {
        return None;
    }
    Some(b.labels())
}

/// Applies `cfgs` in order to `b`; false when a rule dropped the set (and `b` is then
/// partly rewritten).
pub fn process(b: &mut Builder, cfgs: &[RelabelConfig]) -> bool {
    cfgs.iter().all(|cfg| apply(cfg, b))
}

fn apply(cfg: &RelabelConfig, b: &mut Builder) -> bool {
    let mut val = String::new();
    for (i, name) in cfg.source_labels.iter().enumerate() {
        if i > 0 {
            val.push_str(&cfg.separator);
        }
        val.push_str(b.get(name));
    }
    match cfg.action {
        Action::Drop => return !cfg.regex.is_match(&val),
        Action::Keep => return cfg.regex.is_match(&val),
        Action::DropEqual => return b.get(&cfg.target_label) != val,
        Action::KeepEqual => return b.get(&cfg.target_label) == val,
        Action::Replace => {
            let re = &cfg.regex.re;
            let Some(caps) = re.captures(&val) else {
                return true;
            };
            let mut target = String::new();
            expand::expand(&mut target, &cfg.target_label, re, &caps);
            if !is_valid_label_name(&target) {
                return true;
            }
            let mut value = String::new();
            expand::expand(&mut value, &cfg.replacement, re, &caps);
            b.set(&target, value);
        }
        Action::Lowercase => b.set(&cfg.target_label, map_chars(&val, char::to_lowercase)),
        Action::Uppercase => b.set(&cfg.target_label, map_chars(&val, char::to_uppercase)),
        Action::HashMod => {
            let digest = md5::md5(val.as_bytes());
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&digest[8..]);
            // The last 8 bytes, big-endian, as Prometheus has always computed it.
            let m = u64::from_be_bytes(tail) % cfg.modulus;
            b.set(&cfg.target_label, m.to_string());
        }
        Action::LabelMap => {
            for l in b.snapshot() {
                if let Some(caps) = cfg.regex.re.captures(&l.name) {
                    let mut name = String::new();
                    expand::expand(&mut name, &cfg.replacement, &cfg.regex.re, &caps);
                    b.set(&name, l.value);
                }
            }
        }
        Action::LabelDrop => {
            for l in b.snapshot() {
                if cfg.regex.is_match(&l.name) {
                    b.del(&l.name);
                }
            }
        }
        Action::LabelKeep => {
            for l in b.snapshot() {
                if !cfg.regex.is_match(&l.name) {
                    b.del(&l.name);
                }
            }
        }
    }
    true
}

/// Case mapping per character, as Go's `strings.ToLower`/`ToUpper`: a character whose
/// mapping is more than one character (`ß` upper-cased) is kept as it is.
fn map_chars<I: Iterator<Item = char>>(s: &str, f: fn(char) -> I) -> String {
    s.chars()
        .map(|c| {
            let mut m = f(c);
            match (m.next(), m.next()) {
                (Some(one), None) => one,
                _ => c,
            }
        })
        .collect()
}

/// A label set being rewritten, with the iteration order of Prometheus' `labels.Builder`:
/// untouched original labels in name order, then labels set since, in the order they were
/// first set. The order decides which label wins when `labelmap` maps two names to one.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    /// (label, still the original)
    entries: Vec<(Label, bool)>,
}

impl Builder {
    pub fn new(labels: &Labels) -> Self {
        Builder { entries: labels.iter().map(|l| (l.clone(), true)).collect() }
    }

    /// The value of `name`, or "" when it is absent (empty and absent are the same).
    pub fn get(&self, name: &str) -> &str {
        self.entries.iter().find(|(l, _)| l.name == name).map_or("", |(l, _)| l.value.as_str())
    }

    /// Sets `name`; an empty value deletes it.
    pub fn set(&mut self, name: &str, value: String) {
        if value.is_empty() {
            return self.del(name);
        }
        match self.entries.iter().position(|(l, _)| l.name == name) {
            Some(i) if !self.entries[i].1 => self.entries[i].0.value = value,
            found => {
                if let Some(i) = found {
                    self.entries.remove(i);
                }
                self.entries.push((Label { name: name.to_string(), value }, false));
            }
        }
    }

    pub fn del(&mut self, name: &str) {
        self.entries.retain(|(l, _)| l.name != name);
    }

    /// The labels in iteration order, copied so that the caller may set and delete while
    /// walking them.
    pub fn snapshot(&self) -> Vec<Label> {
        self.entries.iter().map(|(l, _)| l.clone()).collect()
    }

    /// The current label set, sorted by name.
    pub fn labels(&self) -> Labels {
        let mut v: Vec<Label> = self.entries.iter().map(|(l, _)| l.clone()).collect();
        v.sort();
        Labels(v)
    }
}
