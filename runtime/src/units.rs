//! Human sizes and durations, spelled the same everywhere in the CLI:
//! `256MiB`, `1GiB`, `4G`, `512k`, `1048576`; `3s`, `500ms`, `30m`, `1h30m`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("invalid {what} {input:?}: {why}")]
pub struct ParseError {
    what: &'static str,
    input: String,
    why: &'static str,
}

/// A byte count parsed from a human form. Decimal (`k`, `M`, `G`) and binary
/// (`KiB`, `MiB`, `GiB`) suffixes are both accepted; `B` is optional.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

impl Size {
    pub const fn mib(n: u64) -> Self {
        Size(n << 20)
    }
    pub const fn gib(n: u64) -> Self {
        Size(n << 30)
    }
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for Size {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let err = |why| ParseError { what: "size", input: s.to_string(), why };
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(err("expected a number such as 256MiB"));
        }
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "ki" | "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mi" | "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gi" | "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "ti" | "tib" => 1 << 40,
            _ => return Err(err("unknown unit (use B, KiB, MiB, GiB, TiB or k, M, G, T)")),
        };
        let value: f64 = num.parse().map_err(|_| err("not a number"))?;
        let bytes = value * mult as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(err("out of range"));
        }
        Ok(Size(bytes as u64))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        for (name, mult) in UNITS {
            if self.0 >= mult {
                let v = self.0 as f64 / mult as f64;
                return if self.0 % mult == 0 { write!(f, "{}{name}", self.0 / mult) } else { write!(f, "{v:.1}{name}") };
            }
        }
        write!(f, "{}B", self.0)
    }
}

/// A duration parsed from a human form: a sequence of `<number><unit>` with
/// units `ms`, `s`, `m`, `h`, `d`; a bare number means seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let err = |why| ParseError { what: "duration", input: s.to_string(), why };
        let t = s.trim();
        if t.is_empty() {
            return Err(err("empty"));
        }
        if let Ok(secs) = t.parse::<f64>() {
            return Duration::try_from_secs_f64(secs).map(HumanDuration).map_err(|_| err("out of range"));
        }
        let mut total = Duration::ZERO;
        let mut rest = t;
        while !rest.is_empty() {
            let n = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(|| err("missing unit"))?;
            if n == 0 {
                return Err(err("expected a number such as 30s"));
            }
            let value: f64 = rest[..n].parse().map_err(|_| err("not a number"))?;
            rest = &rest[n..];
            let u = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let secs = match &rest[..u] {
                "ms" => value / 1000.0,
                "s" => value,
                "m" | "min" => value * 60.0,
                "h" => value * 3600.0,
                "d" => value * 86400.0,
                _ => return Err(err("unknown unit (use ms, s, m, h or d)")),
            };
            rest = &rest[u..];
            total += Duration::try_from_secs_f64(secs).map_err(|_| err("out of range"))?;
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_millis() != 0 || d.as_secs() == 0 {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}s", d.as_secs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("256MiB".parse::<Size>().unwrap(), Size::mib(256));
        assert_eq!("1GiB".parse::<Size>().unwrap(), Size::gib(1));
        assert_eq!("4G".parse::<Size>().unwrap(), Size(4_000_000_000));
        assert_eq!("1048576".parse::<Size>().unwrap(), Size(1 << 20));
        assert_eq!("1.5k".parse::<Size>().unwrap(), Size(1500));
        assert!("lots".parse::<Size>().is_err());
        assert!("12XB".parse::<Size>().is_err());
        assert_eq!(Size::mib(256).to_string(), "256MiB");
    }

    #[test]
    fn durations() {
        let d = |s: &str| s.parse::<HumanDuration>().map(|h| h.0);
        assert_eq!(d("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(d("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(d("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(d("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(d("2").unwrap(), Duration::from_secs(2));
        for bad in ["", "s", "3x", "-1s", "1e400"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }
}
