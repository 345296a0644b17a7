//! Extended selectors (`x[5m] anchored`, `x[5m] smoothed`, `x smoothed`), which reach the
//! evaluator as calls of internal functions (see `extsel`).

use promql_parser::parser::{Call, Expr, VectorSelector};
use strata_model::is_stale_nan;

use super::{at_ms, offset_ms, Ev, Grid, Result, Series, Val};
use crate::extsel::Modifier;
use crate::functions::extended::interpolate;
use crate::value::QueryError;

/// Rejects an extended range selector passed to a function that does not take one, with
/// Prometheus's message. Prometheus checks this when parsing, so it fails whatever the data.
pub(super) fn check_extended(e: &Expr) -> Result<()> {
    match e {
        Expr::Call(c) => {
            if Modifier::of_function(c.func.name).is_none() {
                for a in &c.args.args {
                    if let Expr::Call(inner) = a.as_ref() {
                        if let Some((m, true)) = Modifier::of_function(inner.func.name) {
                            if let Some(msg) = m.check_function(c.func.name) {
                                return Err(QueryError::BadData(msg));
                            }
                        }
                    }
                }
            }
            c.args.args.iter().try_for_each(|a| check_extended(a))
        }
        Expr::Aggregate(a) => {
            check_extended(&a.expr)?;
            a.param.as_deref().map_or(Ok(()), check_extended)
        }
        Expr::Unary(u) => check_extended(&u.expr),
        Expr::Binary(b) => {
            check_extended(&b.lhs)?;
            check_extended(&b.rhs)
        }
        Expr::Paren(p) => check_extended(&p.expr),
        Expr::Subquery(sq) => check_extended(&sq.expr),
        Expr::MatrixSelector(_)
        | Expr::VectorSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => Ok(()),
    }
}

impl Ev<'_> {
    /// A call of an extended-selector function: the range vector with its modifier, or the
    /// smoothed instant vector.
    pub(super) fn extended(
        &mut self,
        c: &Call,
        modifier: Modifier,
        range: bool,
        g: Grid,
    ) -> Result<Val> {
        let a = c.args.args.first().map(|a| a.as_ref());
        match (a, range) {
            (Some(Expr::MatrixSelector(m)), true) => {
                let mut rv = self.select_range(m)?;
                rv.modifier = Some(modifier);
                Ok(Val::Matrix(rv))
            }
            (Some(Expr::VectorSelector(vs)), false) => {
                Ok(Val::Vector(self.select_smoothed(vs, g)?))
            }
            _ => Err(QueryError::BadData(format!(
                "the {} modifier applies to a {} selector only",
                modifier.keyword(),
                if range { "range" } else { "vector" }
            ))),
        }
    }

    /// A smoothed instant selector: at each step, the value on the line between the newest
    /// sample at or before the step (within the lookback delta) and the next one (within the
    /// lookback delta after it); the newest sample's value when there is no next one.
    fn select_smoothed(&mut self, vs: &VectorSelector, g: Grid) -> Result<Vec<Series>> {
        let off = offset_ms(&vs.offset);
        let at = at_ms(&vs.at, self.p);
        let lookback = self.p.lookback;
        let n = g.len();
        let mut out = Vec::new();
        for rs in self.take_raw(vs) {
            self.check_room(n)?;
            let mut vals = vec![None; n];
            let mut any = false;
            for (i, slot) in vals.iter_mut().enumerate() {
                let te = at.unwrap_or(g.ts(i)) - off;
                let idx = rs.samples.partition_point(|s| s.t <= te);
                let Some(prev) = idx.checked_sub(1).and_then(|p| rs.samples.get(p)) else {
                    continue;
                };
                if prev.t <= te.saturating_sub(lookback) || is_stale_nan(prev.v) {
                    continue;
                }
                let v = match rs.samples.get(idx) {
                    Some(next)
                        if prev.t < te
                            && next.t <= te.saturating_add(lookback)
                            && !is_stale_nan(next.v) =>
                    {
                        interpolate(*prev, *next, te, false)
                    }
                    _ => prev.v,
                };
                *slot = Some(v);
                any = true;
            }
            if any {
                self.charge(n)?;
                out.push(Series { labels: rs.labels, vals, drop_name: false });
            }
        }
        Ok(out)
    }
}
