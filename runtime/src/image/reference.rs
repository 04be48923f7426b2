//! Image references in skopeo's transport syntax.
//!
//! - `NAME[:TAG]`, `NAME@sha256:…` — the local store (default transport)
//! - `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` — a registry
//! - `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` — OCI layout directory / tar of one
//! - `docker-archive:FILE[:NAME:TAG]` — `docker save` format

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::Digest;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RefError {
    #[error("empty image reference")]
    Empty,
    #[error("invalid image reference {input:?}: {why}")]
    Invalid { input: String, why: String },
}

fn invalid(input: &str, why: impl Into<String>) -> RefError {
    RefError::Invalid {
        input: input.to_string(),
        why: why.into(),
    }
}

/// `NAME:TAG` as stored in the local store's index.json annotation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameTag {
    pub name: String,
    pub tag: String,
}

impl fmt::Display for NameTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

impl FromStr for NameTag {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, RefError> {
        match s.parse::<LocalRef>()? {
            LocalRef::Tagged(nt) => Ok(nt),
            LocalRef::Digest { .. } => Err(invalid(s, "a tag is needed here, not a digest")),
        }
    }
}

/// A reference into the local store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalRef {
    Tagged(NameTag),
    Digest {
        name: Option<String>,
        digest: Digest,
    },
}

impl fmt::Display for LocalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalRef::Tagged(nt) => nt.fmt(f),
            LocalRef::Digest {
                name: Some(n),
                digest,
            } => write!(f, "{n}@{digest}"),
            LocalRef::Digest { name: None, digest } => digest.fmt(f),
        }
    }
}

/// Repository names: lowercase path components separated by `/`, optionally
/// starting with a registry host (which may carry a port).
fn check_name(input: &str, name: &str) -> Result<(), RefError> {
    if name.is_empty() {
        return Err(invalid(input, "the name is empty"));
    }
    if name.len() > 255 {
        return Err(invalid(input, "the name is longer than 255 characters"));
    }
    for (i, comp) in name.split('/').enumerate() {
        let host_ok = i == 0
            && name.contains('/')
            && (comp.contains('.') || comp.contains(':') || comp == "localhost");
        let ok = !comp.is_empty()
            && comp.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b'-')
                    || (host_ok && (b == b':' || b.is_ascii_uppercase()))
            })
            && comp.as_bytes()[0].is_ascii_alphanumeric();
        if !ok {
            return Err(invalid(
                input,
                format!("name component {comp:?} must be lowercase letters, digits, '.', '_' or '-' and start with a letter or digit"),
            ));
        }
    }
    Ok(())
}

fn check_tag(input: &str, tag: &str) -> Result<(), RefError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.as_bytes()[0] != b'.'
        && tag.as_bytes()[0] != b'-'
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            input,
            format!("tag {tag:?} must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'"),
        ))
    }
}

/// Splits `NAME[:TAG]` where NAME may contain `host:port/`.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    }
}

impl FromStr for LocalRef {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, RefError> {
        if s.is_empty() {
            return Err(RefError::Empty);
        }
        if let Some((name, digest)) = s.split_once('@') {
            let digest = digest
                .parse::<Digest>()
                .map_err(|e| invalid(s, e.to_string()))?;
            check_name(s, name)?;
            return Ok(LocalRef::Digest {
                name: Some(name.to_string()),
                digest,
            });
        }
        if s.starts_with("sha256:") {
            let digest = s.parse::<Digest>().map_err(|e| invalid(s, e.to_string()))?;
            return Ok(LocalRef::Digest { name: None, digest });
        }
        let (name, tag) = split_tag(s);
        check_name(s, name)?;
        let tag = tag.unwrap_or("latest");
        check_tag(s, tag)?;
        Ok(LocalRef::Tagged(NameTag {
            name: name.to_string(),
            tag: tag.to_string(),
        }))
    }
}

/// What a registry reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteTarget {
    Tag(String),
    Digest(Digest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRef {
    /// `host[:port]`
    pub registry: String,
    pub repository: String,
    pub target: RemoteTarget,
}

impl DockerRef {
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        matches!(host, "localhost" | "127.0.0.1" | "[::1]")
    }

    pub fn with_target(&self, target: RemoteTarget) -> DockerRef {
        DockerRef {
            target,
            ..self.clone()
        }
    }
}

impl fmt::Display for DockerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match &self.target {
            RemoteTarget::Tag(t) => write!(f, ":{t}"),
            RemoteTarget::Digest(d) => write!(f, "@{d}"),
        }
    }
}

/// Any image reference ws2i can read from or write to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Local(LocalRef),
    Docker(DockerRef),
    OciDir {
        path: PathBuf,
        tag: Option<String>,
    },
    OciArchive {
        path: PathBuf,
        tag: Option<String>,
    },
    DockerArchive {
        path: PathBuf,
        name: Option<NameTag>,
    },
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |t: &Option<String>| t.as_ref().map(|t| format!(":{t}")).unwrap_or_default();
        match self {
            ImageRef::Local(r) => r.fmt(f),
            ImageRef::Docker(r) => write!(f, "docker://{r}"),
            ImageRef::OciDir { path, tag } => write!(f, "oci:{}{}", path.display(), opt(tag)),
            ImageRef::OciArchive { path, tag } => {
                write!(f, "oci-archive:{}{}", path.display(), opt(tag))
            }
            ImageRef::DockerArchive { path, name } => {
                write!(f, "docker-archive:{}", path.display())?;
                if let Some(n) = name {
                    write!(f, ":{n}")?;
                }
                Ok(())
            }
        }
    }
}

