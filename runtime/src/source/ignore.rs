//! `.s2iignore`: upstream's dockerignore-like rules.
//!
//! Semantics (upstream `pkg/ignore`, kept so existing files behave the same):
//! - one glob per line, relative to the source root (the context dir); leading `/` or `./` and a
//!   trailing `/` are ignored; `#` starts a comment line; blank lines are skipped;
//! - globs are Go `filepath.Match` globs matched against the whole relative path: `*` and `?`
//!   never cross `/`, `[a-z]`/`[^a-z]` classes, `\` escapes. Not recursive: `*.log` matches
//!   `a.log` at the root only; `*/*.log` one level down;
//! - `!glob` re-includes what an earlier rule excluded (last matching rule wins);
//! - an excluded directory is excluded with everything below it, so `!dir/file` cannot bring back
//!   a file of an excluded `dir` (upstream's "hopeless exclusion").
//!
//! Difference: upstream joins patterns onto the host path, so `../x` could reach outside the
//! source; here a pattern with a `..` component never matches.

#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<(String, bool)>, // (glob, negated)
}

impl IgnoreRules {
    pub fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let parts: Vec<&str> = pat.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
            if parts.is_empty() || parts.contains(&"..") {
                continue;
            }
            rules.push((parts.join("/"), negated));
        }
        Self { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `rel` (a `/`-separated path relative to the source root) is ignored.
    pub fn is_ignored(&self, rel: &str) -> bool {
        let mut ignored = false;
        for (glob, negated) in &self.rules {
            if glob_match(glob.as_bytes(), rel.as_bytes()) {
                ignored = !negated;
            }
        }
        ignored
    }
}

/// Go `path.Match` semantics over bytes; a malformed class never matches.
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => {
            // `*` may consume any run of non-separator bytes.
            let rest = &p[1..];
            let mut i = 0;
            loop {
                if glob_match(rest, &s[i..]) {
                    return true;
                }
                if i >= s.len() || s[i] == b'/' {
                    return false;
                }
                i += 1;
            }
        }
        Some(b'?') => !s.is_empty() && s[0] != b'/' && glob_match(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(&c) = s.first() else { return false };
            if c == b'/' {
                return false;
            }
            match class_match(&p[1..], c) {
                Some((true, len)) => glob_match(&p[1 + len..], &s[1..]),
                _ => false,
            }
        }
        Some(b'\\') => match p.get(1) {
            Some(&e) => s.first() == Some(&e) && glob_match(&p[2..], &s[1..]),
            None => false,
        },
        Some(&c) => s.first() == Some(&c) && glob_match(&p[1..], &s[1..]),
    }
}

/// Matches `c` against the class starting after `[`; returns (matched, bytes consumed incl. `]`).
fn class_match(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 0;
    let negated = p.first() == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = match p.get(i)? {
            b']' if !first => return Some((matched != negated, i + 1)),
            b'\\' => {
                i += 1;
                *p.get(i)?
            }
            &b => b,
        };
        i += 1;
        first = false;
        let mut hi = lo;
        if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|b| *b != b']') {
            i += 1;
            hi = match p.get(i)? {
                b'\\' => {
                    i += 1;
                    *p.get(i)?
                }
                &b => b,
            };
            i += 1;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_semantics() {
        for (p, s, want) in [
            ("*.log", "a.log", true),
            ("*.log", "d/a.log", false),
            ("*/*.log", "d/a.log", true),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("[", "a", false),
            ("dir", "dir", true),
            ("dir", "dir2", false),
        ] {
            assert_eq!(glob_match(p.as_bytes(), s.as_bytes()), want, "{p} vs {s}");
        }
    }

    #[test]
    fn rules_upstream_cases() {
        let r = IgnoreRules::parse("# comment\n\n/tmp/\n*.md\n!README.md\n./sub/*.txt\n../etc\n");
        assert!(r.is_ignored("tmp"));
        assert!(r.is_ignored("NOTES.md"));
        assert!(!r.is_ignored("README.md"));
        assert!(!r.is_ignored("sub/README.md"));
        assert!(r.is_ignored("sub/a.txt"));
        assert!(!r.is_ignored("etc"));
        // override order: a later exclusion wins again
        let r = IgnoreRules::parse("!a.md\n*.md\n");
        assert!(r.is_ignored("a.md"));
    }
}
