//! Element-wise functions of one float: math, trigonometry, date parts.

use std::f64::consts::PI;

/// The element-wise math function named `name` (`abs`, `ceil`, `floor`, `exp`, `sqrt`, `ln`,
/// `log2`, `log10`, `sgn`, `deg`, `rad`, and the trigonometric and hyperbolic functions).
pub fn math_fn(name: &str) -> Option<fn(f64) -> f64> {
    let f: fn(f64) -> f64 = match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sgn" => sgn,
        "deg" => |v| v * 180.0 / PI,
        "rad" => |v| v * PI / 180.0,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        _ => return None,
    };
    Some(f)
}

/// -1 or 1 by sign; 0, -0 and NaN are returned unchanged.
fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

/// The date function named `name` (`year`, `month`, `day_of_month`, `day_of_week`,
/// `day_of_year`, `days_in_month`, `hour`, `minute`), of a Unix time in seconds, in UTC.
///
/// Fractional seconds are truncated toward zero, as Prometheus converts the float to an
/// integer before building the time.
pub fn date_fn(name: &str) -> Option<fn(f64) -> f64> {
    let f: fn(f64) -> f64 = match name {
        "year" => |v| Civil::of(v).year as f64,
        "month" => |v| f64::from(Civil::of(v).month),
        "day_of_month" => |v| f64::from(Civil::of(v).day),
        "day_of_week" => |v| f64::from(Civil::of(v).weekday),
        "day_of_year" => |v| f64::from(Civil::of(v).day_of_year()),
        "days_in_month" => |v| {
            let c = Civil::of(v);
            f64::from(days_in_month(c.year, c.month))
        },
        "hour" => |v| f64::from(Civil::of(v).seconds_of_day / 3600),
        "minute" => |v| f64::from(Civil::of(v).seconds_of_day % 3600 / 60),
        _ => return None,
    };
    Some(f)
}

/// A UTC civil date and time of day in the proleptic Gregorian calendar.
#[derive(Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    /// 0 = Sunday.
    weekday: u32,
    seconds_of_day: u32,
}

