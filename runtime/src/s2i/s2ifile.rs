//! `.s2ifile`: the saved arguments of `ws2i build --use-config`, in upstream s2i's format
//! (`pkg/config/config.go`), so a file written by either tool reads in the other:
//!
//! ```json
//! {"source":".","builderImage":"ws2i/go","tag":"app:1","flags":{"context-dir":"app","env-0":"A=1"}}
//! ```
//!
//! `flags` maps a long flag name to its value as typed. A repeatable flag is stored one value
//! per key, `NAME-0`, `NAME-1`, … (upstream does this for `env`); upstream's older `"env":"A=1,B=2"`
//! form is read too. Which flags go in and how they merge with the command line is the CLI's
//! business (`cli::build`); this module reads and writes the file, and says what an untrusted
//! one may restore ([`Trust`], [`S2iFile::check_untrusted`]).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::source::SourceLocation;

/// Where s2i looks, in order: `.s2ifile`, then the deprecated `.stifile`.
pub const FILE_NAMES: [&str; 2] = [".s2ifile", ".stifile"];
/// A config file larger than this is refused rather than read.
const MAX_SIZE: u64 = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct S2iFile {
    #[serde(default)]
    pub source: String,
    #[serde(rename = "builderImage", default)]
    pub builder_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flags: BTreeMap<String, String>,
}

/// Whether a config file speaks for the user or for the source it sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Named by the user (`--use-config=FILE`) and outside the source tree: restores everything.
    Trusted,
    /// Found rather than named (`--use-config` reads the working directory, often a checkout of
    /// the source), or inside the source tree: the tenant wrote it, so it restores only what
    /// shapes the build inside the sandbox and the image, never a grant of the host's.
    Untrusted,
}

/// The flags an untrusted config file may restore. Anything else (`--inject`, `--volume`,
/// `--environment-file`, `--scripts-url`, `--callback-url`, `--digest-file`, `--push`, `--run`,
/// `--publish`, budgets, `--tls-verify`, `--allow-local-submodules`, `--save-temp-dir`, any flag
/// added later) reads, writes or reaches something of the host, or spends more of it.
pub const HARMLESS_FLAGS: &[&str] = &[
    "ref",
    "context-dir",
    "copy",
    "keep-symlinks",
    "exclude",
    "ignore-submodules",
    "env",
    "image-scripts-url",
    "destination",
    "pull-policy",
    "incremental-pull-policy",
    "runtime-pull-policy",
    "application-name",
    "description",
    "label",
    "compression",
    "reproducible",
    "source-date-epoch",
    "incremental",
    "runtime-image",
    "runtime-artifact",
    "assemble-user",
];

#[derive(Debug, thiserror::Error)]
pub enum S2iFileError {
    #[error("{}: {} not restored from a config file the source controls (it was found in the working directory, or lies inside the source): {}; give them on the command line, or keep the config outside the source and name it with --use-config=FILE", path.display(), if entries.len() == 1 { "this entry grants access to the host and is" } else { "these entries grant access to the host and are" }, entries.join(", "))]
    Refused { path: PathBuf, entries: Vec<String> },
    #[error("{}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}: not a valid s2i config file ({message}); expected {{\"source\":…,\"builderImage\":…,\"tag\":…,\"flags\":{{\"NAME\":\"VALUE\"}}}}", path.display())]
    Malformed { path: PathBuf, message: String },
    #[error("writing {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
}

impl S2iFile {
    /// The saved config in `dir` (`.s2ifile`, else `.stifile`) and the path it came from;
    /// `None` when neither exists.
    pub fn load(dir: &Path) -> Result<Option<(S2iFile, PathBuf)>, S2iFileError> {
        for name in FILE_NAMES {
            let path = dir.join(name);
            if let Some(f) = Self::load_file(&path)? {
                return Ok(Some((f, path)));
            }
        }
        Ok(None)
    }

