//! Build environment variables: `.s2i/environment`, `--environment-file`/`-E` and `--env`/`-e`.
//!
//! Unlike upstream s2i, a malformed line is an error naming the file and line number instead of
//! being dropped silently: a typo in an environment file should never change a build quietly.
//!
//! Precedence, lowest first (a later source overrides an earlier one for the same key):
//! builder image `ENV` < `.s2i/environment` < `--environment-file` < `--env`.
//! Within one source, the last occurrence of a key wins.
//!
//! Values are secrets as far as logging goes: [`EnvVar`]'s `Debug` prints the key only.

use std::fmt;
use std::path::{Path, PathBuf};

/// One `KEY=VALUE` pair. The key is always a valid variable name.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvVar {
    key: String,
    value: String,
}

impl EnvVar {
    /// Validates `key` (non-empty, `[A-Za-z_][A-Za-z0-9_]*`).
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Result<Self, EnvError> {
        let key = key.into();
        if !is_valid_key(&key) {
            return Err(EnvError::InvalidKey { key });
        }
        Ok(Self { key, value: value.into() })
    }
    pub fn key(&self) -> &str {
        &self.key
    }
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for EnvVar {
    // Never print values: they are often credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<redacted>", self.key)
    }
}

/// Why an environment entry was refused. Never contains a value, only keys and positions.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("invalid environment variable name {key:?}")]
    InvalidKey { key: String },
    #[error("--env {arg_key:?}: expected NAME=VALUE")]
    MissingEquals { arg_key: String },
    #[error("{}:{line}: malformed line, expected NAME=VALUE: {reason}", file.display())]
    MalformedLine { file: PathBuf, line: usize, reason: String },
    #[error("cannot read environment file {}: {message}", file.display())]
    Read { file: PathBuf, message: String },
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Which comment markers a file accepts: upstream accepts `//` in `-E` files but not in
/// `.s2i/environment`; we keep that difference so files that work upstream work here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvFileKind {
    /// `.s2i/environment` in the source: `#` comments only.
    Source,
    /// `--environment-file`: `#` and `//` comments.
    Cli,
}

/// Parses the text of an environment file. `file` is only used in error messages.
///
/// Keys and values are trimmed (as upstream); quotes are kept literally (as upstream).
pub fn parse_env_file(text: &str, file: &Path, kind: EnvFileKind) -> Result<Vec<EnvVar>, EnvError> {
    let mut out = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || (kind == EnvFileKind::Cli && line.starts_with("//")) {
            continue;
        }
        let malformed = |reason: &str| EnvError::MalformedLine {
            file: file.to_path_buf(),
            line: idx + 1,
            reason: reason.to_string(),
        };
        let Some((k, v)) = line.split_once('=') else {
            return Err(malformed("no '=' on the line"));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(malformed("empty name"));
        }
        if !is_valid_key(k) {
            return Err(malformed(&format!("invalid name {k:?}")));
        }
        out.push(EnvVar { key: k.to_string(), value: v.trim().to_string() });
    }
    Ok(out)
}

/// Reads and parses an environment file from the host (for `-E`). Missing file is an error.
pub fn read_env_file(path: &Path, kind: EnvFileKind) -> Result<Vec<EnvVar>, EnvError> {
    let bytes = std::fs::read(path).map_err(|e| EnvError::Read { file: path.to_path_buf(), message: e.to_string() })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| EnvError::Read { file: path.to_path_buf(), message: "not valid UTF-8".into() })?;
    parse_env_file(&text, path, kind)
}

/// Parses one `--env NAME=VALUE` argument. The name is trimmed; the value is kept verbatim
/// (upstream trims it, which silently eats meaningful whitespace). `A=b,C=d` is one variable
/// whose value is `b,C=d` (upstream's deprecated comma splitting is not copied).
pub fn parse_env_arg(arg: &str) -> Result<EnvVar, EnvError> {
    let Some((k, v)) = arg.split_once('=') else {
        return Err(EnvError::MissingEquals { arg_key: arg.chars().take(64).collect() });
    };
    EnvVar::new(k.trim(), v)
}

