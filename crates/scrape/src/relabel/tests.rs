//! The cases of Prometheus' `model/relabel/relabel_test.go`, written as YAML rules.
use proptest::prelude::*;

use super::*;

/// Parses a list of rules written one per line (leading spaces are ignored).
fn rules(yaml: &str) -> Vec<RelabelConfig> {
    let yaml: Vec<&str> = yaml.lines().map(str::trim_start).collect();
    serde_yaml_ng::from_str(&yaml.join("\n")).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn check(input: &[(&str, &str)], yaml: &str, want: Option<&[(&str, &str)]>) {
    let got = relabel(&labels(input), &rules(yaml));
    assert_eq!(got, want.map(labels), "rules:\n{yaml}");
}

const ABC: &[(&str, &str)] = &[("a", "foo"), ("b", "bar"), ("c", "baz")];

#[test]
fn replace() {
    check(
        ABC,
        "- {source_labels: [a], regex: f(.*), target_label: d, replacement: 'ch${1}-ch${1}'}",
        Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
    );
    check(
        ABC,
        "- {source_labels: [a, b], regex: 'f(.*);(.*)r', target_label: a, replacement: 'b${1}${2}m'}
         - {source_labels: [c, a], regex: '(b).*b(.*)ba(.*)', target_label: d, replacement: '$1$2$2$3'}",
        Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]),
    );
    check(
        &[("a", "abc")],
        "- {source_labels: [a], regex: '.*(b).*', target_label: d}",
        Some(&[("a", "abc"), ("d", "b")]),
    );
    // No match, no replacement.
    check(
        &[("a", "boo")],
        "- {source_labels: [a], regex: f, target_label: b, replacement: bar}",
        Some(&[("a", "boo")]),
    );
    // Target label from a group.
    check(
        &[("a", "some-name-value")],
        "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', replacement: '${2}', target_label: '${1}'}",
        Some(&[("a", "some-name-value"), ("name", "value")]),
    );
    // An empty result deletes the target (here it never existed).
    check(
        &[("a", "some-name-value")],
        "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', replacement: '${3}', target_label: '${1}'}",
        Some(&[("a", "some-name-value")]),
    );
    // Target names that expand to something invalid change nothing.
    check(
        &[("a", "some-name-0")],
        "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', replacement: '${1}', target_label: '${3}'}
         - {source_labels: [a], regex: 'some-([^-]+)(-[^,]+)', replacement: '${1}', target_label: '${3}'}",
        Some(&[("a", "some-name-0")]),
    );
    check(
        &[("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar")],
        "- {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)path:(/[^,]+).*', replacement: '${1}', target_label: __metrics_path__}
         - {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)job:([^,]+).*', replacement: '${1}', target_label: job}
         - {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)label:([^=]+)=([^,]+).*', replacement: '${2}', target_label: '${1}'}",
        Some(&[
            ("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"),
            ("__metrics_path__", "/secret"),
            ("job", "some-job"),
            ("foo", "bar"),
        ]),
    );
    // Defaults: a static replacement, and deletion through an empty source.
    check(
        &[("a", "x"), ("d", "y")],
        "- {target_label: b, replacement: static}\n- {source_labels: [nope], target_label: d}",
        Some(&[("a", "x"), ("b", "static")]),
    );
    // The regex is anchored: "o" does not match "foo".
    check(
        &[("a", "foo")],
        "- {source_labels: [a], regex: o, target_label: b}",
        Some(&[("a", "foo")]),
    );
}

#[test]
fn keep_and_drop() {
    check(
        &[("a", "foo")],
        "- {source_labels: [a], regex: '.*o.*', action: drop}\n- {source_labels: [a], regex: 'f(.*)', target_label: d}",
        None,
    );
    check(
        &[("a", "foo"), ("b", "bar")],
        "- {source_labels: [a], regex: '.*o.*', action: drop}",
        None,
    );
    check(
        &[("a", "foo")],
        "- {source_labels: [a], regex: no-match, action: drop}",
        Some(&[("a", "foo")]),
    );
    // Anchored: `f|o` matches neither all of "foo" nor part of it.
    check(
        &[("a", "foo")],
        "- {source_labels: [a], regex: f|o, action: drop}",
        Some(&[("a", "foo")]),
    );
    check(&[("a", "foo")], "- {source_labels: [a], regex: no-match, action: keep}", None);
    check(
        &[("a", "foo")],
        "- {source_labels: [a], regex: f.*, action: KEEP}",
        Some(&[("a", "foo")]),
    );
    // A missing source label is the empty string.
    check(
        &[("a", "foo")],
        "- {source_labels: [zz], regex: '', action: keep}",
        Some(&[("a", "foo")]),
    );
}

