//! Function calls: range functions over windows, element-wise and label functions,
//! classic histogram functions, info().

use super::*;

impl<'a> Ev<'a> {
    pub(super) fn call(&mut self, c: &Call, g: Grid) -> Result<Val> {
        let name = c.func.name;
        let args = &c.args.args;
        let n = g.len();
        if let Some(f) = RangeFn::from_name(name) {
            return self.range_function(f, name, args, g);
        }
        if let Some((modifier, range)) = Modifier::of_function(name) {
            return self.extended(c, modifier, range, g);
        }
        if let Some(f) = math_fn(name) {
            let mut vs = self.vector_arg(arg(args, 0)?, g)?;
            for s in &mut vs {
                for v in s.vals.iter_mut().flatten() {
                    *v = f(*v);
                }
                s.drop_name = true;
            }
            return Ok(Val::Vector(vs));
        }
        if let Some(f) = date_fn(name) {
            let mut vs = match args.first() {
                Some(a) => self.vector_arg(a, g)?,
                None => vec![Series {
                    labels: Labels::default(),
                    vals: (0..n).map(|i| Some(g.ts(i) as f64 / 1000.0)).collect(),
                    drop_name: false,
                }],
            };
            for s in &mut vs {
                for v in s.vals.iter_mut().flatten() {
                    *v = f(*v);
                }
                s.drop_name = true;
            }
            return Ok(Val::Vector(vs));
        }
        match name {
            "time" => Ok(Val::Scalar((0..n).map(|i| g.ts(i) as f64 / 1000.0).collect())),
            "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
            "start" => Ok(Val::Scalar(vec![self.p.start as f64 / 1000.0; n])),
            "end" => Ok(Val::Scalar(vec![self.p.end as f64 / 1000.0; n])),
            "range" => Ok(Val::Scalar(vec![(self.p.end - self.p.start) as f64 / 1000.0; n])),
            "step" => Ok(Val::Scalar(vec![self.p.step as f64 / 1000.0; n])),
            "min_of" | "max_of" => {
                let a = self.scalar_arg(arg(args, 0)?, g)?;
                let b = self.scalar_arg(arg(args, 1)?, g)?;
                let min = name == "min_of";
                Ok(Val::Scalar(
                    a.iter()
                        .zip(b.iter())
                        .map(|(x, y)| {
                            if x.is_nan() || y.is_nan() {
                                f64::NAN
                            } else if (x < y) == min {
                                *x
                            } else {
                                *y
                            }
                        })
                        .collect(),
                ))
            }
            "vector" => {
                let v = self.scalar_arg(arg(args, 0)?, g)?;
                Ok(Val::Vector(vec![Series {
                    labels: Labels::default(),
                    vals: v.into_iter().map(Some).collect(),
                    drop_name: false,
                }]))
            }
            "scalar" => {
                let vs = self.vector_arg(arg(args, 0)?, g)?;
                let mut out = vec![f64::NAN; n];
                for (i, o) in out.iter_mut().enumerate() {
                    let mut it = vs.iter().filter_map(|s| s.vals[i]);
                    if let (Some(v), None) = (it.next(), it.next()) {
                        *o = v;
                    }
                }
                Ok(Val::Scalar(out))
            }
            "timestamp" => {
                let a = arg(args, 0)?;
                let mut vs = match unwrap_parens(a) {
                    Expr::VectorSelector(vs) => self.select_instant(vs, g, true)?,
                    _ => {
                        let mut vs = self.vector_arg(a, g)?;
                        for s in &mut vs {
                            for (i, v) in s.vals.iter_mut().enumerate() {
                                if v.is_some() {
                                    *v = Some(g.ts(i) as f64 / 1000.0);
                                }
                            }
                        }
                        vs
                    }
                };
                for s in &mut vs {
                    s.drop_name = true;
                }
                Ok(Val::Vector(vs))
            }
            "round" => {
                let mut vs = self.vector_arg(arg(args, 0)?, g)?;
                let to = match args.get(1) {
                    Some(a) => self.scalar_arg(a, g)?,
                    None => vec![1.0; n],
                };
                for s in &mut vs {
                    for (i, v) in s.vals.iter_mut().enumerate() {
                        if let Some(x) = v {
                            *x = round(*x, to[i]);
                        }
                    }
                    s.drop_name = true;
                }
                Ok(Val::Vector(vs))
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let mut vs = self.vector_arg(arg(args, 0)?, g)?;
                let (lo, hi) = match name {
                    "clamp" => {
                        (self.scalar_arg(arg(args, 1)?, g)?, self.scalar_arg(arg(args, 2)?, g)?)
                    }
                    "clamp_min" => (self.scalar_arg(arg(args, 1)?, g)?, vec![f64::NAN; n]),
                    _ => (vec![f64::NAN; n], self.scalar_arg(arg(args, 1)?, g)?),
                };
                for s in &mut vs {
                    for (i, v) in s.vals.iter_mut().enumerate() {
                        let Some(x) = *v else { continue };
                        let (l, h) = (lo[i], hi[i]);
                        if name == "clamp" && h < l {
                            *v = None;
                            continue;
                        }
                        let mut y = x;
                        if name != "clamp_max" {
                            y = if l.is_nan() { f64::NAN } else { y.max(l) };
                            if x.is_nan() {
                                y = f64::NAN;
                            }
                        }
                        if name != "clamp_min" {
                            y = if h.is_nan() {
                                f64::NAN
                            } else if y.is_nan() {
                                y
                            } else {
                                y.min(h)
                            };
                        }
                        *v = Some(y);
                    }
                    s.drop_name = true;
                }
                vs.retain(|s| s.vals.iter().any(Option::is_some));
                Ok(Val::Vector(vs))
            }
            "absent" => {
                let vs = self.vector_arg(arg(args, 0)?, g)?;
                let labels = absent_labels(arg(args, 0)?);
                let vals: Vec<Option<f64>> = (0..n)
                    .map(|i| if vs.iter().any(|s| s.vals[i].is_some()) { None } else { Some(1.0) })
                    .collect();
                Ok(Val::Vector(vec![Series { labels, vals, drop_name: false }]))
            }
            "absent_over_time" => {
                let rv = self.matrix_arg(arg(args, 0)?, g)?;
                let labels = absent_labels(arg(args, 0)?);
                let vals = (0..n)
                    .map(|i| {
                        let (lo, hi) = rv.window(g.ts(i));
                        let any = rv.series.iter().any(|s| {
                            let a = s.samples.partition_point(|x| x.t <= lo);
                            let b = s.samples.partition_point(|x| x.t <= hi);
                            a < b
                        });
                        if any {
                            None
                        } else {
                            Some(1.0)
                        }
                    })
                    .collect();
                Ok(Val::Vector(vec![Series { labels, vals, drop_name: false }]))
            }
            "label_replace" => {
                let vs = self.vector_arg(arg(args, 0)?, g)?;
                let dst = self.string_arg(arg(args, 1)?, g)?;
                let repl = self.string_arg(arg(args, 2)?, g)?;
                let src = self.string_arg(arg(args, 3)?, g)?;
                let re_s = self.string_arg(arg(args, 4)?, g)?;
                let re = regex::Regex::new(&format!("^(?s:{re_s})$")).map_err(|e| {
                    exec(format!("invalid regular expression in label_replace(): {re_s}: {e}"))
                })?;
                if !valid_label_name(&dst) {
                    return Err(exec(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    )));
                }
                let mut c = Collector::new(n);
                for s in vs {
                    let mut lb = s.labels;
                    let mut drop_name = s.drop_name;
                    let sv = lb.get(&src).unwrap_or("").to_string();
                    if let Some(caps) = re.captures(&sv) {
                        let mut res = String::new();
                        caps.expand(&repl, &mut res);
                        set_label(&mut lb, &dst, &res);
                        if dst == METRIC_NAME {
                            drop_name = false;
                        }
                    }
                    let idx = c.series_for(lb, drop_name);
                    for (i, v) in s.vals.iter().enumerate() {
                        if let Some(v) = v {
                            c.put(idx, i, *v)?;
                        }
                    }
                }
                Ok(Val::Vector(c.finish()))
            }
            "label_join" => {
                let vs = self.vector_arg(arg(args, 0)?, g)?;
                let dst = self.string_arg(arg(args, 1)?, g)?;
                let sep = self.string_arg(arg(args, 2)?, g)?;
                let mut srcs = Vec::new();
                for a in args.iter().skip(3) {
                    srcs.push(self.string_arg(a, g)?);
                }
                if !valid_label_name(&dst) {
                    return Err(exec(format!(
                        "invalid destination label name in label_join(): {dst}"
                    )));
                }
                let mut c = Collector::new(n);
                for s in vs {
                    let mut lb = s.labels;
                    let joined: Vec<&str> = srcs.iter().map(|x| lb.get(x).unwrap_or("")).collect();
                    let joined = joined.join(&sep);
                    set_label(&mut lb, &dst, &joined);
                    let drop_name = s.drop_name && dst != METRIC_NAME;
                    let idx = c.series_for(lb, drop_name);
                    for (i, v) in s.vals.iter().enumerate() {
                        if let Some(v) = v {
                            c.put(idx, i, *v)?;
                        }
                    }
                }
                Ok(Val::Vector(c.finish()))
            }
            "sort" | "sort_desc" => {
                let mut vs = self.vector_arg(arg(args, 0)?, g)?;
                self.warn_sort_in_range();
                if n == 1 {
                    let desc = name == "sort_desc";
                    vs.sort_by(|a, b| {
                        let (x, y) = (a.vals[0].unwrap_or(f64::NAN), b.vals[0].unwrap_or(f64::NAN));
                        // NaN sorts last in both directions.
                        match (x.is_nan(), y.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ => {
                                let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                                if desc {
                                    o.reverse()
                                } else {
                                    o
                                }
                            }
                        }
                    });
                }
                Ok(Val::Vector(vs))
            }
            "sort_by_label" | "sort_by_label_desc" => {
                let mut vs = self.vector_arg(arg(args, 0)?, g)?;
                let mut names = Vec::new();
                for a in args.iter().skip(1) {
                    names.push(self.string_arg(a, g)?);
                }
                let desc = name == "sort_by_label_desc";
                self.warn_sort_in_range();
                vs.sort_by(|a, b| {
                    let mut o = std::cmp::Ordering::Equal;
                    for ln in &names {
                        o = natural_cmp(
                            a.labels.get(ln).unwrap_or(""),
                            b.labels.get(ln).unwrap_or(""),
                        );
                        if o != std::cmp::Ordering::Equal {
                            break;
                        }
                    }
                    if o == std::cmp::Ordering::Equal {
                        o = a.labels.cmp(&b.labels);
                    }
                    if desc {
                        o.reverse()
                    } else {
                        o
                    }
                });
                Ok(Val::Vector(vs))
            }
            "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => {
                self.classic_histogram(name, args, g)
            }
            "info" => self.info(c, g),
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                // Native histograms are not stored yet, so no series has one: the result is empty.
                for a in args {
                    let _ = self.eval(a, g)?;
                }
                Ok(Val::Vector(Vec::new()))
            }
            other => Err(exec(format!("function {other:?} is not supported by Strata yet"))),
        }
    }

    pub(super) fn warn_sort_in_range(&mut self) {
        if !self.instant {
            self.ann.warn(
                "sort is ineffective for range queries since results are always ordered by labels",
            );
        }
    }

    pub(super) fn range_function(
        &mut self,
        f: RangeFn,
        name: &str,
        args: &[Box<Expr>],
        g: Grid,
    ) -> Result<Val> {
        let n = g.len();
        // The range vector is the last argument for quantile_over_time, the first otherwise.
        let (m_idx, param_idx): (usize, Vec<usize>) = match f {
            RangeFn::QuantileOverTime => (1, vec![0]),
            RangeFn::PredictLinear => (0, vec![1]),
            RangeFn::DoubleExponentialSmoothing => (0, vec![1, 2]),
            _ => (0, vec![]),
        };
        let mut params: Vec<Vec<f64>> = Vec::new();
        for &pi in &param_idx {
            params.push(self.scalar_arg(arg(args, pi)?, g)?);
        }
        let rv = self.matrix_arg(arg(args, m_idx)?, g)?;
        if let Some(msg) = rv.modifier.and_then(|m| m.check_function(name)) {
            return Err(QueryError::BadData(msg));
        }
        // How far past the window an extended selector looks: (before, after).
        let (before, after) = match rv.modifier {
            None => (0, 0),
            Some(Modifier::Anchored) => (self.p.lookback, 0),
            Some(Modifier::Smoothed) => (self.p.lookback, self.p.lookback),
        };
        let keep_name = matches!(f, RangeFn::LastOverTime | RangeFn::FirstOverTime);
        let counter_fn = matches!(f, RangeFn::Rate | RangeFn::Increase | RangeFn::Irate);
        let mut rv = rv;
        let series = std::mem::take(&mut rv.series);
        let mut out = Vec::with_capacity(series.len());
        let mut pbuf: Vec<f64> = Vec::with_capacity(params.len());
        for (si, s) in series.into_iter().enumerate() {
            if si % 256 == 0 {
                self.check_deadline()?;
            }
            // Room checked before the allocation (see `select_instant`).
            self.check_room(n)?;
            let mut vals = vec![None; n];
            let mut any = false;
            // Windows only move forward from step to step, so two cursors find them.
            let (mut a, mut b) = (0usize, 0usize);
            let len = s.samples.len();
            for (i, slot) in vals.iter_mut().enumerate() {
                let t = g.ts(i);
                let (lo, hi) = rv.window(t);
                let (lo_x, hi_x) = (lo.saturating_sub(before), hi.saturating_add(after));
                while a < len && s.samples[a].t <= lo_x {
                    a += 1;
                }
                b = b.max(a);
                while b < len && s.samples[b].t <= hi_x {
                    b += 1;
                }
                if a >= b {
                    continue;
                }
                if let Some(m) = rv.modifier {
                    let smoothed = m == Modifier::Smoothed;
                    if let Some(v) = eval_extended(f, &s.samples[a..b], lo, hi, rv.range, smoothed)
                    {
                        *slot = Some(v);
                        any = true;
                    }
                    continue;
                }
                pbuf.clear();
                pbuf.extend(params.iter().map(|p| p.get(i).copied().unwrap_or(f64::NAN)));
                match f {
                    RangeFn::QuantileOverTime => {
                        let q = pbuf.first().copied().unwrap_or(f64::NAN);
                        if !(0.0..=1.0).contains(&q) {
                            self.ann.warn(format!(
                                "quantile value should be between 0 and 1, got {}",
                                format_float(q)
                            ));
                        }
                    }
                    RangeFn::DoubleExponentialSmoothing => {
                        let sf = pbuf.first().copied().unwrap_or(f64::NAN);
                        let tf = pbuf.get(1).copied().unwrap_or(f64::NAN);
                        if let Some(msg) = smoothing_factor_error(sf, tf) {
                            return Err(exec(msg));
                        }
                    }
                    _ => {}
                }
                if let Some(v) = eval_range(f, &s.samples[a..b], lo, hi, t, &pbuf) {
                    *slot = Some(v);
                    any = true;
                }
            }
            if any {
                if counter_fn {
                    let mn = metric_name(&s.labels);
                    if !mn.is_empty()
                        && !["_total", "_sum", "_count", "_bucket"]
                            .iter()
                            .any(|suf| mn.ends_with(suf))
                    {
                        self.ann.info(format!(
                            "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {mn:?}"
                        ));
                    }
                }
                self.charge(n)?;
                out.push(Series { labels: s.labels, vals, drop_name: s.drop_name || !keep_name });
            }
        }
        Ok(Val::Vector(out))
    }

    /// `info(v, {sel})`: adds the data labels of the info series (default `target_info`) that
    /// share `v`'s identifying labels (`instance`, `job`), step by step.
    pub(super) fn info(&mut self, c: &Call, g: Grid) -> Result<Val> {
        let n = g.len();
        let base = self.vector_arg(arg(&c.args.args, 0)?, g)?;
        let (names, data) = info_matchers(c)?;
        let lookback = self.p.lookback;
        // Per info series: the timestamp of the sample in effect at each step.
        let infos: Vec<(&Labels, Vec<Option<i64>>)> = self
            .data
            .get(&(c as *const Call as usize))
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|rs| {
                let ts = (0..n)
                    .map(|i| {
                        let te = g.ts(i);
                        let idx = rs.samples.partition_point(|s| s.t <= te);
                        let s = rs.samples.get(idx.checked_sub(1)?)?;
                        (s.t > te - lookback && !is_stale_nan(s.v)).then_some(s.t)
                    })
                    .collect();
                (&rs.labels, ts)
            })
            .collect();
        // With only negative `__name__` matchers, info series are recognised by the `_info`
        // suffix of their name.
        let positive = names.iter().any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex));
        let infos: Vec<(&Labels, Vec<Option<i64>>)> = infos
            .into_iter()
            .filter(|(l, _)| positive || metric_name(l).ends_with("_info"))
            .collect();
        let ident = |l: &Labels| {
            (l.get("instance").unwrap_or("").to_string(), l.get("job").unwrap_or("").to_string())
        };
        let data_names: Vec<&str> = data.iter().map(|m| m.name.as_str()).collect();
        let drop_without_info = data.iter().any(|m| !m.matches_empty());
        let mut coll = Collector::new(n);
        for s in base {
            let name = s.labels.get(METRIC_NAME);
            // A base series is an info series itself (and passed through) when it meets every
            // `__name__` matcher and at least one of them is positive.
            let is_info = positive && name.is_some_and(|nm| names.iter().all(|m| m.matches(nm)));
            if is_info {
                let idx = coll.series_for(s.labels.clone(), s.drop_name);
                for (i, v) in s.vals.iter().enumerate() {
                    if let Some(v) = v {
                        coll.put(idx, i, *v)?;
                    }
                }
                continue;
            }
            let id = ident(&s.labels);
            let candidates: Vec<&(&Labels, Vec<Option<i64>>)> =
                infos.iter().filter(|(l, _)| ident(l) == id).collect();
            for (i, v) in s.vals.iter().enumerate() {
                let Some(v) = v else { continue };
                let best = candidates
                    .iter()
                    .filter_map(|(l, ts)| ts[i].map(|t| (t, *l)))
                    .max_by_key(|(t, _)| *t)
                    .map(|(_, l)| l);
                let labels = match best {
                    Some(il) => {
                        let mut lb = s.labels.clone();
                        for x in il.iter() {
                            if x.name == METRIC_NAME || x.name == "instance" || x.name == "job" {
                                continue;
                            }
                            if !data_names.is_empty() && !data_names.contains(&x.name.as_str()) {
                                continue;
                            }
                            if lb.get(&x.name).is_none() {
                                set_label(&mut lb, &x.name, &x.value);
                            }
                        }
                        lb
                    }
                    None if drop_without_info => continue,
                    None => s.labels.clone(),
                };
                let idx = coll.series_for(labels, s.drop_name);
                coll.put(idx, i, *v)?;
            }
        }
        Ok(Val::Vector(coll.finish()))
    }

    /// histogram_quantile, histogram_quantiles and histogram_fraction over classic buckets.
    pub(super) fn classic_histogram(
        &mut self,
        name: &str,
        args: &[Box<Expr>],
        g: Grid,
    ) -> Result<Val> {
        let n = g.len();
        // (label value for histogram_quantiles, per-step parameters)
        let mut outputs: Vec<(Option<String>, Vec<f64>, Vec<f64>)> = Vec::new();
        let mut out_label = String::new();
        let vs = match name {
            "histogram_quantile" => {
                let q = self.scalar_arg(arg(args, 0)?, g)?;
                outputs.push((None, q, Vec::new()));
                self.vector_arg(arg(args, 1)?, g)?
            }
            "histogram_quantiles" => {
                let vs = self.vector_arg(arg(args, 0)?, g)?;
                out_label = self.string_arg(arg(args, 1)?, g)?;
                if !valid_label_name(&out_label) {
                    return Err(exec(format!(
                        "invalid label name {}",
                        crate::guard::go_quote(&out_label)
                    )));
                }
                for a in args.iter().skip(2) {
                    let q = self.scalar_arg(a, g)?;
                    let label = q.first().map(|v| quantile_label(*v)).unwrap_or_default();
                    outputs.push((Some(label), q, Vec::new()));
                }
                vs
            }
            _ => {
                let lo = self.scalar_arg(arg(args, 0)?, g)?;
                let hi = self.scalar_arg(arg(args, 1)?, g)?;
                outputs.push((None, lo, hi));
                self.vector_arg(arg(args, 2)?, g)?
            }
        };
        if name != "histogram_fraction" {
            for (_, q, _) in &outputs {
                for qv in q {
                    if !(0.0..=1.0).contains(qv) {
                        self.ann.warn(format!(
                            "quantile value should be between 0 and 1, got {}",
                            format_float(*qv)
                        ));
                    }
                }
            }
        }
        // Group bucket series by their labels without `le` and the metric name.
        let mut gindex: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
        for (i, s) in vs.iter().enumerate() {
            let le = s.labels.get("le").and_then(parse_le);
            let Some(le) = le else {
                self.ann.warn(format!(
                    "bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                    s.labels.get("le").unwrap_or(""),
                    metric_name(&s.labels)
                ));
                continue;
            };
            // Grouped per metric; the name goes at the end, so two histograms that differ
            // only by name collide there, as in Prometheus.
            let gl = labels_without(&s.labels, &["le".to_string()], false);
            let gi = *gindex.entry(gl.clone()).or_insert_with(|| {
                groups.push((gl, Vec::new()));
                groups.len() - 1
            });
            groups[gi].1.push((le, i));
        }
        let mut c = Collector::new(n);
        let mut buckets: Vec<Bucket> = Vec::new();
        for (gl, members) in &groups {
            for (label, p1, p2) in &outputs {
                let mut lb = gl.clone();
                if let Some(v) = label {
                    set_label(&mut lb, &out_label, v);
                }
                let mut idx = None;
                for i in 0..n {
                    buckets.clear();
                    buckets.extend(members.iter().filter_map(|(le, m)| {
                        vs[*m].vals[i].map(|c| Bucket { upper: *le, count: c })
                    }));
                    if buckets.is_empty() {
                        continue;
                    }
                    let r = if name == "histogram_fraction" {
                        bucket_fraction(p1[i], p2[i], &mut buckets)
                    } else {
                        bucket_quantile(p1[i], &mut buckets)
                    };
                    if r.forced_monotonicity {
                        self.ann.info(format!(
                            "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
                            metric_name(&vs[members[0].1].labels)
                        ));
                    }
                    let id = match idx {
                        Some(x) => x,
                        None => {
                            let x = c.series_for(lb.clone(), true);
                            idx = Some(x);
                            x
                        }
                    };
                    c.put(id, i, r.value)?;
                }
            }
        }
        Ok(Val::Vector(c.finish()))
    }
}

