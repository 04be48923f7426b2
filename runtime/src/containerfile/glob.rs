//! Shell-style globs for `COPY` sources and `.containerignore` patterns:
//! `*` and `?` never cross `/`, `[a-z]`/`[!a]` classes, `\` escapes, and `**`
//! (a whole path segment) matches any number of segments.

/// True if `s` has a glob metacharacter (so it must be matched, not looked up).
pub fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Matches one path segment against one pattern segment.
pub fn match_segment(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    seg(&p, &n)
}

fn seg(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| seg(&p[1..], &n[i..])),
        Some('?') => !n.is_empty() && seg(&p[1..], &n[1..]),
        Some('[') => match (class(&p[1..], n.first().copied()), n.first()) {
            (Some((true, used)), Some(_)) => seg(&p[1 + used..], &n[1..]),
            (Some(_), _) => false,
            // An unclosed `[` is a literal.
            (None, Some('[')) => seg(&p[1..], &n[1..]),
            (None, _) => false,
        },
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && seg(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && seg(&p[1..], &n[1..]),
    }
}

/// Parses a class after `[`; returns (matched, chars consumed including `]`).
fn class(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(p.first(), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        let lo = p[i];
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if let Some(c) = c {
                hit |= lo <= c && c <= p[i + 2];
            }
            i += 3;
        } else {
            hit |= c == Some(lo);
            i += 1;
        }
    }
    None
}

/// Matches a `/`-separated path against a `/`-separated pattern.
pub fn match_path(pat: &[&str], path: &[&str]) -> bool {
    match pat.first() {
        None => path.is_empty(),
        Some(&"**") => (0..=path.len()).any(|i| match_path(&pat[1..], &path[i..])),
        Some(p) => !path.is_empty() && match_segment(p, path[0]) && match_path(&pat[1..], &path[1..]),
    }
}

/// The rules of a `.containerignore` (or `.dockerignore`) file.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<(bool, Vec<String>)>,
}

impl Ignore {
    /// Parses the file's text: one pattern per line, `#` comments, `!` exceptions.
    pub fn parse(text: &str) -> Ignore {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let (negated, pat) = match l.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, l),
                };
                let segs: Vec<String> = pat
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .map(String::from)
                    .collect();
                (!segs.is_empty()).then_some((negated, segs))
            })
            .collect();
        Ignore { rules }
    }

    /// Whether `rel` (a normalized path relative to the context) is excluded.
    /// A pattern matching a parent directory excludes everything below it;
    /// the last matching rule wins, as in Docker.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let path: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        let mut excluded = false;
        for (negated, pat) in &self.rules {
            let pat: Vec<&str> = pat.iter().map(String::as_str).collect();
            if (1..=path.len()).any(|n| match_path(&pat, &path[..n])) {
                excluded = !negated;
            }
        }
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        assert!(match_segment("*.wasm", "a.wasm"));
        assert!(!match_segment("*.wasm", "a.wasm.txt"));
        assert!(match_segment("a?c", "abc"));
        assert!(match_segment("[a-c]x", "bx"));
        assert!(!match_segment("[!a-c]x", "bx"));
        assert!(match_segment("\\*", "*"));
        assert!(!match_segment("\\*", "a"));
        assert!(match_segment("[", "["));
    }

    #[test]
    fn paths_and_ignore() {
        assert!(match_path(&["**", "*.go"], &["a", "b", "c.go"]));
        assert!(match_path(&["**", "*.go"], &["c.go"]));
        let ig = Ignore::parse("# c\n.git\n*.md\n!README.md\nbuild/**/tmp\n");
        assert!(ig.is_excluded(".git/config"));
        assert!(ig.is_excluded("x.md"));
        assert!(!ig.is_excluded("README.md"));
        assert!(ig.is_excluded("build/a/b/tmp/x"));
        assert!(!ig.is_excluded("src/x.md"));
        assert!(!ig.is_excluded("main.go"));
    }
}
