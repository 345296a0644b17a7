//! Duration expressions (`x[5m+1m]`, `x[step()*2]`, `x offset (1h/2)`), which the
//! `promql-parser` crate does not parse: they are evaluated to plain duration literals in the
//! query text before parsing, the way Prometheus folds them before evaluation.
//!
//! Numbers are seconds; `step()` and `range()` are the query's step and range (0 for instant
//! queries); `min_of(a, b)`, `max_of(a, b)`; operators `+ - * / % ^` with PromQL precedence
//! (`^` binds tighter than unary minus and is right-associative). After `offset` only one
//! operand is taken (`x offset -2 ^ 2` is `(x offset -2) ^ 2`), as in Prometheus.

/// Rewrites the duration expressions in `query`, or returns `None` when there are none.
/// Errors name the expression that could not be evaluated.
pub(crate) fn rewrite(query: &str, step_ms: i64, range_ms: i64) -> Result<Option<String>, String> {
    let ctx = Ctx { step: step_ms as f64 / 1000.0, range: range_ms as f64 / 1000.0 };
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut changed = false;
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => {
                i = skip_string(b, i, q);
                continue;
            }
            b'[' => {
                let Some(close) = query[i + 1..].find(']').map(|p| p + i + 1) else { break };
                let inner = &query[i + 1..close];
                let (range_part, step_part) = split_top_colon(inner);
                let mut parts = Vec::new();
                let mut rewritten = false;
                for p in std::iter::once(range_part).chain(step_part) {
                    let t = p.trim();
                    if t.is_empty() || is_plain_duration(t) {
                        parts.push(t.to_string());
                    } else {
                        let secs = Parser::new(t, &ctx).full()?;
                        parts.push(duration_literal(secs, t)?);
                        rewritten = true;
                    }
                }
                if rewritten {
                    out.push_str(&query[last..i]);
                    out.push('[');
                    out.push_str(&parts.join(":"));
                    out.push(']');
                    last = close + 1;
                    changed = true;
                }
                i = close + 1;
                continue;
            }
            c if (c == b'o' || c == b'O') && is_keyword_at(b, i, b"offset") => {
                let start = i + 6;
                let mut j = start;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let rest = &query[j..];
                let mut p = Parser::new(rest, &ctx);
                let (secs, used) = p.offset_operand()?;
                let text = rest[..used].trim();
                let plain = {
                    let t = text.trim_start_matches(['+', '-']).trim();
                    is_plain_duration(t)
                };
                if !plain && used > 0 {
                    out.push_str(&query[last..start]);
                    out.push(' ');
                    out.push_str(&signed_duration_literal(secs, text)?);
                    last = j + used;
                    changed = true;
                }
                i = j + used.max(1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if !changed {
        return Ok(None);
    }
    out.push_str(&query[last..]);
    Ok(Some(out))
}

struct Ctx {
    step: f64,
    range: f64,
}

fn skip_string(b: &[u8], start: usize, q: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if b[i] == q {
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn is_keyword_at(b: &[u8], i: usize, kw: &[u8]) -> bool {
    if i + kw.len() > b.len() || !b[i..i + kw.len()].eq_ignore_ascii_case(kw) {
        return false;
    }
    if i > 0 && is_ident_byte(b[i - 1]) {
        return false;
    }
    match b.get(i + kw.len()) {
        Some(c) if is_ident_byte(*c) => false,
        _ => {
            // `{offset="x"}` is a label name, not the keyword.
            let rest = &b[i + kw.len()..];
            let next = rest.iter().find(|c| !c.is_ascii_whitespace());
            !matches!(next, Some(b'=' | b'!' | b'~'))
        }
    }
}

fn split_top_colon(s: &str) -> (&str, Option<&str>) {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ':' if depth == 0 => return (&s[..i], Some(&s[i + 1..])),
            _ => {}
        }
    }
    (s, None)
}

fn unit_ms(u: &str) -> Option<f64> {
    Some(match u {
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        "w" => 604_800_000.0,
        "y" => 31_536_000_000.0,
        _ => return None,
    })
}

/// `1h30m`, `500ms`: one or more integer-unit pairs.
fn parse_duration_ms(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut total = 0.0;
    let mut pairs = 0;
    while i < b.len() {
        let ns = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if ns == i {
            return None;
        }
        let n: f64 = s[ns..i].parse().ok()?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let mult = unit_ms(&s[us..i])?;
        total += n * mult;
        pairs += 1;
    }
    (pairs > 0).then_some(total)
}

fn is_plain_duration(s: &str) -> bool {
    parse_duration_ms(s).is_some()
}

fn duration_literal(secs: f64, expr: &str) -> Result<String, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "duration expression {expr:?} evaluates to an invalid duration: {secs}"
        ));
    }
    Ok(format!("{}ms", (secs * 1000.0).round() as i64))
}

