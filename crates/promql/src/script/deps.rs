//! Which loaded series a query can read: used to skip evals that depend on data the
//! runner does not load (native histograms, start timestamps).

use promql_parser::label::Matchers;
use promql_parser::parser::{Expr, VectorSelector};
use strata_model::{Labels, METRIC_NAME};

/// The first of `series` that some selector of `expr` would select, if any.
pub(crate) fn first_selected<'a>(expr: &Expr, series: &'a [Labels]) -> Option<&'a Labels> {
    if series.is_empty() {
        return None;
    }
    let mut selectors = Vec::new();
    collect(expr, &mut selectors);
    series.iter().find(|l| selectors.iter().any(|vs| selects(vs, l)))
}

fn collect<'e>(expr: &'e Expr, out: &mut Vec<&'e VectorSelector>) {
    match expr {
        Expr::VectorSelector(vs) => out.push(vs),
        Expr::MatrixSelector(ms) => out.push(&ms.vs),
        Expr::Aggregate(a) => {
            collect(&a.expr, out);
            if let Some(p) = &a.param {
                collect(p, out);
            }
        }
        Expr::Unary(u) => collect(&u.expr, out),
        Expr::Binary(b) => {
            collect(&b.lhs, out);
            collect(&b.rhs, out);
        }
        Expr::Paren(p) => collect(&p.expr, out),
        Expr::Subquery(s) => collect(&s.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| collect(a, out)),
        Expr::Extension(e) => e.expr.children().iter().for_each(|c| collect(c, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
    }
}

/// Whether `vs` selects a series with these labels (absent labels match as "").
fn selects(vs: &VectorSelector, labels: &Labels) -> bool {
    let get = |name: &str| labels.get(name).unwrap_or("");
    if vs.name.as_deref().is_some_and(|n| n != get(METRIC_NAME)) {
        return false;
    }
    let Matchers { matchers, or_matchers } = &vs.matchers;
    let all = |ms: &[promql_parser::label::Matcher]| ms.iter().all(|m| m.is_match(get(&m.name)));
    all(matchers) && (or_matchers.is_empty() || or_matchers.iter().any(|g| all(g)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_selected_series() {
        let series = vec![
            Labels::from_pairs([("__name__", "h"), ("job", "a")]),
            Labels::from_pairs([("__name__", "other"), ("idx", "0")]),
        ];
        let sel = |q: &str| {
            let expr = promql_parser::parser::parse(q).unwrap();
            first_selected(&expr, &series).map(|l| l.get("__name__").unwrap_or("").to_string())
        };
        assert_eq!(sel("sum(rate(h[5m]))").as_deref(), Some("h"));
        assert_eq!(sel(r#"{job="a"} + 1"#).as_deref(), Some("h"));
        assert_eq!(sel(r#"count({idx="0"})"#).as_deref(), Some("other"));
        assert_eq!(sel(r#"topk(scalar(h), x)"#).as_deref(), Some("h"));
        assert_eq!(sel(r#"{__name__=~"oth.*"}"#).as_deref(), Some("other"));
        assert_eq!(sel(r#"h{job="b"}"#), None);
        assert_eq!(sel("label_replace(x, \"h\", \"\", \"\", \"\")"), None);
        assert_eq!(sel("1 + 2"), None);
    }
}
