//! Binary operators: scalar/vector arithmetic and comparisons, vector matching with
//! on/ignoring/group_left/group_right and fill modifiers, set operators.

use super::*;

pub(super) fn arith(op: TokenId, l: f64, r: f64) -> Option<(f64, bool)> {
    // Returns (value, keep) — for comparisons, keep says whether the comparison held.
    Some(match op {
        tok::T_ADD => (l + r, true),
        tok::T_SUB => (l - r, true),
        tok::T_MUL => (l * r, true),
        tok::T_DIV => (l / r, true),
        tok::T_MOD => (l % r, true),
        tok::T_POW => (l.powf(r), true),
        tok::T_ATAN2 => (l.atan2(r), true),
        tok::T_EQLC => (l, l == r),
        tok::T_NEQ => (l, l != r),
        tok::T_GTR => (l, l > r),
        tok::T_LSS => (l, l < r),
        tok::T_GTE => (l, l >= r),
        tok::T_LTE => (l, l <= r),
        _ => return None,
    })
}

pub(super) fn is_comparison(op: TokenId) -> bool {
    matches!(op, tok::T_EQLC | tok::T_NEQ | tok::T_GTR | tok::T_LSS | tok::T_GTE | tok::T_LTE)
}

impl<'a> Ev<'a> {
    pub(super) fn binary(&mut self, b: &BinaryExpr, g: Grid) -> Result<Val> {
        let op = b.op.id();
        let lhs = self.eval(&b.lhs, g)?;
        let rhs = self.eval(&b.rhs, g)?;
        let return_bool = b.modifier.as_ref().map(|m| m.return_bool).unwrap_or(false);
        let bad = |o: TokenId| {
            QueryError::BadData(format!("invalid operator {}", tok::TokenType::new(o)))
        };
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let mut out = Vec::with_capacity(l.len());
                for (a, c) in l.iter().zip(r.iter()) {
                    let (v, keep) = arith(op, *a, *c).ok_or_else(|| bad(op))?;
                    out.push(if is_comparison(op) {
                        if keep {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        v
                    });
                }
                Ok(Val::Scalar(out))
            }
            (Val::Vector(vs), Val::Scalar(sc)) => {
                self.vector_scalar(op, vs, &sc, false, return_bool)
            }
            (Val::Scalar(sc), Val::Vector(vs)) => {
                self.vector_scalar(op, vs, &sc, true, return_bool)
            }
            (Val::Vector(l), Val::Vector(r)) => {
                let default_mod;
                let m = match &b.modifier {
                    Some(m) => m,
                    None => {
                        default_mod = BinModifier::default();
                        &default_mod
                    }
                };
                match op {
                    tok::T_LAND | tok::T_LOR | tok::T_LUNLESS => self.set_op(op, l, r, m, g),
                    _ => self.vector_vector(op, l, r, m, g),
                }
            }
            _ => Err(QueryError::BadData("binary operator on non-numeric operands".into())),
        }
    }

    pub(super) fn vector_scalar(
        &mut self,
        op: TokenId,
        mut vs: Vec<Series>,
        sc: &[f64],
        scalar_left: bool,
        return_bool: bool,
    ) -> Result<Val> {
        let cmp = is_comparison(op);
        for s in &mut vs {
            for (i, slot) in s.vals.iter_mut().enumerate() {
                let Some(v) = *slot else { continue };
                let c = sc.get(i).copied().unwrap_or(f64::NAN);
                let (l, r) = if scalar_left { (c, v) } else { (v, c) };
                let (mut res, keep) = arith(op, l, r)
                    .ok_or_else(|| QueryError::BadData("invalid vector/scalar operator".into()))?;
                if cmp && scalar_left {
                    res = r;
                }
                *slot = if return_bool {
                    Some(if keep { 1.0 } else { 0.0 })
                } else if keep {
                    Some(res)
                } else {
                    None
                };
            }
            if !cmp || return_bool {
                s.drop_name = true;
            }
        }
        vs.retain(|s| s.vals.iter().any(Option::is_some));
        Ok(Val::Vector(vs))
    }

    pub(super) fn set_op(
        &mut self,
        op: TokenId,
        l: Vec<Series>,
        r: Vec<Series>,
        m: &BinModifier,
        g: Grid,
    ) -> Result<Val> {
        let n = g.len();
        let sig = signature_fn(m);
        let mut ids: HashMap<Labels, u32> = HashMap::new();
        let mut intern = |s: &Series| -> u32 {
            let k = sig(&s.labels);
            let next = ids.len() as u32;
            *ids.entry(k).or_insert(next)
        };
        let lsig: Vec<u32> = l.iter().map(&mut intern).collect();
        let rsig: Vec<u32> = r.iter().map(&mut intern).collect();
        let nsig = ids.len();
        // For each step, which signatures the right (or left, for `or`) side has.
        let mut out_l = l;
        match op {
            tok::T_LAND | tok::T_LUNLESS => {
                let mut present = vec![u32::MAX; nsig];
                for i in 0..n {
                    for (j, s) in r.iter().enumerate() {
                        if s.vals[i].is_some() {
                            present[rsig[j] as usize] = i as u32;
                        }
                    }
                    for (j, s) in out_l.iter_mut().enumerate() {
                        let has = present[lsig[j] as usize] == i as u32;
                        if (op == tok::T_LAND) != has {
                            s.vals[i] = None;
                        }
                    }
                }
                out_l.retain(|s| s.vals.iter().any(Option::is_some));
                Ok(Val::Vector(out_l))
            }
            _ => {
                // or: all of the left; right series at steps where the left lacks their signature.
                let mut present = vec![u32::MAX; nsig];
                let mut out_r = r;
                for i in 0..n {
                    for (j, s) in out_l.iter().enumerate() {
                        if s.vals[i].is_some() {
                            present[lsig[j] as usize] = i as u32;
                        }
                    }
                    for (j, s) in out_r.iter_mut().enumerate() {
                        if present[rsig[j] as usize] == i as u32 {
                            s.vals[i] = None;
                        }
                    }
                }
                let mut c = Collector::new(n);
                for s in out_l.into_iter().chain(out_r) {
                    let idx = c.series_for(s.labels, s.drop_name);
                    for (i, v) in s.vals.iter().enumerate() {
                        if let Some(v) = v {
                            c.put(idx, i, *v)?;
                        }
                    }
                }
                Ok(Val::Vector(c.finish()))
            }
        }
    }

    pub(super) fn vector_vector(
        &mut self,
        op: TokenId,
        l: Vec<Series>,
        r: Vec<Series>,
        m: &BinModifier,
        g: Grid,
    ) -> Result<Val> {
        let n = g.len();
        let (include, card_one_to_one, swap) = match &m.card {
            VectorMatchCardinality::OneToOne => (Vec::new(), true, false),
            VectorMatchCardinality::ManyToOne(ls) => (ls.labels.clone(), false, false),
            VectorMatchCardinality::OneToMany(ls) => (ls.labels.clone(), false, true),
            VectorMatchCardinality::ManyToMany => {
                return Err(QueryError::BadData(
                    "many-to-many matching only allowed for set operators".into(),
                ))
            }
        };
        let cmp = is_comparison(op);
        let return_bool = m.return_bool;
        // After a swap, `many` is the side whose labels the result keeps.
        let (many, one) = if swap { (r, l) } else { (l, r) };
        let sig = signature_fn(m);
        let mut ids: HashMap<Labels, u32> = HashMap::new();
        let mut sig_labels: Vec<Labels> = Vec::new();
        let mut intern = |s: &Series| -> u32 {
            let k = sig(&s.labels);
            if let Some(i) = ids.get(&k) {
                return *i;
            }
            let i = sig_labels.len() as u32;
            sig_labels.push(k.clone());
            ids.insert(k, i);
            i
        };
        let msig: Vec<u32> = many.iter().map(&mut intern).collect();
        let osig: Vec<u32> = one.iter().map(&mut intern).collect();
        let nsig = sig_labels.len();
        let mut by_sig: Vec<Vec<usize>> = vec![Vec::new(); nsig];
        for (j, s) in osig.iter().enumerate() {
            by_sig[*s as usize].push(j);
        }
        // Fill values apply to the sides after the group_right swap.
        let fill_many = m.fill_values.lhs;
        let fill_one = m.fill_values.rhs;
        let mut one_matched = vec![u32::MAX; one.len()];
        let mut fill_out: HashMap<(bool, usize), usize> = HashMap::new();
        let mut pair_out: HashMap<(usize, usize), usize> = HashMap::new();
        let mut c = Collector::new(n);
        let mut matched_at = vec![u32::MAX; nsig];
        let on = matches!(m.matching, Some(LabelModifier::Include(_)));
        let match_names: Vec<String> = match &m.matching {
            Some(LabelModifier::Include(l)) | Some(LabelModifier::Exclude(l)) => l.labels.clone(),
            None => Vec::new(),
        };
        for i in 0..n {
            if i % 64 == 0 {
                self.check_deadline()?;
            }
            // The `one` side must be unique per signature at this step.
            let mut one_at: Vec<Option<usize>> = vec![None; nsig];
            for (j, s) in one.iter().enumerate() {
                if s.vals[i].is_none() {
                    continue;
                }
                let sg = osig[j] as usize;
                if let Some(prev) = one_at[sg] {
                    let side = if swap { "left" } else { "right" };
                    return Err(exec(format!(
                        "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        labels_string(&sig_labels[sg]),
                        side,
                        labels_string(&one[prev].labels),
                        labels_string(&s.labels)
                    )));
                }
                one_at[sg] = Some(j);
            }
            for (k, s) in many.iter().enumerate() {
                let Some(mv) = s.vals[i] else { continue };
                let sg = msig[k] as usize;
                let Some(j) = one_at[sg] else {
                    if let Some(fv) = fill_one {
                        let (lv, rv) = if swap { (fv, mv) } else { (mv, fv) };
                        let idx = match fill_out.get(&(true, k)) {
                            Some(x) => *x,
                            None => {
                                let lb = result_labels(
                                    &s.labels,
                                    None,
                                    card_one_to_one,
                                    on,
                                    &match_names,
                                    &include,
                                );
                                let idx = c.series_for(lb, !cmp || return_bool || s.drop_name);
                                fill_out.insert((true, k), idx);
                                idx
                            }
                        };
                        self.put_binop(&mut c, idx, i, op, lv, rv, return_bool)?;
                    }
                    continue;
                };
                one_matched[j] = i as u32;
                let Some(ov) = one[j].vals[i] else { continue };
                if card_one_to_one {
                    if matched_at[sg] == i as u32 {
                        return Err(exec(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                        ));
                    }
                    matched_at[sg] = i as u32;
                }
                let (lv, rv) = if swap { (ov, mv) } else { (mv, ov) };
                let (v, keep) = arith(op, lv, rv)
                    .ok_or_else(|| QueryError::BadData("invalid operator".into()))?;
                let v = if return_bool {
                    if keep {
                        1.0
                    } else {
                        0.0
                    }
                } else if keep {
                    v
                } else {
                    continue;
                };
                let idx = match pair_out.get(&(k, j)) {
                    Some(x) => *x,
                    None => {
                        let lb = result_labels(
                            &s.labels,
                            Some(&one[j].labels),
                            card_one_to_one,
                            on,
                            &match_names,
                            &include,
                        );
                        let drop_name = !cmp || return_bool || s.drop_name;
                        let idx = c.series_for(lb, drop_name);
                        pair_out.insert((k, j), idx);
                        idx
                    }
                };
                if c.series[idx].vals[i].is_some() {
                    return Err(exec(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
                c.put(idx, i, v)?;
            }
            if let Some(fv) = fill_many {
                for (j, s) in one.iter().enumerate() {
                    let Some(ov) = s.vals[i] else { continue };
                    if one_matched[j] == i as u32 {
                        continue;
                    }
                    let (lv, rv) = if swap { (ov, fv) } else { (fv, ov) };
                    let idx = match fill_out.get(&(false, j)) {
                        Some(x) => *x,
                        None => {
                            let lb = result_labels(
                                &s.labels,
                                None,
                                card_one_to_one,
                                on,
                                &match_names,
                                &[],
                            );
                            let idx = c.series_for(lb, true);
                            fill_out.insert((false, j), idx);
                            idx
                        }
                    };
                    self.put_binop(&mut c, idx, i, op, lv, rv, return_bool)?;
                }
            }
        }
        Ok(Val::Vector(c.finish()))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn put_binop(
        &mut self,
        c: &mut Collector,
        idx: usize,
        i: usize,
        op: TokenId,
        lv: f64,
        rv: f64,
        return_bool: bool,
    ) -> Result<()> {
        let (v, keep) =
            arith(op, lv, rv).ok_or_else(|| QueryError::BadData("invalid operator".into()))?;
        let v = if return_bool {
            if keep {
                1.0
            } else {
                0.0
            }
        } else if keep {
            v
        } else {
            return Ok(());
        };
        if c.series[idx].vals[i].is_some() {
            return Err(exec(
                "multiple matches for labels: grouping labels must ensure unique matches",
            ));
        }
        c.put(idx, i, v)
    }
}

/// The labels of a binary operation's result, from the side whose labels it keeps.
pub(super) fn result_labels(
    base: &Labels,
    other: Option<&Labels>,
    one_to_one: bool,
    on: bool,
    match_names: &[String],
    include: &[String],
) -> Labels {
    let mut lb = if one_to_one {
        if on {
            labels_only(base, match_names)
        } else {
            labels_without(base, match_names, false)
        }
    } else {
        base.clone()
    };
    for name in include {
        let v = other.and_then(|o| o.get(name)).unwrap_or("").to_string();
        set_label(&mut lb, name, &v);
    }
    lb
}

/// The matching signature of a label set under `on`/`ignoring`.
pub(super) fn signature_fn(m: &BinModifier) -> impl Fn(&Labels) -> Labels + '_ {
    move |l: &Labels| match &m.matching {
        Some(LabelModifier::Include(names)) => labels_only(l, &names.labels),
        Some(LabelModifier::Exclude(names)) => labels_without(l, &names.labels, true),
        None => labels_without(l, &[], true),
    }
}
