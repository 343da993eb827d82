//! Parsing Plakar's time arguments: RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]`, `YYYY/MM/DD`, or a
//! duration back from now such as `30d`, `48h`, `2w`, `90m`.

use anyhow::Result;
use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Returns nanoseconds since the epoch.
pub fn parse(s: &str) -> Result<i64> {
    let t = s.trim();
    if let Some(d) = parse_duration(t) {
        return Ok(Utc::now().timestamp_nanos_opt().unwrap_or_default() - d);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_nanos_opt().unwrap_or_default());
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(Utc.from_utc_datetime(&dt).timestamp_nanos_opt().unwrap_or_default());
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            let dt = d.and_hms_opt(0, 0, 0).expect("midnight exists");
            return Ok(Utc.from_utc_datetime(&dt).timestamp_nanos_opt().unwrap_or_default());
        }
    }
    // A bad flag value: the same exit code as any other flag error.
    Err(crate::cli::exit::coded(
        crate::cli::exit::BAD_FLAGS,
        format!("invalid time {s:?}: use RFC 3339, YYYY-MM-DD [HH:MM[:SS]], or a duration such as 30d, 12h, 2w"),
    ))
}

/// `30s`, `5m`, `12h`, `2d`, `1w`, `1y` in nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let unit = s.chars().last()?;
    let n: f64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        'w' => 7.0 * 86400.0,
        'y' => 365.0 * 86400.0,
        _ => return None,
    };
    Some((n * secs * 1e9) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plakar_forms() {
        assert_eq!(parse("2024-01-02").unwrap(), parse("2024-01-02T00:00:00Z").unwrap());
        assert_eq!(parse("2024/01/02").unwrap(), parse("2024-01-02 00:00").unwrap());
        let now = Utc::now().timestamp_nanos_opt().unwrap();
        let d = now - parse("30d").unwrap();
        assert!((d - 30 * 86400 * 1_000_000_000).abs() < 5_000_000_000);
        assert!(parse("yesterday").is_err());
    }
}
