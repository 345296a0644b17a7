//! Prometheus durations (`model.ParseDuration`): `<int><unit>` pairs, units `y w d h m s ms`
//! from largest to smallest, each at most once; or `0`.

/// The units and their milliseconds, largest first.
pub const DURATION_UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// The largest duration Go's `time.Duration` holds, in milliseconds.
const MAX_MS: u64 = (i64::MAX as u64) / 1_000_000;

/// Parses `1h30m`, `15s`, `250ms`, `0` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {s:?}");
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_unit = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(invalid());
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(pos) = DURATION_UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!("unknown unit {unit:?} in duration {s:?}"));
        };
        if last_unit.is_some_and(|last| pos <= last) {
            return Err(invalid());
        }
        last_unit = Some(pos);
        total = value
            .checked_mul(DURATION_UNITS[pos].1)
            .and_then(|v| v.checked_add(total))
            .filter(|t| *t <= MAX_MS)
            .ok_or_else(|| "duration out of range".to_string())?;
    }
    Ok(total)
}