fn signed_duration_literal(secs: f64, expr: &str) -> Result<String, String> {
    if !secs.is_finite() {
        return Err(format!(
            "duration expression {expr:?} evaluates to an invalid duration: {secs}"
        ));
    }
    let ms = (secs * 1000.0).round() as i64;
    Ok(if ms < 0 { format!("-{}ms", -ms) } else { format!("{ms}ms") })
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    ctx: &'a Ctx,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str, ctx: &'a Ctx) -> Self {
        Parser { s, pos: 0, ctx }
    }

    fn err(&self, what: &str) -> String {
        format!("invalid duration expression {:?}: {what}", self.s)
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s.as_bytes()[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.as_bytes().get(self.pos).copied()
    }

    fn full(mut self) -> Result<f64, String> {
        let v = self.add()?;
        if self.peek().is_some() {
            return Err(self.err("unexpected trailing input"));
        }
        Ok(v)
    }

    /// An optional sign and one operand, for `offset`; returns the value and bytes used.
    fn offset_operand(&mut self) -> Result<(f64, usize), String> {
        let v = match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                -self.atom()?
            }
            Some(b'+') => {
                self.pos += 1;
                self.atom()?
            }
            _ => self.atom()?,
        };
        Ok((v, self.pos))
    }

    fn add(&mut self) -> Result<f64, String> {
        let mut v = self.mul()?;
        loop {
            match self.peek() {
                Some(b'+') => {
                    self.pos += 1;
                    v += self.mul()?;
                }
                Some(b'-') => {
                    self.pos += 1;
                    v -= self.mul()?;
                }
                _ => return Ok(v),
            }
        }
    }

    fn mul(&mut self) -> Result<f64, String> {
        let mut v = self.unary()?;
        loop {
            match self.peek() {
                Some(b'*') => {
                    self.pos += 1;
                    v *= self.unary()?;
                }
                Some(b'/') => {
                    self.pos += 1;
                    v /= self.unary()?;
                }
                Some(b'%') => {
                    self.pos += 1;
                    v %= self.unary()?;
                }
                _ => return Ok(v),
            }
        }
    }

    fn unary(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                Ok(-self.unary()?)
            }
            Some(b'+') => {
                self.pos += 1;
                self.unary()
            }
            _ => self.pow(),
        }
    }

    fn pow(&mut self) -> Result<f64, String> {
        let base = self.atom()?;
        if self.peek() == Some(b'^') {
            self.pos += 1;
            let e = self.unary()?;
            return Ok(base.powf(e));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let v = self.add()?;
                if self.peek() != Some(b')') {
                    return Err(self.err("missing )"));
                }
                self.pos += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => {
                let b = self.s.as_bytes();
                let start = self.pos;
                while self.pos < b.len()
                    && (b[self.pos].is_ascii_alphanumeric() || b[self.pos] == b'.')
                {
                    self.pos += 1;
                }
                let tok = &self.s[start..self.pos];
                if let Ok(n) = tok.parse::<f64>() {
                    return Ok(n);
                }
                parse_duration_ms(tok)
                    .map(|ms| ms / 1000.0)
                    .ok_or_else(|| self.err("bad number or duration"))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let b = self.s.as_bytes();
                let start = self.pos;
                while self.pos < b.len()
                    && (b[self.pos].is_ascii_alphanumeric() || b[self.pos] == b'_')
                {
                    self.pos += 1;
                }
                let name = self.s[start..self.pos].to_ascii_lowercase();
                if self.peek() != Some(b'(') {
                    return Err(self.err("expected ( after function name"));
                }
                self.pos += 1;
                let mut args = Vec::new();
                if self.peek() == Some(b')') {
                    self.pos += 1;
                } else {
                    loop {
                        args.push(self.add()?);
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b')') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.err("expected , or )")),
                        }
                    }
                }
                match (name.as_str(), args.as_slice()) {
                    ("step", []) => Ok(self.ctx.step),
                    ("range", []) => Ok(self.ctx.range),
                    ("min_of", [a, b]) => {
                        Ok(if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(*b) })
                    }
                    ("max_of", [a, b]) => {
                        Ok(if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(*b) })
                    }
                    _ => Err(self.err(&format!("unknown function {name}"))),
                }
            }
            _ => Err(self.err("expected a number, duration, ( or function")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(q: &str, step: i64, range: i64) -> String {
        rewrite(q, step, range).unwrap().unwrap_or_else(|| q.to_string())
    }

    #[test]
    fn ranges_and_subquery_steps() {
        assert_eq!(rw("changes(x[26m+4m])", 0, 0), "changes(x[1800000ms])");
        assert_eq!(rw("changes(x[2m*(10+5)])", 0, 0), "changes(x[1800000ms])");
        assert_eq!(rw("changes(x[1h30m % 1h])", 0, 0), "changes(x[1800000ms])");
        assert_eq!(
            rw("sum_over_time(m[29s+1s:((((8 - 2) / 3) * 7s) % 4) + 8000ms])", 0, 0),
            "sum_over_time(m[30000ms:10000ms])"
        );
        assert_eq!(rw("count_over_time(m[step()])", 10_000, 0), "count_over_time(m[10000ms])");
        assert_eq!(
            rw("count_over_time(m[1+(STep()-5)*2])", 10_000, 0),
            "count_over_time(m[11000ms])"
        );
    }

    #[test]
    fn offsets_take_one_operand() {
        assert_eq!(rw("m offset (100 + 2)", 0, 0), "m offset 102000ms");
        assert_eq!(rw("m offset -2 ^ 2", 0, 0), "m offset -2000ms ^ 2");
        assert_eq!(rw("m offset -step()*2", 5000, 0), "m offset -5000ms*2");
        assert_eq!(rw("m offset min_of(step(), 1s)+8000", 5000, 0), "m offset 1000ms+8000");
        assert_eq!(rw("m offset (-2 ^ 2)", 0, 0), "m offset -4000ms");
    }

    #[test]
    fn plain_queries_are_untouched() {
        assert_eq!(rewrite("rate(x[5m] offset 1h)", 0, 0).unwrap(), None);
        assert_eq!(rewrite("x{a=\"[1+1]\"}", 0, 0).unwrap(), None);
        assert_eq!(rewrite("x{offset=\"1\"}", 0, 0).unwrap(), None);
        assert_eq!(rewrite("x[5m:1m]", 0, 0).unwrap(), None);
    }
}
