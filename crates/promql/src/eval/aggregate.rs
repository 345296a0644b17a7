//! Aggregations: grouping once per series, then per-step reduction; topk/bottomk/limitk/
//! limit_ratio pick series and keep their labels.

use super::*;

impl<'a> Ev<'a> {
    pub(super) fn aggregate(&mut self, a: &AggregateExpr, g: Grid) -> Result<Val> {
        let op = a.op.id();
        let n = g.len();
        // Parameters first (Prometheus evaluates them per step).
        let mut k_param: Option<Vec<f64>> = None;
        let mut label_param: Option<String> = None;
        if let Some(pe) = &a.param {
            if op == tok::T_COUNT_VALUES {
                label_param = Some(self.string_arg(pe, g)?);
            } else {
                k_param = Some(self.scalar_arg(pe, g)?);
            }
        }
        let input = self.vector_arg(&a.expr, g)?;
        let (by, names): (bool, Vec<String>) = match &a.modifier {
            None => (true, Vec::new()),
            Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
        };
        // Group series once: hash the grouping labels without allocating, build a label set
        // only for a new group.
        let in_group = |l: &Label| {
            if by {
                names.contains(&l.name)
            } else {
                l.name != METRIC_NAME && !names.contains(&l.name)
            }
        };
        let mut gindex: HashMap<u64, Vec<usize>> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<usize>)> = Vec::new();
        for (i, s) in input.iter().enumerate() {
            let h = strata_model::label_hash(
                s.labels
                    .iter()
                    .filter(|l| in_group(l))
                    .map(|l| (l.name.as_bytes(), l.value.as_bytes())),
            );
            let slot = gindex.entry(h).or_default();
            let found = slot.iter().copied().find(|&gi| {
                let mut it = s.labels.iter().filter(|l| in_group(l));
                groups[gi].0.iter().all(|g| it.next() == Some(g)) && it.next().is_none()
            });
            let gi = match found {
                Some(gi) => gi,
                None => {
                    let gl = Labels(s.labels.iter().filter(|l| in_group(l)).cloned().collect());
                    groups.push((gl, Vec::new()));
                    slot.push(groups.len() - 1);
                    groups.len() - 1
                }
            };
            groups[gi].1.push(i);
        }

        match op {
            tok::T_TOPK | tok::T_BOTTOMK | tok::T_LIMITK | tok::T_LIMIT_RATIO => {
                let params = k_param.unwrap_or_else(|| vec![f64::NAN; n]);
                return self.aggregate_select(op, input, &groups, &params, g);
            }
            tok::T_COUNT_VALUES => {
                let label = label_param.unwrap_or_default();
                if !valid_label_name(&label) {
                    return Err(exec(format!(
                        "invalid label name {}",
                        crate::guard::go_quote(&label)
                    )));
                }
                let mut c = Collector::new(n);
                for (gl, members) in &groups {
                    for i in 0..n {
                        let mut counts: Vec<(String, f64)> = Vec::new();
                        for &m in members {
                            if let Some(v) = input[m].vals[i] {
                                let key = format_float(v);
                                match counts.iter_mut().find(|(k, _)| *k == key) {
                                    Some(e) => e.1 += 1.0,
                                    None => counts.push((key, 1.0)),
                                }
                            }
                        }
                        for (key, cnt) in counts {
                            let mut l = gl.clone();
                            set_label(&mut l, &label, &key);
                            let idx = c.series_for(l, false);
                            c.put(idx, i, cnt)?;
                        }
                    }
                }
                return Ok(Val::Vector(c.finish()));
            }
            _ => {}
        }

        if op == tok::T_QUANTILE {
            if let Some(qs) = &k_param {
                for q in qs {
                    if !(0.0..=1.0).contains(q) {
                        self.ann.warn(format!(
                            "quantile value should be between 0 and 1, got {}",
                            format_float(*q)
                        ));
                    }
                }
            }
        }