/// skopeo splits `PATH:REF` at the first colon (so PATH cannot contain one, REF may).
fn split_path(input: &str, rest: &str) -> Result<(PathBuf, Option<String>), RefError> {
    let (path, tag) = match rest.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(invalid(input, "the path is empty"));
    }
    if tag == Some("") {
        return Err(invalid(input, "empty name after ':'"));
    }
    Ok((PathBuf::from(path), tag.map(str::to_string)))
}

impl FromStr for ImageRef {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, RefError> {
        if s.is_empty() {
            return Err(RefError::Empty);
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            let (registry, path) = rest
                .split_once('/')
                .ok_or_else(|| invalid(s, "expected docker://HOST[:PORT]/REPO[:TAG|@DIGEST]"))?;
            if registry.is_empty() {
                return Err(invalid(s, "the registry host is empty"));
            }
            let (repository, target) = match path.split_once('@') {
                Some((repo, d)) => (
                    repo,
                    RemoteTarget::Digest(
                        d.parse()
                            .map_err(|e: crate::digest::DigestError| invalid(s, e.to_string()))?,
                    ),
                ),
                None => {
                    let (repo, tag) = split_tag(path);
                    let tag = tag.unwrap_or("latest");
                    check_tag(s, tag)?;
                    (repo, RemoteTarget::Tag(tag.to_string()))
                }
            };
            check_name(s, repository)?;
            return Ok(ImageRef::Docker(DockerRef {
                registry: registry.to_string(),
                repository: repository.to_string(),
                target,
            }));
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = split_path(s, rest)?;
            return Ok(ImageRef::OciDir { path, tag });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = split_path(s, rest)?;
            return Ok(ImageRef::OciArchive { path, tag });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (path, name) = split_path(s, rest)?;
            let name = name.map(|n| n.parse::<NameTag>()).transpose()?;
            return Ok(ImageRef::DockerArchive { path, name });
        }
        if let Some((t, _)) = s.split_once(':') {
            if matches!(
                t,
                "dir" | "containers-storage" | "docker-daemon" | "docker" | "ostree" | "sif"
            ) {
                return Err(invalid(s, format!("transport {t:?} is not supported (use docker://, oci:, oci-archive:, docker-archive: or a local NAME[:TAG])")));
            }
        }
        Ok(ImageRef::Local(s.parse()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nt(n: &str, t: &str) -> LocalRef {
        LocalRef::Tagged(NameTag {
            name: n.into(),
            tag: t.into(),
        })
    }

    #[test]
    fn local_refs() {
        assert_eq!("foo".parse::<LocalRef>().unwrap(), nt("foo", "latest"));
        assert_eq!("a/b:1.0".parse::<LocalRef>().unwrap(), nt("a/b", "1.0"));
        assert_eq!(
            "localhost:5000/x".parse::<LocalRef>().unwrap(),
            nt("localhost:5000/x", "latest")
        );
        let d = Digest::of(b"");
        assert_eq!(
            format!("foo@{d}").parse::<LocalRef>().unwrap(),
            LocalRef::Digest {
                name: Some("foo".into()),
                digest: d.clone()
            }
        );
        for bad in [
            "",
            "Foo",
            "foo:",
            "foo:-x",
            "foo@sha256:12",
            "a//b",
            "../x",
            "foo bar",
            "x:a/b/",
        ] {
            assert!(bad.parse::<LocalRef>().is_err(), "{bad}");
        }
        let e = "Foo".parse::<LocalRef>().unwrap_err().to_string();
        assert!(e.contains("lowercase"), "{e}");
    }

    #[test]
    fn transports() {
        let r: ImageRef = "docker://127.0.0.1:5000/a/b:v1".parse().unwrap();
        let ImageRef::Docker(d) = &r else { panic!() };
        assert_eq!(
            (d.registry.as_str(), d.repository.as_str()),
            ("127.0.0.1:5000", "a/b")
        );
        assert_eq!(d.target, RemoteTarget::Tag("v1".into()));
        assert!(d.is_loopback());
        assert_eq!(r.to_string(), "docker://127.0.0.1:5000/a/b:v1");
        let r: ImageRef = "docker://h.io/x".parse().unwrap();
        assert_eq!(r.to_string(), "docker://h.io/x:latest");
        assert!("docker://noslash".parse::<ImageRef>().is_err());
        assert!("docker://h/x@sha256:zz".parse::<ImageRef>().is_err());
        assert_eq!(
            "oci:/tmp/l:my/app:1".parse::<ImageRef>().unwrap(),
            ImageRef::OciDir {
                path: "/tmp/l".into(),
                tag: Some("my/app:1".into())
            }
        );
        assert_eq!(
            "oci-archive:x.tar".parse::<ImageRef>().unwrap(),
            ImageRef::OciArchive {
                path: "x.tar".into(),
                tag: None
            }
        );
        assert_eq!(
            "docker-archive:x.tar:a/b:c".parse::<ImageRef>().unwrap(),
            ImageRef::DockerArchive {
                path: "x.tar".into(),
                name: Some(NameTag {
                    name: "a/b".into(),
                    tag: "c".into()
                })
            }
        );
        assert!("oci:".parse::<ImageRef>().is_err());
        let e = "dir:/x".parse::<ImageRef>().unwrap_err().to_string();
        assert!(e.contains("not supported"), "{e}");
        assert_eq!(
            "app".parse::<ImageRef>().unwrap(),
            ImageRef::Local(nt("app", "latest"))
        );
    }
}