#[test]
fn keepequal_and_dropequal() {
    let ports = &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")];
    check(
        ports,
        "- {source_labels: [__tmp_port], action: keepequal, target_label: __port1}",
        Some(ports),
    );
    check(ports, "- {source_labels: [__tmp_port], action: dropequal, target_label: __port1}", None);
    check(
        ports,
        "- {source_labels: [__tmp_port], action: dropequal, target_label: __port2}",
        Some(ports),
    );
    check(ports, "- {source_labels: [__tmp_port], action: keepequal, target_label: __port2}", None);
}

#[test]
fn hashmod() {
    check(
        ABC,
        "- {source_labels: [c], target_label: d, action: hashmod, modulus: 1000}",
        Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
    );
    check(
        &[("a", "foo\nbar")],
        "- {source_labels: [a], target_label: b, action: hashmod, modulus: 1000}",
        Some(&[("a", "foo\nbar"), ("b", "734")]),
    );
}

#[test]
fn labelmap_labeldrop_labelkeep() {
    let b = &[("a", "foo"), ("b1", "bar"), ("b2", "baz")];
    check(
        b,
        "- {regex: '(b.*)', replacement: 'bar_${1}', action: labelmap}",
        Some(&[("a", "foo"), ("b1", "bar"), ("b2", "baz"), ("bar_b1", "bar"), ("bar_b2", "baz")]),
    );
    let meta = &[
        ("a", "foo"),
        ("__meta_my_bar", "aaa"),
        ("__meta_my_baz", "bbb"),
        ("__meta_other", "ccc"),
    ];
    check(
        meta,
        "- {regex: '__meta_(my.*)', replacement: '${1}', action: labelmap}",
        Some(&[
            ("a", "foo"),
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("__meta_other", "ccc"),
            ("my_bar", "aaa"),
            ("my_baz", "bbb"),
        ]),
    );
    check(b, "- {regex: '(b.*)', action: labelkeep}", Some(&[("b1", "bar"), ("b2", "baz")]));
    check(b, "- {regex: '(b.*)', action: labeldrop}", Some(&[("a", "foo")]));
    // prometheus/prometheus#12283: a label dropped and then set again.
    check(
        &[
            ("__meta_kubernetes_pod_container_port_name", "foo"),
            ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
        ],
        "- {regex: '^__meta_kubernetes_pod_container_port_name$', action: labeldrop}
         - {source_labels: [__meta_kubernetes_pod_annotation_XXX_metrics_port], regex: '(.+)', replacement: metrics, target_label: __meta_kubernetes_pod_container_port_name}
         - {source_labels: [__meta_kubernetes_pod_container_port_name], regex: '^metrics$', action: keep}",
        Some(&[
            ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
            ("__meta_kubernetes_pod_container_port_name", "metrics"),
        ]),
    );
}

#[test]
fn labelmap_collisions_follow_builder_order() {
    // Original labels in name order, then labels set by earlier rules: the last write wins.
    check(
        &[("x_a", "1"), ("x_b", "2")],
        "- {regex: 'x_.', replacement: y, action: labelmap}",
        Some(&[("x_a", "1"), ("x_b", "2"), ("y", "2")]),
    );
    check(
        &[("x_a", "1"), ("x_b", "2")],
        "- {source_labels: [x_b], target_label: x_a}\n- {regex: 'x_.', replacement: y, action: labelmap}",
        Some(&[("x_a", "2"), ("x_b", "2"), ("y", "2")]),
    );
    check(
        &[("x_a", "1"), ("x_b", "2")],
        "- {source_labels: [x_a], regex: '(.*)', replacement: '${1}0', target_label: x_a}\n- {regex: 'x_.', replacement: y, action: labelmap}",
        Some(&[("x_a", "10"), ("x_b", "2"), ("y", "10")]),
    );
}

#[test]
fn lowercase_uppercase() {
    check(
        &[("foo", "bAr123Foo")],
        "- {source_labels: [foo], action: uppercase, target_label: foo_uppercase}
         - {source_labels: [foo], action: lowercase, target_label: foo_lowercase}",
        Some(&[
            ("foo", "bAr123Foo"),
            ("foo_lowercase", "bar123foo"),
            ("foo_uppercase", "BAR123FOO"),
        ]),
    );
    // Go maps rune by rune: ß has no one-rune upper case and stays.
    check(
        &[("a", "straße")],
        "- {source_labels: [a], action: uppercase, target_label: a}",
        Some(&[("a", "STRAßE")]),
    );
    // An empty source deletes the target.
    check(&[("a", "x")], "- {source_labels: [b], action: lowercase, target_label: a}", Some(&[]));
}

