//! Containerfile text → instructions: parser directives, comments, line
//! continuations, flags, and exec (JSON) versus shell form.

use super::{Error, ErrorKind};

/// A parsed Containerfile, not yet evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerfile {
    /// The escape character from `# escape=` (`\` by default, or `` ` ``).
    pub escape: char,
    /// The value of a `# syntax=` directive, recorded and otherwise ignored.
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    From,
    Arg,
    Env,
    Label,
    Copy,
    Add,
    Workdir,
    User,
    Expose,
    Cmd,
    Entrypoint,
    Run,
    Volume,
    StopSignal,
    Maintainer,
    Healthcheck,
    Onbuild,
    Shell,
}

impl Keyword {
    fn parse(word: &str) -> Option<Keyword> {
        use Keyword::*;
        Some(match word.to_ascii_uppercase().as_str() {
            "FROM" => From,
            "ARG" => Arg,
            "ENV" => Env,
            "LABEL" => Label,
            "COPY" => Copy,
            "ADD" => Add,
            "WORKDIR" => Workdir,
            "USER" => User,
            "EXPOSE" => Expose,
            "CMD" => Cmd,
            "ENTRYPOINT" => Entrypoint,
            "RUN" => Run,
            "VOLUME" => Volume,
            "STOPSIGNAL" => StopSignal,
            "MAINTAINER" => Maintainer,
            "HEALTHCHECK" => Healthcheck,
            "ONBUILD" => Onbuild,
            "SHELL" => Shell,
            _ => return None,
        })
    }
}

/// `--name=value` before the arguments (`COPY --chmod=0755 ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// `["a", "b"]`: taken literally, no shell.
    Exec(Vec<String>),
    /// Anything else, raw (quotes and `$` still in place).
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    pub keyword: Keyword,
    pub flags: Vec<Flag>,
    pub args: Args,
}

fn err(line: usize, message: impl Into<String>) -> Error {
    Error {
        line,
        kind: ErrorKind::Syntax,
        message: message.into(),
    }
}

impl Containerfile {
    /// Parses the text of a Containerfile.
    pub fn parse(text: &str) -> Result<Containerfile, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text.lines().collect();
        let mut escape = '\\';
        let mut syntax = None;
        let mut seen = Vec::new();
        let mut i = 0;
        // Directives only count in the leading comment block, before any blank
        // line, other comment or instruction.
        while i < lines.len() {
            let Some((key, value)) = directive(lines[i]) else {
                break;
            };
            if seen.contains(&key) {
                return Err(err(i + 1, format!("parser directive '{key}' given twice")));
            }
            match key.as_str() {
                "escape" => {
                    escape = match value.as_str() {
                        "\\" => '\\',
                        "`" => '`',
                        _ => {
                            return Err(err(
                                i + 1,
                                format!("invalid escape character {value:?}: must be \\ or `"),
                            ))
                        }
                    }
                }
                "syntax" => syntax = Some(value),
                _ => {} // `check=` and friends: accepted, no effect here.
            }
            seen.push(key);
            i += 1;
        }

        let mut instructions = Vec::new();
        while i < lines.len() {
            let start = i;
            let first = lines[i];
            i += 1;
            let t = first.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let mut logical = String::new();
            let mut cur = first;
            loop {
                let trimmed = cur.trim_end();
                match trimmed.strip_suffix(escape) {
                    Some(body) => {
                        logical.push_str(body);
                        // Comment and blank lines inside a continuation are dropped.
                        while i < lines.len() && {
                            let t = lines[i].trim();
                            t.is_empty() || t.starts_with('#')
                        } {
                            i += 1;
                        }
                        if i >= lines.len() {
                            break;
                        }
                        cur = lines[i];
                        i += 1;
                    }
                    None => {
                        logical.push_str(cur);
                        break;
                    }
                }
            }
            instructions.push(instruction(start + 1, &logical)?);
        }
        Ok(Containerfile {
            escape,
            syntax,
            instructions,
        })
    }
}

fn directive(line: &str) -> Option<(String, String)> {
    let body = line.trim().strip_prefix('#')?.trim();
    let (key, value) = body.split_once('=')?;
    let key = key.trim().to_ascii_lowercase();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((key, value.trim().to_string()))
}

fn instruction(line: usize, logical: &str) -> Result<Instruction, Error> {
    let logical = logical.trim();
    let (word, mut rest) = match logical.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim_start()),
        None => (logical, ""),
    };
    let keyword =
        Keyword::parse(word).ok_or_else(|| err(line, format!("unknown instruction {word:?}")))?;
    let mut flags = Vec::new();
    if matches!(
        keyword,
        Keyword::From | Keyword::Copy | Keyword::Add | Keyword::Run | Keyword::Healthcheck
    ) {
        while let Some(after) = rest.strip_prefix("--") {
            let (tok, r) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
            let (name, value) = match tok.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (tok, None),
            };
            if name.is_empty() {
                return Err(err(line, format!("{word}: malformed flag '--{tok}'")));
            }
            flags.push(Flag {
                name: name.to_ascii_lowercase(),
                value,
            });
            rest = r.trim_start();
        }
    }
    let rest = rest.trim();
    // Like Docker, text that starts with `[` but is not a JSON string array is shell form.
    let args = match rest
        .starts_with('[')
        .then(|| serde_json::from_str::<Vec<String>>(rest))
    {
        Some(Ok(v)) => Args::Exec(v),
        _ => Args::Shell(rest.to_string()),
    };
    Ok(Instruction {
        line,
        keyword,
        flags,
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_and_forms() {
        let cf = Containerfile::parse(
            "# syntax=docker/dockerfile:1\n\n# a comment\nFROM scratch AS base\nCOPY --chmod=0755 \\\n  # inside\n\n  a b /dst/\nCMD [\"usage\"]\nrun echo hi\nEXPOSE 8080 [oops\n",
        )
        .unwrap();
        assert_eq!(cf.syntax.as_deref(), Some("docker/dockerfile:1"));
        let i = &cf.instructions;
        assert_eq!(i.len(), 5);
        assert_eq!(i[0].line, 4);
        assert_eq!(i[1].line, 5);
        assert_eq!(
            i[1].flags,
            vec![Flag {
                name: "chmod".into(),
                value: Some("0755".into())
            }]
        );
        assert_eq!(i[1].args, Args::Shell("a b /dst/".into()));
        assert_eq!(i[2].args, Args::Exec(vec!["usage".into()]));
        assert_eq!(i[3].keyword, Keyword::Run);
        assert_eq!(i[3].line, 10);
        assert_eq!(i[4].args, Args::Shell("8080 [oops".into()));
    }

    #[test]
    fn escape_directive() {
        let cf = Containerfile::parse("# escape=`\nFROM scratch\nCOPY a `\n  b\\ /x/\n").unwrap();
        assert_eq!(cf.escape, '`');
        assert_eq!(cf.instructions[1].args, Args::Shell("a   b\\ /x/".into()));
        // After the first instruction a directive is just a comment.
        let cf = Containerfile::parse("FROM scratch\n# escape=`\n").unwrap();
        assert_eq!(cf.escape, '\\');
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = Containerfile::parse("# escape=x\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = Containerfile::parse("# escape=`\n# escape=\\\n").unwrap_err();
        assert_eq!((e.line, e.message.contains("twice")), (2, true));
        let e = Containerfile::parse("FROM scratch\n\nFORM x\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string().contains("line 3") && e.to_string().contains("FORM"),
            "{e}"
        );
        let e = Containerfile::parse("FROM scratch\nCOPY --=x a b\n").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
