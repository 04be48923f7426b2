//! Word splitting, quote removal and variable expansion, following the rules
//! of Docker's shell lexer (moby/buildkit `frontend/dockerfile/shell`):
//! `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`,
//! `${VAR+word}`, `${VAR:?message}`, `${VAR?message}`; single quotes are
//! literal, double quotes expand; the escape character quotes the next one.

/// Looks a variable up; `None` means unset (which differs from empty for
/// `${VAR-word}` and `${VAR+word}`).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands `raw` into one word (no splitting on whitespace).
pub fn word(raw: &str, env: Lookup<'_>, escape: char) -> Result<String, String> {
    let mut lexer = Lexer {
        chars: raw.chars().collect(),
        pos: 0,
        env,
        escape,
    };
    let words = lexer.process(None, false)?;
    Ok(words.into_iter().next().unwrap_or_default())
}

/// Expands `raw` and splits it into words on unquoted whitespace (including
/// whitespace produced by an unquoted expansion, as Docker does).
pub fn words(raw: &str, env: Lookup<'_>, escape: char) -> Result<Vec<String>, String> {
    let mut lexer = Lexer {
        chars: raw.chars().collect(),
        pos: 0,
        env,
        escape,
    };
    lexer.process(None, true)
}

/// Splits on unquoted whitespace but keeps quotes and escapes in place: the
/// raw `name=value` pairs of `ENV`, `LABEL` and `ARG`, expanded one by one later.
pub fn split_raw(raw: &str, escape: char) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => {
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated quote {q} in {raw:?}"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    env: Lookup<'a>,
    escape: char,
}

/// Accumulates words; `started` distinguishes `""` (one empty word) from nothing.
#[derive(Default)]
struct Words {
    done: Vec<String>,
    cur: String,
    started: bool,
}

