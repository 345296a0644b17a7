//! Element-wise functions of one float: math, trigonometry, date parts.

/// The element-wise math function named `name` (`abs`, `ceil`, `floor`, `exp`, `sqrt`, `ln`,
/// `log2`, `log10`, `sgn`, `deg`, `rad`, and the trigonometric and hyperbolic functions).
pub fn math_fn(name: &str) -> Option<fn(f64) -> f64> {
    let _ = name;
    None
}

/// The date function named `name` (`year`, `month`, `day_of_month`, `day_of_week`,
/// `day_of_year`, `days_in_month`, `hour`, `minute`), of a Unix time in seconds, in UTC.
pub fn date_fn(name: &str) -> Option<fn(f64) -> f64> {
    let _ = name;
    None
}

/// `round(v, to_nearest)` as Prometheus computes it (ties round up).
pub fn round(v: f64, to_nearest: f64) -> f64 {
    let _ = to_nearest;
    v
}