/// The label value histogram_quantiles gives a quantile: `0.5`, and `1.0` for whole numbers.
pub(super) fn quantile_label(q: f64) -> String {
    if q.is_finite() && q.fract() == 0.0 {
        format!("{q:.1}")
    } else {
        format_float(q)
    }
}

pub(super) fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse::<f64>().ok(),
    }
}

pub(super) fn arg(args: &[Box<Expr>], i: usize) -> Result<&Expr> {
    args.get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| QueryError::BadData("missing function argument".into()))
}

pub(super) fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

/// The labels `absent()` reports: the equality matchers of a plain selector argument.
pub(super) fn absent_labels(e: &Expr) -> Labels {
    let vs = match unwrap_parens(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(m) => &m.vs,
        _ => return Labels::default(),
    };
    // Prometheus: a label matched once by equality is kept; any other matcher on it, or a
    // second one, removes it. The metric name is never reported.
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == PMatchOp::Equal && !seen.contains(&m.name) {
            pairs.push((m.name.clone(), m.value.clone()));
        } else {
            pairs.retain(|(n, _)| *n != m.name);
        }
        seen.push(m.name.clone());
    }
    Labels::from_pairs(pairs)
}

/// Compares strings so that embedded numbers order by value (`a2` < `a10`), as
/// Prometheus's sort_by_label does.
pub(super) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if ab[i] != bb[j] {
                return ab[i].cmp(&bb[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}