impl Words {
    fn push(&mut self, c: char) {
        self.cur.push(c);
        self.started = true;
    }
    fn push_str(&mut self, s: &str) {
        self.cur.push_str(s);
        self.started = true;
    }
    fn blank(&mut self) {
        if self.started {
            self.done.push(std::mem::take(&mut self.cur));
            self.started = false;
        }
    }
    fn finish(mut self) -> Vec<String> {
        self.blank();
        self.done
    }
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Processes until `stop` (consumed) or the end of input.
    fn process(&mut self, stop: Option<char>, split: bool) -> Result<Vec<String>, String> {
        let mut w = Words::default();
        loop {
            let Some(c) = self.next() else {
                if let Some(s) = stop {
                    return Err(format!("missing '{s}' in variable substitution"));
                }
                break;
            };
            if Some(c) == stop {
                break;
            }
            if c == self.escape {
                match self.next() {
                    Some(n) => w.push(n),
                    None => w.push(c),
                }
            } else if c == '\'' {
                w.started = true;
                loop {
                    match self.next() {
                        Some('\'') => break,
                        Some(n) => w.push(n),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            } else if c == '"' {
                w.started = true;
                loop {
                    match self.next() {
                        Some('"') => break,
                        Some('$') => {
                            let v = self.dollar()?;
                            w.push_str(&v);
                        }
                        Some(e) if e == self.escape => match self.next() {
                            Some(n) if n == '"' || n == '$' || n == e => w.push(n),
                            Some(n) => {
                                w.push(e);
                                w.push(n);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(n) => w.push(n),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            } else if c == '$' {
                let v = self.dollar()?;
                if split {
                    for ch in v.chars() {
                        if ch.is_whitespace() {
                            w.blank();
                        } else {
                            w.push(ch);
                        }
                    }
                } else {
                    w.push_str(&v);
                }
            } else if split && c.is_whitespace() {
                w.blank();
            } else {
                w.push(c);
            }
        }
        if split {
            Ok(w.finish())
        } else {
            Ok(vec![w.cur])
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// After a `$`: the expansion, or a literal `$` when no name follows.
    fn dollar(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err("bad substitution: empty or invalid name in ${...}".into());
                }
                let value = (self.env)(&name);
                let Some(op) = self.next() else {
                    return Err(format!("missing '}}' after ${{{name}"));
                };
                if op == '}' {
                    return Ok(value.unwrap_or_default());
                }
                let colon = op == ':';
                let op = if colon {
                    self.next()
                        .ok_or_else(|| format!("missing '}}' after ${{{name}:"))?
                } else {
                    op
                };
                if !matches!(op, '-' | '+' | '?') {
                    return Err(format!("unsupported modifier {op:?} in ${{{name}...}}"));
                }
                let word = self
                    .process(Some('}'), false)?
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                // With a colon, "set but empty" counts as unset.
                let set = match &value {
                    Some(v) => !(colon && v.is_empty()),
                    None => false,
                };
                match op {
                    '-' => Ok(if set { value.unwrap_or_default() } else { word }),
                    '+' => Ok(if set { word } else { String::new() }),
                    _ if set => Ok(value.unwrap_or_default()),
                    _ if word.is_empty() => Err(format!("{name}: is not allowed to be unset")),
                    _ => Err(format!("{name}: {word}")),
                }
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok((self.env)(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "FOO" => Some("/bar".into()),
            "EMPTY" => Some(String::new()),
            "SP" => Some("a b".into()),
            _ => None,
        }
    }

    fn w(raw: &str) -> String {
        word(raw, &env, '\\').unwrap()
    }

    #[test]
    fn docker_docs_examples() {
        assert_eq!(w("$FOO"), "/bar");
        assert_eq!(w("${FOO}"), "/bar");
        assert_eq!(w("${FOO}/x"), "/bar/x");
        assert_eq!(w("\\$FOO"), "$FOO");
        assert_eq!(w("'$FOO'"), "$FOO");
        assert_eq!(w("\"$FOO\""), "/bar");
        assert_eq!(w("${NOPE:-word}"), "word");
        assert_eq!(w("${EMPTY:-word}"), "word");
        assert_eq!(w("${EMPTY-word}"), "");
        assert_eq!(w("${FOO:-word}"), "/bar");
        assert_eq!(w("${FOO:+word}"), "word");
        assert_eq!(w("${EMPTY:+word}"), "");
        assert_eq!(w("${EMPTY+word}"), "word");
        assert_eq!(w("${NOPE:+word}"), "");
        assert_eq!(w("${NOPE:-$FOO/x}"), "/bar/x");
        assert_eq!(w("$NOPE"), "");
        assert_eq!(w("a$"), "a$");
        assert_eq!(w("\"a \\\" \\$b\""), "a \" $b");
        assert_eq!(w("\"a\\nb\""), "a\\nb");
    }

    #[test]
    fn errors() {
        assert!(word("${NOPE:?must be set}", &env, '\\')
            .unwrap_err()
            .contains("must be set"));
        assert!(word("${FOO", &env, '\\').is_err());
        assert!(word("${}", &env, '\\').is_err());
        assert!(word("${FOO%x}", &env, '\\').is_err());
        assert!(word("'abc", &env, '\\').is_err());
        assert!(word("\"abc", &env, '\\').is_err());
        assert_eq!(word("${FOO:?x}", &env, '\\').unwrap(), "/bar");
    }

    #[test]
    fn splitting() {
        let ws = |raw| words(raw, &env, '\\').unwrap();
        assert_eq!(ws("a  b"), ["a", "b"]);
        assert_eq!(ws("\"a b\" c"), ["a b", "c"]);
        assert_eq!(ws("$SP c"), ["a", "b", "c"]);
        assert_eq!(ws("\"$SP\" c"), ["a b", "c"]);
        assert_eq!(ws("$NOPE c"), ["c"]);
        assert_eq!(ws("\"\" c"), ["", "c"]);
        assert_eq!(ws("a\\ b"), ["a b"]);
        assert_eq!(words("C:\\x `$FOO", &env, '`').unwrap(), ["C:\\x", "$FOO"]);
    }

    #[test]
    fn raw_split_keeps_quotes() {
        assert_eq!(
            split_raw("K=V K2=\"v 2\" K3=a\\ b", '\\').unwrap(),
            ["K=V", "K2=\"v 2\"", "K3=a\\ b"]
        );
        assert!(split_raw("K=\"v", '\\').is_err());
    }
}