    /// The config at `path`; `None` when it does not exist.
    pub fn load_file(path: &Path) -> Result<Option<S2iFile>, S2iFileError> {
        let path = path.to_path_buf();
        let f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(S2iFileError::Read { path, message: e.to_string() }),
        };
        let read_err = |e: std::io::Error| S2iFileError::Read { path: path.clone(), message: e.to_string() };
        if !f.metadata().map_err(read_err)?.is_file() {
            return Err(S2iFileError::Read { path, message: "not a regular file".into() });
        }
        let mut bytes = Vec::new();
        f.take(MAX_SIZE + 1).read_to_end(&mut bytes).map_err(read_err)?;
        if bytes.len() as u64 > MAX_SIZE {
            return Err(S2iFileError::Read { path, message: format!("larger than {MAX_SIZE} bytes") });
        }
        let parsed = Self::parse(&bytes).map_err(|message| S2iFileError::Malformed { path: path.clone(), message })?;
        Ok(Some(parsed))
    }

    /// The keys holding the saved values of flag `name` (`NAME`, `NAME-0`, …).
    fn keys_of(&self, name: &str) -> Vec<String> {
        self.flags
            .keys()
            .filter(|k| {
                *k == name
                    || k.strip_prefix(name)
                        .and_then(|r| r.strip_prefix('-'))
                        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            })
            .cloned()
            .collect()
    }

    /// Refuses an untrusted file (at `path`) that would restore a host grant: one of the
    /// `restored` flags not in [`HARMLESS_FLAGS`], or, when `positionals` are restored, a
    /// SOURCE other than a local path inside `dir` (the directory the file speaks for; a
    /// remote one would be fetched with the host's credentials) or a `docker://` TAG (a
    /// registry written with them). Every such entry is named.
    pub fn check_untrusted(&self, path: &Path, restored: &[&str], positionals: bool, dir: &Path) -> Result<(), S2iFileError> {
        let mut entries: Vec<String> = Vec::new();
        for flag in restored.iter().filter(|f| !HARMLESS_FLAGS.contains(f)) {
            entries.extend(self.keys_of(flag).into_iter().map(|k| format!("{k:?} (--{flag})")));
        }
        if positionals {
            let is_local = matches!(SourceLocation::parse(&self.source), Ok(SourceLocation::Local(_)));
            let local_inside = is_local
                && match (dir.join(&self.source).canonicalize(), dir.canonicalize()) {
                    (Ok(src), Ok(dir)) => src.starts_with(dir),
                    // A missing source is the fetch's error to report; it reads nothing.
                    (Err(_), _) => !Path::new(&self.source).components().any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir)),
                    (_, Err(_)) => false,
                };
            if !local_inside {
                entries.push(format!("\"source\" ({:?}: only a local path inside {} is restored)", self.source, dir.display()));
            }
            if self.tag.starts_with("docker://") {
                entries.push(format!("\"tag\" ({:?}: a registry)", self.tag));
            }
        }
        if entries.is_empty() {
            Ok(())
        } else {
            Err(S2iFileError::Refused { path: path.to_path_buf(), entries })
        }
    }

    /// Drops the flags an untrusted file may not restore (so that what is saved into one
    /// restores); returns their names.
    pub fn drop_host_grants(&mut self) -> Vec<String> {
        let mut dropped = Vec::new();
        self.flags.retain(|k, _| {
            let name = match k.rsplit_once('-') {
                Some((n, i)) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => k.as_str(),
            };
            let keep = HARMLESS_FLAGS.contains(&name);
            if !keep && !dropped.iter().any(|d| d == name) {
                dropped.push(name.to_string());
            }
            keep
        });
        dropped
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<S2iFile, String> {
        // serde would take a struct from a JSON array too; upstream's file is an object.
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if !v.is_object() {
            return Err("expected a JSON object".into());
        }
        let f: S2iFile = serde_json::from_value(v).map_err(|e| e.to_string())?;
        if let Some(k) = f.flags.keys().find(|k| k.is_empty() || k.starts_with('-')) {
            return Err(format!("flag name {k:?}: expected a long flag name without dashes"));
        }
        Ok(f)
    }

    /// Values saved for the flag `name`: `NAME-0`, `NAME-1`, … in index order, else `NAME`
    /// (split at commas when `split_legacy`, upstream's old `env` form).
    pub fn values(&self, name: &str, split_legacy: bool) -> Vec<String> {
        let mut indexed: Vec<(usize, &String)> = self
            .flags
            .iter()
            .filter_map(|(k, v)| {
                let i = k.strip_prefix(name)?.strip_prefix('-')?;
                if i.is_empty() || !i.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((i.parse::<usize>().ok()?, v))
            })
            .collect();
        if !indexed.is_empty() {
            indexed.sort_by_key(|(i, _)| *i);
            return indexed.into_iter().map(|(_, v)| v.clone()).collect();
        }
        match self.flags.get(name) {
            Some(v) if split_legacy => v.split(',').map(str::to_string).collect(),
            Some(v) => vec![v.clone()],
            None => Vec::new(),
        }
    }

    /// Records `values` for `name`: one value as `NAME`, several (or a repeatable flag) as
    /// `NAME-0`, `NAME-1`, ….
    pub fn set(&mut self, name: &str, values: &[String], repeatable: bool) {
        if repeatable {
            for (i, v) in values.iter().enumerate() {
                self.flags.insert(format!("{name}-{i}"), v.clone());
            }
        } else if let Some(v) = values.last() {
            self.flags.insert(name.to_string(), v.clone());
        }
    }

    /// Writes `dir/.s2ifile` (a temp name in `dir`, then renamed over it).
    pub fn save(&self, dir: &Path) -> Result<PathBuf, S2iFileError> {
        self.save_file(&dir.join(FILE_NAMES[0]))
    }

    /// Writes the file at `path` (a temp name beside it, then renamed over it).
    pub fn save_file(&self, path: &Path) -> Result<PathBuf, S2iFileError> {
        let path = path.to_path_buf();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let err = |e: &dyn std::fmt::Display| S2iFileError::Write { path: path.clone(), message: e.to_string() };
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| err(&e))?;
        bytes.push(b'\n');
        let mut tmp = tempfile::Builder::new().prefix(".s2ifile.").tempfile_in(dir).map_err(|e| err(&e))?;
        tmp.write_all(&bytes).map_err(|e| err(&e))?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(|e| err(&e))?;
        }
        tmp.persist(&path).map_err(|e| err(&e.error))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_format_round_trips() {
        let t = tempfile::tempdir().unwrap();
        assert!(S2iFile::load(t.path()).unwrap().is_none());
        let up = r#"{"source":"https://h/r.git","builderImage":"centos/ruby","tag":"app","flags":{"env-1":"B=2","env-0":"A=1","context-dir":"x","incremental":"true"}}"#;
        std::fs::write(t.path().join(".stifile"), up).unwrap();
        let (f, p) = S2iFile::load(t.path()).unwrap().unwrap();
        assert!(p.ends_with(".stifile"));
        assert_eq!(f.builder_image, "centos/ruby");
        assert_eq!(f.values("env", true), ["A=1", "B=2"]);
        assert_eq!(f.values("context-dir", false), ["x"]);
        assert!(f.values("ref", false).is_empty());
        let saved = f.save(t.path()).unwrap();
        assert!(saved.ends_with(".s2ifile"));
        let (g, p) = S2iFile::load(t.path()).unwrap().unwrap();
        assert!(p.ends_with(".s2ifile"), ".s2ifile wins over .stifile");
        assert_eq!(f, g);
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
        assert_eq!(v["builderImage"], "centos/ruby");
    }

    #[test]
    fn legacy_env_and_set() {
        let mut f = S2iFile::default();
        f.flags.insert("env".into(), "A=1,B=2".into());
        assert_eq!(f.values("env", true), ["A=1", "B=2"]);
        f.set("label", &["a=1".into(), "b=2".into()], true);
        assert_eq!(f.values("label", false), ["a=1", "b=2"]);
        f.set("ref", &["v1".into()], false);
        assert_eq!(f.flags["ref"], "v1");
    }

    #[test]
    fn malformed_files_are_errors() {
        let t = tempfile::tempdir().unwrap();
        for bad in [&b"{not json"[..], br#"{"flags":{"x":1}}"#, br#"{"flags":{"--x":"1"}}"#, br#"[]"#] {
            std::fs::write(t.path().join(".s2ifile"), bad).unwrap();
            let e = S2iFile::load(t.path()).unwrap_err().to_string();
            assert!(e.contains(".s2ifile: not a valid s2i config file"), "{e}");
        }
    }
}