impl Civil {
    /// The civil time of `unix_seconds`, truncated toward zero to whole seconds. NaN and values
    /// beyond the i64 range saturate (Rust's float-to-int cast), where Go's conversion is
    /// platform-defined; no meaningful date exists for them either way.
    fn of(unix_seconds: f64) -> Civil {
        let secs = unix_seconds as i64;
        let days = secs.div_euclid(86_400);
        // Both fit: the remainder is below 86 400 and the weekday below 7.
        let seconds_of_day = secs.rem_euclid(86_400) as u32;
        let weekday = (days + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday.
        let (year, month, day) = civil_from_days(days);
        Civil { year, month, day, weekday, seconds_of_day }
    }

    /// 1-based day of the year.
    fn day_of_year(&self) -> u32 {
        (1..self.month).map(|m| days_in_month(self.year, m)).sum::<u32>() + self.day
    }
}

/// Year, month (1-12) and day (1-31) of the day `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, in eras of 400 years so that it holds for any i64).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Work in i128: shifting the epoch to 0000-03-01 must not overflow at the i64 extremes.
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1st
    let mp = (5 * doy + 2) / 153; // 0..=11, March-based month
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i128::from(month <= 2);
    // Days within i64 put the year far inside i64.
    (year as i64, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `round(v, to_nearest)` as Prometheus computes it (ties round up).
pub fn round(v: f64, to_nearest: f64) -> f64 {
    // Multiplying by the inverse causes fewer floating point surprises than dividing.
    let inverse = 1.0 / to_nearest;
    (v * inverse + 0.5).floor() / inverse
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(name: &str, v: f64) -> f64 {
        date_fn(name).map(|f| f(v)).unwrap_or(f64::NAN)
    }

    #[test]
    fn math_functions() {
        let m = |name: &str, v: f64| math_fn(name).map(|f| f(v)).unwrap_or(-12345.0);
        assert_eq!(m("abs", -2.5), 2.5);
        assert_eq!(m("ceil", 1.2), 2.0);
        assert_eq!(m("floor", -1.2), -2.0);
        assert_eq!(m("sqrt", 16.0), 4.0);
        assert_eq!(m("ln", 1.0), 0.0);
        assert_eq!(m("log2", 8.0), 3.0);
        assert_eq!(m("log10", 1000.0), 3.0);
        assert_eq!(m("exp", 0.0), 1.0);
        assert_eq!(m("deg", PI), 180.0);
        assert_eq!(m("rad", 180.0), PI);
        assert_eq!(m("sin", 0.0), 0.0);
        assert_eq!(m("cos", 0.0), 1.0);
        assert_eq!(m("atanh", 0.0), 0.0);
        assert!(m("ln", -1.0).is_nan());
        assert!(math_fn("pi").is_none());
        // functions.test: sgn.
        assert_eq!(m("sgn", f64::NEG_INFINITY), -1.0);
        assert_eq!(m("sgn", f64::INFINITY), 1.0);
        assert!(m("sgn", f64::NAN).is_nan());
        assert_eq!(m("sgn", -50.0), -1.0);
        assert_eq!(m("sgn", 0.0), 0.0);
        assert_eq!(m("sgn", 100.0), 1.0);
    }

    #[test]
    fn date_functions_match_functions_test() {
        // 2006-01-02 22:04:05 UTC, a Monday.
        let t = 1136239445.0;
        assert_eq!(date("day_of_month", t), 2.0);
        assert_eq!(date("hour", t), 22.0);
        assert_eq!(date("minute", t), 4.0);
        assert_eq!(date("day_of_week", t), 1.0);
        assert_eq!(date("year", 1230768000.0), 2009.0);
        // 2016-02-29 23:59:59 and 2016-03-01 00:00:00.
        assert_eq!(date("month", 1456790399.0), 2.0);
        assert_eq!(date("day_of_month", 1456790399.0), 29.0);
        assert_eq!(date("month", 1456790400.0), 3.0);
        assert_eq!(date("day_of_month", 1456790400.0), 1.0);
        // 2016-12-31 13:37:00 is day 366; 2022-12-31 13:37:00 is day 365.
        assert_eq!(date("day_of_year", 1483191420.0), 366.0);
        assert_eq!(date("day_of_year", 1672493820.0), 365.0);
        // February 2016 and 2017.
        assert_eq!(date("days_in_month", 1454284800.0), 29.0);
        assert_eq!(date("days_in_month", 1485907200.0), 28.0);
        // The epoch and vector(0) defaults.
        assert_eq!(date("year", 0.0), 1970.0);
        assert_eq!(date("month", 0.0), 1.0);
        assert_eq!(date("day_of_week", 0.0), 4.0);
        assert_eq!(date("day_of_year", 0.0), 1.0);
        assert!(date_fn("week").is_none());
    }

    #[test]
    fn dates_before_the_epoch_and_fractions() {
        // 1969-12-31 23:59:59: truncation toward zero keeps -0.5 at the epoch.
        assert_eq!(date("year", -1.0), 1969.0);
        assert_eq!(date("hour", -1.0), 23.0);
        assert_eq!(date("day_of_week", -1.0), 3.0);
        assert_eq!(date("year", -0.5), 1970.0);
        // 1900-03-01 00:00:00 (1900 is not a leap year).
        assert_eq!(date("day_of_year", -2203891200.0), 60.0);
        assert_eq!(date("days_in_month", -2203891200.0 - 86400.0), 28.0);
        // 2000-02-29.
        assert_eq!(date("day_of_month", 951782400.0), 29.0);
        // Extremes do not panic.
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300] {
            for name in ["year", "month", "day_of_year", "days_in_month", "minute"] {
                assert!(date(name, v).is_finite());
            }
        }
    }

    #[test]
    fn round_like_prometheus() {
        assert_eq!(round(2.5, 1.0), 3.0);
        assert_eq!(round(-2.5, 1.0), -2.0);
        assert_eq!(round(1.234, 0.1), 1.2);
        assert_eq!(round(5.0, 10.0), 10.0);
        assert_eq!(round(14.0, 10.0), 10.0);
        assert_eq!(round(0.15, 0.05), 0.15);
        assert!(round(f64::NAN, 1.0).is_nan());
        assert_eq!(round(f64::INFINITY, 1.0), f64::INFINITY);
    }
}