#[test]
fn validation_errors_match_prometheus() {
    let err =
        |yaml: &str| serde_yaml_ng::from_str::<Vec<RelabelConfig>>(yaml).unwrap_err().to_string();
    for (yaml, want) in [
        ("- {action: replace}", "requires 'target_label' value"),
        ("- {action: lowercase}", "requires 'target_label' value"),
        ("- {action: lowercase, target_label: '${3}'}", r#""${3}" is invalid 'target_label'"#),
        ("- {source_labels: [a], target_label: '0${3}'}", r#""0${3}" is invalid 'target_label'"#),
        ("- {source_labels: [a], target_label: '-${3}'}", r#""-${3}" is invalid 'target_label' for replace action"#),
        ("- {source_labels: [a], target_label: 'a-b'}", r#""a-b" is invalid 'target_label' for replace action"#),
        ("- {action: hashmod, target_label: x}", "requires non-zero modulus"),
        ("- {action: hashmod, modulus: 2}", "requires 'target_label' value"),
        ("- {action: labelmap, replacement: '-x'}", r#""-x" is invalid 'replacement' for labelmap action"#),
        ("- {action: labelkeep, source_labels: [a]}", "labelkeep action requires only 'regex', and no other fields"),
        ("- {action: labeldrop, target_label: a}", "labeldrop action requires only 'regex', and no other fields"),
        ("- {action: labeldrop, separator: ','}", "labeldrop action requires only 'regex', and no other fields"),
        ("- {action: labeldrop, replacement: x}", "labeldrop action requires only 'regex', and no other fields"),
        ("- {action: labeldrop, modulus: 3}", "labeldrop action requires only 'regex', and no other fields"),
        ("- {action: keepequal, target_label: a, regex: x}", "keepequal action requires only 'source_labels' and `target_label`, and no other fields"),
        ("- {action: dropequal, target_label: a, separator: x}", "dropequal action requires only"),
        ("- {action: dropequal, target_label: a, replacement: x}", "'replacement' can not be set for dropequal action"),
        ("- {action: uppercase, target_label: a, replacement: x}", "'replacement' can not be set for uppercase action"),
        ("- {action: keep, regex: '(['}", "invalid regex"),
        ("- {action: explode}", r#"unknown relabel action "explode""#),
        ("- {source_labels: ['not$allowed'], target_label: a}", r#""not$allowed" is not a valid label name"#),
        ("- {target_label: a, regexp: x}", "unknown field `regexp`"),
    ] {
        let e = err(yaml);
        assert!(e.contains(want), "{yaml}: {e}");
    }
    // The explicit defaults are allowed where fields are forbidden.
    rules("- {action: labeldrop, separator: ';', replacement: '$1', regex: x}");
    rules("- {action: keepequal, source_labels: [a], target_label: b, separator: ';'}");
    // Numbers are read as text, as Go's YAML does (`regex: 1` in Prometheus' own test config).
    let r = rules(
        "- {source_labels: [a], regex: 1, action: keep}\n- {target_label: b, replacement: 2}",
    );
    assert_eq!(r[0].regex.as_str(), "1");
    assert_eq!(r[1].replacement, "2");
}

fn arb_rule() -> impl Strategy<Value = RawRelabelConfig> {
    let name = prop::sample::select(vec!["a", "b", "__name__", "__x", "job", "c1"]);
    let regex = prop::sample::select(vec![
        "(.*)",
        "a(.*)",
        "(b)|(c)",
        ".*",
        "",
        "(?P<n>.)(.*)",
        "[ab]+",
        "(a*)*",
    ]);
    let template =
        prop::sample::select(vec!["$1", "${1}", "$n", "$2x", "${n}_y", "$$", "x$", "", "$0"]);
    let action = prop::sample::select(vec![
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
    ]);
    (
        prop::collection::vec(name.clone(), 0..3),
        regex,
        template.clone(),
        name,
        template,
        action,
        1u64..5,
    )
        .prop_map(|(src, regex, target_tpl, target, repl, action, modulus)| {
            let target = if action == Action::Replace && target_tpl.contains('$') {
                format!("t{target_tpl}")
            } else {
                target.to_string()
            };
            RawRelabelConfig {
                source_labels: Some(src.into_iter().map(String::from).collect()),
                separator: None,
                regex: Some(regex.to_string()),
                modulus: Some(modulus),
                target_label: Some(target),
                replacement: Some(repl.to_string()),
                action: Some(action),
            }
        })
}

proptest! {
    #[test]
    fn relabeling_never_panics(
        raw in prop::collection::vec(arb_rule(), 0..6),
        pairs in prop::collection::vec(("[a-c_]{1,3}", "\\PC{0,6}"), 0..6),
    ) {
        // Most generated rules are invalid for their action; keep the ones that validate.
        let cfgs: Vec<RelabelConfig> = raw.into_iter().filter_map(|r| r.try_into().ok()).collect();
        let unique: std::collections::BTreeMap<_, _> =
            pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let input = Labels::from_pairs(unique);
        if let Some(out) = relabel(&input, &cfgs) {
            prop_assert!(out.0.windows(2).all(|w| w[0].name < w[1].name), "{out:?}");
            prop_assert!(out.iter().all(|l| !l.value.is_empty()));
        }
    }
}
