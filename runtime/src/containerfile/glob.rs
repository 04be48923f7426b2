//! Shell-style globs for `COPY` sources and `.containerignore` patterns:
//! `*` and `?` never cross `/`, `[a-z]`/`[!a]` classes, `\` escapes, and `**`
//! (a whole path segment) matches any number of segments.

/// True if `s` has a glob metacharacter (so it must be matched, not looked up).
pub fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// One element of a segment pattern.
enum Tok {
    Star,
    Any,
    /// A `[...]` class: the chars of its body (without the brackets).
    Class(Vec<char>),
    Lit(char),
}

fn tokens(pat: &str) -> Vec<Tok> {
    let p: Vec<char> = pat.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                if !matches!(out.last(), Some(Tok::Star)) {
                    out.push(Tok::Star);
                }
            }
            '?' => out.push(Tok::Any),
            '[' => {
                // `]` right after `[` or `[!` is a member, not the end.
                let body_start = i + 1 + usize::from(matches!(p.get(i + 1), Some('!') | Some('^')));
                match p.iter().skip(body_start + 1).position(|&c| c == ']') {
                    Some(off) => {
                        let end = body_start + 1 + off;
                        out.push(Tok::Class(p[i + 1..end].to_vec()));
                        i = end;
                    }
                    None => out.push(Tok::Lit('[')),
                }
            }
            '\\' if i + 1 < p.len() => {
                out.push(Tok::Lit(p[i + 1]));
                i += 1;
            }
            c => out.push(Tok::Lit(c)),
        }
        i += 1;
    }
    out
}

fn class_matches(body: &[char], c: char) -> bool {
    let (negate, body) = match body.first() {
        Some('!') | Some('^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut hit = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            hit |= body[i] <= c && c <= body[i + 2];
            i += 3;
        } else {
            hit |= body[i] == c;
            i += 1;
        }
    }
    hit != negate
}

/// Matches one path segment against one pattern segment, in O(pattern ×
/// name) time whatever the pattern (ignore files come from untrusted contexts).
pub fn match_segment(pat: &str, name: &str) -> bool {
    let toks = tokens(pat);
    let n: Vec<char> = name.chars().collect();
    let (mut ti, mut ni) = (0, 0);
    // Where to resume after the last `*`: (token after it, name position).
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let ok = match toks.get(ti) {
            Some(Tok::Star) => {
                star = Some((ti + 1, ni));
                ti += 1;
                continue;
            }
            Some(Tok::Any) => true,
            Some(Tok::Class(body)) => class_matches(body, n[ni]),
            Some(Tok::Lit(c)) => *c == n[ni],
            None => false,
        };
        if ok {
            ti += 1;
            ni += 1;
        } else if let Some((t, m)) = star {
            // Let the last `*` swallow one more char and retry.
            ti = t;
            ni = m + 1;
            star = Some((t, m + 1));
        } else {
            return false;
        }
    }
    toks[ti..].iter().all(|t| matches!(t, Tok::Star))
}

/// Matches a `/`-separated path against a `/`-separated pattern, by dynamic
/// programming so any number of `**` stays O(pattern × path).
pub fn match_path(pat: &[&str], path: &[&str]) -> bool {
    // ok[i][j]: pat[i..] matches path[j..].
    let mut ok = vec![vec![false; path.len() + 1]; pat.len() + 1];
    ok[pat.len()][path.len()] = true;
    for i in (0..pat.len()).rev() {
        for j in (0..=path.len()).rev() {
            ok[i][j] = if pat[i] == "**" {
                ok[i + 1][j] || (j < path.len() && ok[i][j + 1])
            } else {
                j < path.len() && ok[i + 1][j + 1] && match_segment(pat[i], path[j])
            };
        }
    }
    ok[0][0]
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
        assert!(match_segment("[]a]", "]"));
        assert!(match_segment("a*b*c", "axxbyyc"));
        assert!(!match_segment("a*b*c", "axxbyy"));
        assert!(match_segment("*", ""));
        assert!(!match_segment("?", ""));
        // Would take forever with naive backtracking.
        assert!(!match_segment(&"*a".repeat(30), &"a".repeat(29)));
        assert!(!match_path(
            &["**"; 40].iter().copied().chain(["x"]).collect::<Vec<_>>(),
            &["a"; 40]
        ));
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
