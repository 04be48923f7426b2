//! Registry credentials, looked up the way podman/skopeo do: `--creds`,
//! `--authfile`, `$REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json`,
//! then `~/.docker/config.json` (including credential helpers).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    // Never print secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

impl Credentials {
    /// Parses `USER:PASS` as given to `--creds`.
    pub fn parse_creds(s: &str) -> Result<Self> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials::Basic {
                username: u.into(),
                password: p.into(),
            }),
            _ => bail!("--creds must be USER:PASS"),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }
}

fn from_docker(c: docker_credential::DockerCredential) -> Credentials {
    match c {
        docker_credential::DockerCredential::UsernamePassword(username, password) => {
            Credentials::Basic { username, password }
        }
        docker_credential::DockerCredential::IdentityToken(t) => Credentials::Bearer(t),
    }
}

fn from_file(path: &Path, registry: &str) -> Result<Option<Credentials>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading auth file {}", path.display())),
    };
    Ok(docker_credential::get_credential_from_reader(f, registry)
        .ok()
        .map(from_docker))
}

/// Looks up credentials for `registry` (`host[:port]`).
pub fn lookup(
    registry: &str,
    creds: Option<&Credentials>,
    authfile: Option<&Path>,
) -> Result<Credentials> {
    if let Some(c) = creds {
        return Ok(c.clone());
    }
    if let Some(p) = authfile {
        if !p.exists() {
            bail!("auth file {} does not exist", p.display());
        }
        return Ok(from_file(p, registry)?.unwrap_or(Credentials::Anonymous));
    }
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        files.push(p.into());
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(d).join("containers/auth.json"));
    }
    for f in files {
        if let Some(c) = from_file(&f, registry)? {
            return Ok(c);
        }
    }
    // ~/.docker/config.json or $DOCKER_CONFIG, with credsStore/credHelpers.
    Ok(docker_credential::get_credential(registry)
        .ok()
        .map(from_docker)
        .unwrap_or(Credentials::Anonymous))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authfile_and_creds() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("auth.json");
        // base64("alice:s3cret")
        std::fs::write(
            &p,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"YWxpY2U6czNjcmV0"}}}"#,
        )
        .unwrap();
        assert_eq!(
            lookup("127.0.0.1:5000", None, Some(&p)).unwrap(),
            Credentials::Basic {
                username: "alice".into(),
                password: "s3cret".into()
            }
        );
        assert_eq!(
            lookup("other:1", None, Some(&p)).unwrap(),
            Credentials::Anonymous
        );
        assert!(lookup("x", None, Some(&t.path().join("nope"))).is_err());
        let c = Credentials::parse_creds("u:p:q").unwrap();
        assert_eq!(lookup("x", Some(&c), Some(&p)).unwrap(), c);
        assert!(!format!("{c:?}").contains("p:q"));
        assert!(Credentials::parse_creds("nopass").is_err());
    }
}