/// Merges layers of variables, lowest precedence first; returns one entry per key, ordered by
/// first appearance so the result is deterministic (reproducible builds).
pub fn merge<'a>(layers: impl IntoIterator<Item = &'a [EnvVar]>) -> Vec<EnvVar> {
    let mut out: Vec<EnvVar> = Vec::new();
    for layer in layers {
        for var in layer {
            match out.iter_mut().find(|v| v.key == var.key) {
                Some(existing) => existing.value = var.value.clone(),
                None => out.push(var.clone()),
            }
        }
    }
    out
}

/// The four layers of a build environment, in precedence order (see module docs).
#[derive(Debug, Default, Clone)]
pub struct BuildEnv {
    pub image: Vec<EnvVar>,
    pub source_file: Vec<EnvVar>,
    pub cli_file: Vec<EnvVar>,
    pub cli_args: Vec<EnvVar>,
}

impl BuildEnv {
    pub fn resolve(&self) -> Vec<EnvVar> {
        merge([&self.image[..], &self.source_file[..], &self.cli_file[..], &self.cli_args[..]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(v: &[EnvVar]) -> Vec<(&str, &str)> {
        v.iter().map(|e| (e.key(), e.value())).collect()
    }

    #[test]
    fn parses_comments_blank_and_trims() {
        let t = "# c\n\n  A = 1 \nB=x=y\n// not a comment here\n";
        let err = parse_env_file(t, Path::new("e"), EnvFileKind::Source).unwrap_err();
        assert_eq!(err.to_string(), "e:5: malformed line, expected NAME=VALUE: no '=' on the line");
        let v = parse_env_file(t, Path::new("e"), EnvFileKind::Cli).unwrap();
        assert_eq!(kv(&v), [("A", "1"), ("B", "x=y")]);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        for (text, line, why) in [
            ("A=1\nnoequals\n", 2, "no '='"),
            ("A=1\n\n=v\n", 3, "empty name"),
            ("1A=v", 1, "invalid name"),
            ("A B=v", 1, "invalid name"),
        ] {
            let e = parse_env_file(text, Path::new("/src/.s2i/environment"), EnvFileKind::Source).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("/src/.s2i/environment:{line}:")), "{msg}");
            assert!(msg.contains(why), "{msg}");
        }
    }

    #[test]
    fn malformed_line_error_does_not_leak_value() {
        let e = parse_env_file("bad key=hunter2", Path::new("f"), EnvFileKind::Cli).unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        let e = parse_env_arg("hunter2").unwrap_err();
        assert!(e.to_string().contains("expected NAME=VALUE"));
        assert!(!format!("{:?}", EnvVar::new("K", "hunter2").unwrap()).contains("hunter2"));
    }

    #[test]
    fn env_arg() {
        let v = parse_env_arg(" FOO = bar,BAR=foo ").unwrap();
        assert_eq!((v.key(), v.value()), ("FOO", " bar,BAR=foo "));
        assert_eq!(parse_env_arg("FOO=").unwrap().value(), "");
        assert!(parse_env_arg("=x").is_err());
        assert!(parse_env_arg("FOO").is_err());
    }

    #[test]
    fn precedence() {
        let e = |k: &str, v: &str| EnvVar::new(k, v).unwrap();
        let env = BuildEnv {
            image: vec![e("A", "image"), e("B", "image"), e("C", "image"), e("D", "image")],
            source_file: vec![e("B", "src"), e("C", "src"), e("D", "src")],
            cli_file: vec![e("C", "file"), e("D", "file")],
            cli_args: vec![e("D", "arg"), e("E", "arg")],
        };
        assert_eq!(
            kv(&env.resolve()),
            [("A", "image"), ("B", "src"), ("C", "file"), ("D", "arg"), ("E", "arg")]
        );
    }
}
