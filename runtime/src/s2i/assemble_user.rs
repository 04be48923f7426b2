//! `--assemble-user USER[:GROUP]`, reinterpreted for WebAssembly.
//!
//! s2i runs assemble as this user, so the files it creates belong to it. WASI has no uids, so
//! ws2i writes the user as the owner of the new layer's entries instead: the image gets what
//! s2i's would, while the hook itself runs with no identity at all. Names are resolved through
//! the builder rootfs's `/etc/passwd` and `/etc/group`, read through cap-std so that a hostile
//! image's symlinked `/etc/passwd` cannot make ws2i read a host file.

use std::io::Read as _;

use cap_std::fs::Dir;

/// Passwd and group files larger than this are refused rather than read into memory.
const MAX_DB_FILE: u64 = 4 << 20;

/// One side of `USER[:GROUP]`: a number or a name to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    Numeric(u32),
    Name(String),
}

impl Id {
    fn parse(s: &str) -> Option<Id> {
        if s.is_empty() || s.contains(|c: char| c == ':' || c.is_whitespace() || c.is_control()) {
            return None;
        }
        Some(match s.parse::<u32>() {
            Ok(n) => Id::Numeric(n),
            Err(_) if s.bytes().all(|b| b.is_ascii_digit()) => return None,
            Err(_) => Id::Name(s.to_string()),
        })
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Numeric(n) => write!(f, "{n}"),
            Id::Name(s) => f.write_str(s),
        }
    }
}

/// A parsed `USER[:GROUP]`, not yet resolved against an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembleUser {
    pub user: Id,
    pub group: Option<Id>,
}

#[derive(Debug, thiserror::Error)]
pub enum AssembleUserError {
    #[error("invalid assemble user {0:?}: expected USER[:GROUP], each a name or a number")]
    Syntax(String),
    #[error("assemble user {user:?}: no such user in the builder's /etc/passwd")]
    UnknownUser { user: String },
    #[error("assemble user {spec:?}: no such group {group:?} in the builder's /etc/group")]
    UnknownGroup { spec: String, group: String },
    #[error("assemble user {spec:?}: reading the builder's {file}: {message}")]
    Db {
        spec: String,
        file: &'static str,
        message: String,
    },
}

impl std::str::FromStr for AssembleUser {
    type Err = AssembleUserError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || AssembleUserError::Syntax(s.to_string());
        let (u, g) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        let user = Id::parse(u).ok_or_else(bad)?;
        let group = match g {
            Some(g) => Some(Id::parse(g).ok_or_else(bad)?),
            None => None,
        };
        Ok(AssembleUser { user, group })
    }
}

impl std::fmt::Display for AssembleUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.user)?;
        if let Some(g) = &self.group {
            write!(f, ":{g}")?;
        }
        Ok(())
    }
}

impl AssembleUser {
    /// The numeric `(uid, gid)` in the image whose root is `root`. Without GROUP the gid is the
    /// user's primary group from `/etc/passwd`, or 0 for a numeric uid it does not list
    /// (what container runtimes do). Numbers need no files; names must resolve.
    pub fn resolve(&self, root: &Dir) -> Result<(u32, u32), AssembleUserError> {
        let spec = self.to_string();
        let needs_passwd = matches!(self.user, Id::Name(_)) || self.group.is_none();
        let passwd = if needs_passwd {
            read_db(root, "etc/passwd", &spec, "/etc/passwd")?
        } else {
            None
        };
        let users = passwd.as_deref().map(parse_passwd).unwrap_or_default();
        let (uid, primary) = match &self.user {
            Id::Numeric(n) => (*n, users.iter().find(|u| u.1 == *n).map(|u| u.2)),
            Id::Name(name) => {
                let u = users
                    .iter()
                    .find(|u| u.0 == name)
                    .ok_or_else(|| AssembleUserError::UnknownUser { user: name.clone() })?;
                (u.1, Some(u.2))
            }
        };
        let gid = match &self.group {
            None => primary.unwrap_or(0),
            Some(Id::Numeric(n)) => *n,
            Some(Id::Name(name)) => {
                let text = read_db(root, "etc/group", &spec, "/etc/group")?.unwrap_or_default();
                parse_group(&text)
                    .into_iter()
                    .find(|g| g.0 == name)
                    .map(|g| g.1)
                    .ok_or_else(|| AssembleUserError::UnknownGroup {
                        spec: spec.clone(),
                        group: name.clone(),
                    })?
            }
        };
        Ok((uid, gid))
    }
}