        let mut out = Vec::with_capacity(groups.len());
        let mut buf: Vec<f64> = Vec::new();
        for (gl, members) in groups {
            let mut vals = vec![None; n];
            for (i, slot) in vals.iter_mut().enumerate() {
                buf.clear();
                buf.extend(members.iter().filter_map(|&m| input[m].vals[i]));
                if buf.is_empty() {
                    continue;
                }
                *slot = Some(match op {
                    tok::T_SUM => {
                        let mut k = KahanSum::default();
                        buf.iter().for_each(|v| k.add(*v));
                        k.value()
                    }
                    tok::T_AVG => agg::mean(buf.iter().copied()),
                    tok::T_COUNT => buf.len() as f64,
                    tok::T_GROUP => 1.0,
                    tok::T_MIN => buf.iter().copied().fold(f64::NAN, |acc, v| {
                        if acc.is_nan() || v < acc {
                            v
                        } else {
                            acc
                        }
                    }),
                    tok::T_MAX => buf.iter().copied().fold(f64::NAN, |acc, v| {
                        if acc.is_nan() || v > acc {
                            v
                        } else {
                            acc
                        }
                    }),
                    tok::T_STDDEV => agg::stddev(buf.iter().copied()),
                    tok::T_STDVAR => agg::stdvar(buf.iter().copied()),
                    tok::T_QUANTILE => {
                        let q =
                            k_param.as_ref().and_then(|p| p.get(i)).copied().unwrap_or(f64::NAN);
                        quantile(q, &mut buf)
                    }
                    other => {
                        return Err(QueryError::BadData(format!(
                            "unsupported aggregation {}",
                            tok::TokenType::new(other)
                        )))
                    }
                });
            }
            if vals.iter().any(Option::is_some) {
                // Grouping by `__name__` keeps names that are only marked for removal; the
                // group's name goes when any member's would have.
                let drop_name = by && members.iter().any(|&m| input[m].drop_name);
                out.push(Series { labels: gl, vals, drop_name });
            }
        }
        self.charge(out.len() * n)?;
        Ok(Val::Vector(out))
    }

    /// topk, bottomk, limitk, limit_ratio: pick series per group and step, keeping their labels.
    pub(super) fn aggregate_select(
        &mut self,
        op: TokenId,
        input: Vec<Series>,
        groups: &[(Labels, Vec<usize>)],
        params: &[f64],
        g: Grid,
    ) -> Result<Val> {
        let n = g.len();
        let mut keep: Vec<Vec<bool>> = vec![vec![false; n]; input.len()];
        // For instant queries, the order of the output within each group (Prometheus sorts
        // topk results descending and bottomk ascending).
        let mut order: Vec<usize> = Vec::new();
        // `i` is the step: it indexes every series' values and `keep[series]`.
        #[allow(clippy::needless_range_loop)]
        for i in 0..n {
            let p = params.get(i).copied().unwrap_or(f64::NAN);
            if op == tok::T_LIMIT_RATIO {
                if p.is_nan() {
                    return Err(exec("Ratio value is NaN"));
                }
                let r = if !(-1.0..=1.0).contains(&p) {
                    self.ann.warn(format!(
                        "ratio value should be between -1 and 1, got {}, capping to {}",
                        format_float(p),
                        if p < 0.0 { -1 } else { 1 }
                    ));
                    p.clamp(-1.0, 1.0)
                } else {
                    p
                };
                for (_, members) in groups {
                    for &m in members {
                        if input[m].vals[i].is_none() {
                            continue;
                        }
                        let ratio = ratio_of(&input[m].labels);
                        if (r >= 0.0 && ratio < r) || (r < 0.0 && ratio >= 1.0 + r) {
                            keep[m][i] = true;
                        }
                    }
                }
                continue;
            }
            if p.is_nan() {
                return Err(exec("Parameter value is NaN"));
            }
            if p >= 9.223372036854776e18 || p <= -9.223372036854776e18 {
                return Err(exec(format!("Scalar value {} overflows int64", format_float(p))));
            }
            let k = p as i64;
            if k < 1 {
                continue;
            }
            for (_, members) in groups {
                let mut present: Vec<usize> =
                    members.iter().copied().filter(|&m| input[m].vals[i].is_some()).collect();
                let k = k.min(present.len() as i64) as usize;
                if matches!(op, tok::T_TOPK | tok::T_BOTTOMK) && k > 0 {
                    let top = op == tok::T_TOPK;
                    let cmp = |a: &usize, b: &usize| {
                        let (x, y) = (
                            input[*a].vals[i].unwrap_or(f64::NAN),
                            input[*b].vals[i].unwrap_or(f64::NAN),
                        );
                        let o = cmp_nan_low(x, y, top);
                        if top {
                            o.reverse()
                        } else {
                            o
                        }
                    };
                    // Only the k best matter: select them, then order just those.
                    if k < present.len() {
                        present.select_nth_unstable_by(k - 1, cmp);
                        present.truncate(k);
                    }
                    present.sort_by(cmp);
                }
                present.truncate(k);
                for &m in &present {
                    keep[m][i] = true;
                }
                if n == 1 {
                    order.extend(present);
                }
            }
        }
        let mut out = Vec::new();
        if n == 1 && op != tok::T_LIMIT_RATIO {
            let mut input: Vec<Option<Series>> = input.into_iter().map(Some).collect();
            for m in order {
                if let Some(s) = input.get_mut(m).and_then(Option::take) {
                    out.push(s);
                }
            }
        } else {
            for (m, mut s) in input.into_iter().enumerate() {
                for (i, v) in s.vals.iter_mut().enumerate() {
                    if !keep[m][i] {
                        *v = None;
                    }
                }
                if s.vals.iter().any(Option::is_some) {
                    out.push(s);
                }
            }
        }
        Ok(Val::Vector(out))
    }
}

/// Orders floats with NaN below every number (`nan_low`) as topk/bottomk treat it.
pub(super) fn cmp_nan_low(a: f64, b: f64, top: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Equal,
        // For topk NaN is the smallest; for bottomk NaN is the largest.
        (true, false) => {
            if top {
                Less
            } else {
                Greater
            }
        }
        (false, true) => {
            if top {
                Greater
            } else {
                Less
            }
        }
        _ => a.partial_cmp(&b).unwrap_or(Equal),
    }
}

/// A stable number in [0, 1) from a label set, for limit_ratio.
pub(super) fn ratio_of(l: &Labels) -> f64 {
    let h = strata_model::label_hash(l.0.iter().map(|x| (x.name.as_bytes(), x.value.as_bytes())));
    h as f64 / u64::MAX as f64
}
