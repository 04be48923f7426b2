//! `Range: bytes=...` requests (RFC 9110 §14). One range is served as a 206;
//! several are answered with the whole file (allowed, and what most static
//! servers do for small files); a malformed or unsatisfiable `bytes` range is
//! a 416, as nginx answers.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeDecision {
    /// Ignore the header: send the whole representation (200).
    Full,
    /// Send bytes `start..=end` (206).
    Partial { start: u64, end: u64 },
    /// 416, with `Content-Range: bytes */SIZE`.
    Unsatisfiable,
}

pub fn decide(header: &str, size: u64) -> RangeDecision {
    let header = header.trim();
    let Some((unit, set)) = header.split_once('=') else {
        return RangeDecision::Unsatisfiable;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeDecision::Full; // an unknown unit is ignored
    }
    let specs: Vec<&str> = set.split(',').map(str::trim).collect();
    let mut parsed = Vec::with_capacity(specs.len());
    for spec in &specs {
        match one(spec, size) {
            Some(r) => parsed.push(r),
            None => return RangeDecision::Unsatisfiable,
        }
    }
    match parsed.as_slice() {
        [Some((start, end))] => RangeDecision::Partial {
            start: *start,
            end: *end,
        },
        [None] => RangeDecision::Unsatisfiable,
        all if all.iter().any(Option::is_some) => RangeDecision::Full,
        _ => RangeDecision::Unsatisfiable,
    }
}

/// `None`: malformed. `Some(None)`: well-formed but unsatisfiable.
#[allow(clippy::option_option)]
fn one(spec: &str, size: u64) -> Option<Option<(u64, u64)>> {
    let (first, last) = spec.split_once('-')?;
    let digits = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Too large for u64 is still well-formed: saturate.
        Some(s.parse::<u64>().unwrap_or(u64::MAX))
    };
    if first.is_empty() {
        let n = digits(last)?;
        if n == 0 || size == 0 {
            return Some(None);
        }
        return Some(Some((size - n.min(size), size - 1)));
    }
    let start = digits(first)?;
    let end = if last.is_empty() {
        None
    } else {
        Some(digits(last)?)
    };
    if let Some(end) = end {
        if end < start {
            return None;
        }
    }
    if start >= size {
        return Some(None);
    }
    Some(Some((start, end.unwrap_or(u64::MAX).min(size - 1))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeDecision::*;

    #[test]
    fn single_ranges() {
        assert_eq!(decide("bytes=0-9", 100), Partial { start: 0, end: 9 });
        assert_eq!(decide("bytes=90-", 100), Partial { start: 90, end: 99 });
        assert_eq!(decide("bytes=90-1000", 100), Partial { start: 90, end: 99 });
        assert_eq!(decide("bytes=-10", 100), Partial { start: 90, end: 99 });
        assert_eq!(decide("bytes=-1000", 100), Partial { start: 0, end: 99 });
        assert_eq!(decide("Bytes = 5-5", 100), Partial { start: 5, end: 5 });
        assert_eq!(
            decide("bytes=0-99999999999999999999999", 100),
            Partial { start: 0, end: 99 }
        );
    }

    #[test]
    fn unsatisfiable_and_invalid_ranges() {
        for h in [
            "bytes=100-",
            "bytes=100-200",
            "bytes=-0",
            "bytes=5-2",
            "bytes=a-b",
            "bytes=",
            "bytes=-",
            "bytes=1-2-3",
            "bytes=0x1-2",
            "bytes",
            "bytes=1,2",
            "bytes=100-,200-",
        ] {
            assert_eq!(decide(h, 100), Unsatisfiable, "{h}");
        }
        assert_eq!(decide("bytes=0-", 0), Unsatisfiable);
        assert_eq!(decide("bytes=-5", 0), Unsatisfiable);
    }

    #[test]
    fn other_units_and_multiple_ranges_mean_the_whole_file() {
        assert_eq!(decide("items=0-5", 100), Full);
        assert_eq!(decide("bytes=0-1, 5-6", 100), Full);
        assert_eq!(decide("bytes=0-1, 500-600", 100), Full);
    }
}