/// `Ok(None)` when the file does not exist.
fn read_db(
    root: &Dir,
    rel: &str,
    spec: &str,
    file: &'static str,
) -> Result<Option<String>, AssembleUserError> {
    let err = |message: String| AssembleUserError::Db {
        spec: spec.to_string(),
        file,
        message,
    };
    let f = match root.open(rel) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    let meta = f.metadata().map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    f.take(MAX_DB_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_DB_FILE {
        return Err(err(format!("larger than {MAX_DB_FILE} bytes")));
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// `(name, uid, gid)` of each well-formed `name:pw:uid:gid:…` line; others are skipped.
fn parse_passwd(text: &str) -> Vec<(&str, u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let uid = f.next()?.parse().ok()?;
            let gid = f.next()?.parse().ok()?;
            (!name.is_empty() && !name.starts_with('#')).then_some((name, uid, gid))
        })
        .collect()
}

/// `(name, gid)` of each well-formed `name:pw:gid:…` line.
fn parse_group(text: &str) -> Vec<(&str, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let gid = f.next()?.parse().ok()?;
            (!name.is_empty() && !name.starts_with('#')).then_some((name, gid))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    fn root_with(passwd: Option<&str>, group: Option<&str>) -> (tempfile::TempDir, Dir) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        if let Some(p) = passwd {
            std::fs::write(t.path().join("etc/passwd"), p).unwrap();
        }
        if let Some(g) = group {
            std::fs::write(t.path().join("etc/group"), g).unwrap();
        }
        let d = Dir::open_ambient_dir(t.path(), ambient_authority()).unwrap();
        (t, d)
    }

    #[test]
    fn parse_specs() {
        let u: AssembleUser = "1001".parse().unwrap();
        assert_eq!(u, AssembleUser { user: Id::Numeric(1001), group: None });
        let u: AssembleUser = "app:web".parse().unwrap();
        assert_eq!(u.to_string(), "app:web");
        for bad in ["", ":1", "1:", "a:b:c", "a b", "99999999999", "1:x y"] {
            assert!(bad.parse::<AssembleUser>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolve_names_and_numbers() {
        let (_t, root) = root_with(
            Some("root:x:0:0::/root:/bin/sh\n# comment\nbroken line\napp:x:1001:1002::/opt:/bin/false\n"),
            Some("root:x:0:\nweb:x:2000:app\n"),
        );
        let r = |s: &str| s.parse::<AssembleUser>().unwrap().resolve(&root);
        assert_eq!(r("app").unwrap(), (1001, 1002));
        assert_eq!(r("app:web").unwrap(), (1001, 2000));
        assert_eq!(r("app:7").unwrap(), (1001, 7));
        assert_eq!(r("1001").unwrap(), (1001, 1002), "a listed uid gets its primary group");
        assert_eq!(r("4242").unwrap(), (4242, 0));
        assert_eq!(r("5:6").unwrap(), (5, 6));
        let e = r("nobody").unwrap_err().to_string();
        assert!(e.contains("no such user in the builder's /etc/passwd"), "{e}");
        let e = r("app:nogroup").unwrap_err().to_string();
        assert!(e.contains("no such group \"nogroup\""), "{e}");
    }

    #[test]
    fn no_files_and_hostile_links() {
        let (_t, root) = root_with(None, None);
        let r = |s: &str| s.parse::<AssembleUser>().unwrap().resolve(&root);
        assert_eq!(r("12:34").unwrap(), (12, 34));
        assert_eq!(r("12").unwrap(), (12, 0));
        assert!(r("app").is_err());
        // /etc/passwd pointing outside the rootfs is not followed there.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("passwd"), "app:x:7:7::/:/bin/sh\n").unwrap();
        let (t, root) = root_with(None, None);
        std::os::unix::fs::symlink(outside.path().join("passwd"), t.path().join("etc/passwd")).unwrap();
        let e = "app".parse::<AssembleUser>().unwrap().resolve(&root);
        assert!(e.is_err(), "{e:?}");
    }
}
