//! Numbers for people: rates and counts with k, M, G suffixes, shares as
//! percentages, durations as minutes and seconds.

/// `v` in at most five characters with a decimal suffix: `950`, `1.20k`,
/// `12.5M`, `125G`. Values under ten keep one decimal when they have one.
pub fn human(v: f64) -> String {
    if !v.is_finite() || v < 0.0 {
        return "-".into();
    }
    const UNITS: [&str; 6] = ["", "k", "M", "G", "T", "P"];
    let mut v = v;
    let mut i = 0;
    while v >= 999.5 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let u = UNITS[i];
    if i == 0 {
        if v < 9.95 && v.fract() != 0.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.0}")
        }
    } else if v < 9.995 {
        format!("{v:.2}{u}")
    } else if v < 99.95 {
        format!("{v:.1}{u}")
    } else {
        format!("{v:.0}{u}")
    }
}

/// A count, as [`human`].
pub fn human_count(n: u64) -> String {
    human(n as f64)
}

/// `part` of `whole` as a percentage with one decimal, `-` when `whole`
/// is zero.
pub fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 || !part.is_finite() || !whole.is_finite() {
        return "-".into();
    }
    format!("{:.1}%", part / whole * 100.0)
}

/// Seconds as `MM:SS` (minutes unbounded), as `ipvsadm -Lc` shows expiry.
pub fn mm_ss(secs: u64) -> String {
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

/// The UTC time of day of `t` as `HH:MM:SS`.
pub fn clock_utc(t: std::time::SystemTime) -> String {
    let s = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human(0.0), "0");
        assert_eq!(human(0.5), "0.5");
        assert_eq!(human(7.0), "7");
        assert_eq!(human(950.0), "950");
        assert_eq!(human(999.4), "999");
        assert_eq!(human(999.6), "1.00k");
        assert_eq!(human(1200.0), "1.20k");
        assert_eq!(human(12_500_000.0), "12.5M");
        assert_eq!(human(125e9), "125G");
        assert_eq!(human(f64::NAN), "-");
        for e in 0..16 {
            for m in [1.0, 3.3, 9.99, 9.999, 99.96, 999.4, 999.6] {
                let s = human(m * 10f64.powi(e));
                assert!(s.len() <= 5, "{s}");
            }
        }
    }

    #[test]
    fn others() {
        assert_eq!(percent(1.0, 8.0), "12.5%");
        assert_eq!(percent(1.0, 0.0), "-");
        assert_eq!(mm_ss(899), "14:59");
        assert_eq!(mm_ss(7200), "120:00");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(86400 * 3 + 3723);
        assert_eq!(clock_utc(t), "01:02:03");
    }
}
