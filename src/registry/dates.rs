//! The two timestamp formats registries send: IMF-fixdate in `Retry-After` and RFC 3339 in a
//! token's `issued_at`. Hand-written because neither needs a calendar library, only seconds
//! since the epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch of a UTC civil time; `None` for out-of-range fields.
fn epoch_seconds(year: i64, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec))
}

fn to_system_time(seconds: i64, nanos: u32) -> Option<SystemTime> {
    let secs = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only HTTP date form servers
/// are allowed to send.
pub(super) fn parse_http_date(s: &str) -> Option<SystemTime> {
    let rest = s.trim().split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    let secs = epoch_seconds(num(year)?, month, num(day)?, num(h)?, num(m)?, num(sec)?)?;
    to_system_time(secs, 0)
}

/// Parses an RFC 3339 timestamp (`2024-05-01T12:34:56.789Z`, `...+02:00`).
pub(super) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d.as_slice() else {
        return None;
    };
    // The offset starts at the first `Z`, `+` or `-` after the seconds.
    let off_at = time.find(['Z', 'z', '+', '-'])?;
    let (clock, offset) = time.split_at(off_at);
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let t: Vec<&str> = hms.split(':').collect();
    let [h, mi, se] = t.as_slice() else {
        return None;
    };
    let nanos = match frac {
        Some(f) if !f.is_empty() && f.len() <= 9 => num::<u32>(f)? * 10u32.pow(9 - f.len() as u32),
        Some(_) => return None,
        None => 0,
    };
    let mut secs = epoch_seconds(num(y)?, num(mo)?, num(da)?, num(h)?, num(mi)?, num(se)?)?;
    if !offset.eq_ignore_ascii_case("z") {
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (oh, om) = offset[1..].split_once(':')?;
        secs -= sign * (num::<i64>(oh)? * 3600 + num::<i64>(om)? * 60);
    }
    to_system_time(secs, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn http_date() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(at(784_111_777))
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(at(0))
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1994-11-06T08:49:37Z"), Some(at(784_111_777)));
        assert_eq!(
            parse_rfc3339("1994-11-06T10:49:37+02:00"),
            Some(at(784_111_777))
        );
        assert_eq!(
            parse_rfc3339("1994-11-06T07:49:37-01:00"),
            Some(at(784_111_777))
        );
        assert_eq!(
            parse_rfc3339("1994-11-06T08:49:37.5Z"),
            Some(at(784_111_777) + Duration::from_millis(500))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(at(1_709_164_800))
        );
        assert_eq!(parse_rfc3339("1994-11-06"), None);
        assert_eq!(parse_rfc3339("1994-13-06T08:49:37Z"), None);
    }
}
