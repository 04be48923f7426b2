//! Registry client on oci-client, wrapped as a synchronous [`ImageSource`] /
//! [`ImageDestination`] (each owns a small tokio runtime; do not call from
//! inside an async context — use `spawn_blocking`).
//!
//! Plain HTTP is used when `--tls-verify=false` or, by default, for loopback
//! registries (`localhost`, `127.0.0.1`, `[::1]`): a local test registry has
//! no certificate, and loopback traffic never leaves the host.
//! Manifests and blobs are fetched with bounded reads of our own (oci-client reads a manifest
//! whole, however large): a manifest or index is refused past [`MAX_MANIFEST`], a blob past its
//! descriptor's size (the transfer stops at size + 1), an error body is read to 64 KiB at most.
//! Blobs are verified against their digest and size while streaming; uploads stream
//! from disk monolithically; transient failures (5xx, connection errors) are
//! retried with bounded exponential backoff; the manifest is pushed last.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::image::auth::{self, Credentials};
use crate::digest::HashingWriter;
use crate::image::{self, media, Descriptor};
use crate::image::store::MAX_MANIFEST;
use crate::image::reference::{DockerRef, RemoteTarget};
use crate::image::endpoint::{ImageDestination, ImageSource};
use crate::Digest;

#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `None`: verify TLS except for loopback registries (plain HTTP there).
    pub tls_verify: Option<bool>,
    pub creds: Option<Credentials>,
    pub authfile: Option<PathBuf>,
    /// Attempts per request for transient errors (default 4).
    pub attempts: Option<u32>,
}

const ACCEPT: &[&str] = &[
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_LIST,
];

struct Conn {
    rt: tokio::runtime::Runtime,
    client: Client,
    /// For the bounded GETs of manifests and blobs, configured as `client` is.
    http: reqwest::Client,
    /// `http` or `https`, as `client` speaks to this registry.
    scheme: &'static str,
    reference: Reference,
    auth: RegistryAuth,
    creds_given: bool,
    registry: String,
    attempts: u32,
}

impl Conn {
    fn new(r: &DockerRef, opts: &RegistryOptions) -> Result<Self> {
        let plain = match opts.tls_verify {
            Some(v) => !v,
            None => r.is_loopback(),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .tls_danger_accept_invalid_certs(opts.tls_verify == Some(false))
            .build()
            .context("creating the registry HTTP client")?;
        let config = ClientConfig {
            protocol: if plain {
                ClientProtocol::HttpsExcept(vec![r.registry.clone()])
            } else {
                ClientProtocol::Https
            },
            use_monolithic_push: true,
            accept_invalid_certificates: opts.tls_verify == Some(false),
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            ..ClientConfig::default()
        };
        let creds = auth::lookup(&r.registry, opts.creds.as_ref(), opts.authfile.as_deref())?;
        let auth = match &creds {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Credentials::Bearer(t) => RegistryAuth::Bearer(t.clone()),
        };
        let reference = to_reference(r);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Conn {
            rt,
            client: Client::new(config),
            http,
            scheme: if plain { "http" } else { "https" },
            reference,
            auth,
            creds_given: !creds.is_anonymous(),
            registry: r.registry.clone(),
            attempts: opts.attempts.unwrap_or(4).max(1),
        })
    }

    /// Runs `op` with bounded retries on transient errors and explains auth failures.
    fn call<T, F, Fut>(&self, what: &str, op: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        self.rt.block_on(self.retry(what, op))
    }

    async fn retry<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let mut delay = Duration::from_millis(200);
        for attempt in 1.. {
            match op(self.client.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.attempts && is_transient(&e) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    return Err(self.explain(e))
                        .with_context(|| format!("{what} ({})", self.registry))
                }
            }
        }
        unreachable!("loop returns")
    }

    fn explain(&self, e: OciDistributionError) -> anyhow::Error {
        let s = e.to_string();
        let unauthorized = matches!(
            e,
            OciDistributionError::AuthenticationFailure(_)
                | OciDistributionError::UnauthorizedError { .. }
        ) || s.contains("401")
            || s.contains("UNAUTHORIZED");
        if unauthorized {
            return if self.creds_given {
                anyhow!("registry {} rejected the credentials (401): check --creds / the auth file entry for {}", self.registry, self.registry)
            } else {
                anyhow!(
                    "registry {} requires authentication (401): pass --creds USER:PASS or --authfile FILE (or set REGISTRY_AUTH_FILE; `podman login {}` writes one)",
                    self.registry,
                    self.registry
                )
            };
        }
        if let OciDistributionError::RequestError(r) = &e {
            if r.is_connect() {
                return anyhow!("cannot reach registry {} (is it running? for a plain-HTTP registry not on localhost pass --tls-verify=false): {e}", self.registry);
            }
        }
        anyhow::Error::new(e)
    }

    fn authenticate(&self, op: RegistryOperation) -> Result<()> {
        let (r, a) = (self.reference.clone(), self.auth.clone());
        self.call("authenticating", move |c| {
            let (r, a) = (r.clone(), a.clone());
            async move { c.auth(&r, &a, op).await.map(|_| ()) }
        })
    }
}

fn is_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        OciDistributionError::RequestError(r) => {
            r.is_connect() || r.is_timeout() || r.is_request() || r.is_body()
        }
        _ => false,
    }
}

fn to_reference(r: &DockerRef) -> Reference {
    match &r.target {
        RemoteTarget::Tag(t) => {
            Reference::with_tag(r.registry.clone(), r.repository.clone(), t.clone())
        }
        RemoteTarget::Digest(d) => {
            Reference::with_digest(r.registry.clone(), r.repository.clone(), d.to_string())
        }
    }
}

pub struct RegistrySource {
    conn: Conn,
    target: DockerRef,
}

impl RegistrySource {
    pub fn new(r: &DockerRef, opts: &RegistryOptions) -> Result<Self> {
        let conn = Conn::new(r, opts)?;
        Ok(RegistrySource {
            conn,
            target: r.clone(),
        })
    }
}

impl ImageSource for RegistrySource {
    fn manifest(&mut self, digest: Option<&Digest>) -> Result<(Vec<u8>, String)> {
        let want = digest.cloned().or(match &self.target.target {
            RemoteTarget::Digest(d) => Some(d.clone()),
            RemoteTarget::Tag(_) => None,
        });
        let r = match digest {
            Some(d) => to_reference(&self.target.with_target(RemoteTarget::Digest(d.clone()))),
            None => self.conn.reference.clone(),
        };
        let reference = r.digest().or(r.tag()).unwrap_or("latest").to_string();
        let url = format!("{}://{}/v2/{}/manifests/{reference}", self.conn.scheme, r.resolve_registry(), r.repository());
        let conn = &self.conn;
        let bytes = conn.call(&format!("pulling manifest {}", self.target), |c| {
            let (r, url) = (r.clone(), url.clone());
            async move {
                let mut body = Vec::new();
                let what = format!("manifest {url}");
                get_bounded(conn, &c, &r, &url, &ACCEPT.join(", "), MAX_MANIFEST, &what, &mut |chunk| {
                    body.extend_from_slice(chunk);
                    Ok(())
                })
                .await?;
                Ok(body)
            }
        })?;
        if let Some(d) = want {
            if Digest::of(&bytes) != d {
                anyhow::bail!("manifest from {} does not match digest {d}", self.target);
            }
        }
        let mt = image::sniff_media_type(&bytes)?;
        Ok((bytes, mt))
    }

    /// Streams the blob to an anonymous temp file, verifying size and digest as it goes; a
    /// registry that sends more than the descriptor's size is cut off at one byte past it.
    fn blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send>> {
        let file = tempfile::tempfile().context("creating temp file for blob")?;
        let r = self.conn.reference.clone();
        let url = format!("{}://{}/v2/{}/blobs/{}", self.conn.scheme, r.resolve_registry(), r.repository(), desc.digest);
        let conn = &self.conn;
        conn.call(&format!("pulling blob {}", desc.digest), |c| {
            let (r, url) = (r.clone(), url.clone());
            let f = file.try_clone();
            async move {
                let generic = |e: std::io::Error| OciDistributionError::GenericError(Some(e.to_string()));
                let mut f = f.map_err(generic)?;
                f.set_len(0).map_err(generic)?;
                f.seek(SeekFrom::Start(0)).map_err(generic)?;
                let mut w = HashingWriter::new(std::io::BufWriter::new(f));
                let what = format!("blob {}", desc.digest);
                get_bounded(conn, &c, &r, &url, "*/*", desc.size, &what, &mut |chunk| std::io::Write::write_all(&mut w, chunk))
                    .await?;
                let (digest, size, buf) = w.finish();
                buf.into_inner().map_err(|e| generic(e.into_error()))?;
                if size != desc.size {
                    return Err(OciDistributionError::GenericError(Some(format!(
                        "blob {} ends after {size} of the {} bytes its descriptor gives",
                        desc.digest, desc.size
                    ))));
                }
                if digest != desc.digest {
                    return Err(OciDistributionError::GenericError(Some(format!(
                        "blob content {digest} does not match its descriptor's digest {}",
                        desc.digest
                    ))));
                }
                Ok(())
            }
        })?;
        let mut file = file;
        file.seek(SeekFrom::Start(0))?;
        Ok(Box::new(file))
    }
}

/// Most of an error response's body that is read (for its message).
const MAX_ERROR_BODY: u64 = 64 << 10;

/// GETs `url` from the registry with the pull credentials `client` holds for it, handing the body
/// to `sink` chunk by chunk: more than `max` bytes ends the transfer with an error naming `what`
/// (one byte past `max` is enough to tell; a Content-Length past it is refused before reading).
/// Errors are oci-client's, so the retry and the 401 explanation treat them alike.
#[allow(clippy::too_many_arguments)]
async fn get_bounded(
    conn: &Conn,
    client: &Client,
    r: &Reference,
    url: &str,
    accept: &str,
    max: u64,
    what: &str,
    sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), OciDistributionError> {
    let too_large = || OciDistributionError::GenericError(Some(format!("{what} is larger than {} bytes (refused)", max)));
    let token = client.auth(r, &conn.auth, RegistryOperation::Pull).await?;
    let mut req = conn.http.get(url).header(http::header::ACCEPT, accept);
    req = match (token, &conn.auth) {
        (Some(t), _) => req.bearer_auth(t),
        (None, RegistryAuth::Basic(u, p)) => req.basic_auth(u, Some(p)),
        (None, _) => req,
    };
    let mut resp = req.send().await?;
    let status = resp.status();
    if !status.is_success() {
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            let room = MAX_ERROR_BODY as usize - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() as u64 >= MAX_ERROR_BODY {
                break;
            }
        }
        return Err(match status.as_u16() {
            401 => OciDistributionError::UnauthorizedError { url: url.to_string() },
            code @ 400..=499 => match serde_json::from_slice::<oci_client::errors::OciEnvelope>(&body) {
                Ok(envelope) => OciDistributionError::RegistryError { envelope, url: url.to_string() },
                Err(_) => OciDistributionError::ServerError { code, url: url.to_string(), message: String::from_utf8_lossy(&body).into_owned() },
            },
            code => OciDistributionError::ServerError { code, url: url.to_string(), message: String::from_utf8_lossy(&body).into_owned() },
        });
    }
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut got = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        got += chunk.len() as u64;
        if got > max {
            return Err(too_large());
        }
        sink(&chunk).map_err(|e| OciDistributionError::GenericError(Some(format!("storing {what}: {e}"))))?;
    }
    Ok(())
}

pub struct RegistryDestination {
    conn: Conn,
    authed: bool,
}

impl RegistryDestination {
    pub fn new(r: &DockerRef, opts: &RegistryOptions) -> Result<Self> {
        if matches!(r.target, RemoteTarget::Digest(_)) {
            anyhow::bail!("cannot push to a digest reference docker://{r}; give a tag");
        }
        Ok(RegistryDestination {
            conn: Conn::new(r, opts)?,
            authed: false,
        })
    }

    fn ensure_auth(&mut self) -> Result<()> {
        if !self.authed {
            self.conn.authenticate(RegistryOperation::Push)?;
            self.authed = true;
        }
        Ok(())
    }
}

impl ImageDestination for RegistryDestination {
    fn has_blob(&mut self, desc: &Descriptor) -> Result<bool> {
        self.ensure_auth()?;
        let r = self.conn.reference.clone();
        let d = desc.digest.to_string();
        self.conn.call("checking for blob", move |c| {
            let (r, d) = (r.clone(), d.clone());
            async move { c.blob_exists(&r, &d).await }
        })
    }

    /// Tries each same-registry candidate once (no retries: a failed mount
    /// costs only an upload). A registry that cannot mount answers 202 with
    /// a fresh upload session, which oci-client reports as an error; the
    /// abandoned session is the registry's to expire.
    fn mount_blob(&mut self, desc: &Descriptor, from: &[String]) -> Option<String> {
        let candidates =
            mount_candidates(&self.conn.registry, self.conn.reference.repository(), from);
        if candidates.is_empty() || self.ensure_auth().is_err() {
            return None;
        }
        let d = desc.digest.to_string();
        for repo in candidates {
            let src = Reference::with_digest(self.conn.registry.clone(), repo.clone(), d.clone());
            let conn = &self.conn;
            let ok = conn.rt.block_on(async {
                conn.client.mount_blob(&conn.reference, &src, &d).await.is_ok()
                    // A 201 from a sloppy registry is not trusted blindly.
                    && conn.client.blob_exists(&conn.reference, &d).await.unwrap_or(false)
            });
            if ok {
                return Some(format!("{}/{repo}", self.conn.registry));
            }
        }
        None
    }

    fn put_blob(&mut self, desc: &Descriptor, reader: &mut dyn Read) -> Result<()> {
        self.ensure_auth()?;
        let spooled = spool(desc, reader)?;
        self.conn.rt.block_on(push_spooled(&self.conn, spooled))
    }

    /// Spools every blob to disk, then uploads up to [`UPLOAD_CONCURRENCY`] at once.
    fn put_blobs(&mut self, blobs: Vec<(Descriptor, Box<dyn Read + Send>)>) -> Result<()> {
        use futures_util::StreamExt;
        self.ensure_auth()?;
        let mut spooled = Vec::new();
        for (desc, mut r) in blobs {
            spooled.push(spool(&desc, &mut r)?);
        }
        let conn = &self.conn;
        conn.rt.block_on(async {
            let mut results =
                futures_util::stream::iter(spooled.into_iter().map(|s| push_spooled(conn, s)))
                    .buffer_unordered(UPLOAD_CONCURRENCY);
            while let Some(r) = results.next().await {
                r?;
            }
            Ok(())
        })
    }

    fn put_manifest(&mut self, bytes: &[u8], media_type: &str) -> Result<()> {
        self.ensure_auth()?;
        let r = self.conn.reference.clone();
        let body = bytes::Bytes::copy_from_slice(bytes);
        let ct = http_header(media_type)?;
        self.conn.call("pushing manifest", move |c| {
            let (r, body, ct) = (r.clone(), body.clone(), ct.clone());
            async move { c.push_manifest_raw(&r, body, ct).await.map(|_| ()) }
        })
    }

    fn put_child_manifest(&mut self, bytes: &[u8], media_type: &str, digest: &Digest) -> Result<()> {
        self.ensure_auth()?;
        let r = Reference::with_digest(
            self.conn.registry.clone(),
            self.conn.reference.repository().to_string(),
            digest.to_string(),
        );
        let body = bytes::Bytes::copy_from_slice(bytes);
        let ct = http_header(media_type)?;
        self.conn.call(&format!("pushing manifest {digest}"), move |c| {
            let (r, body, ct) = (r.clone(), body.clone(), ct.clone());
            async move { c.push_manifest_raw(&r, body, ct).await.map(|_| ()) }
        })
    }

    fn commit(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

const UPLOAD_CONCURRENCY: usize = 4;

/// The repositories of `from` (`[docker://]REGISTRY/REPOSITORY[:TAG|@DIGEST]`)
/// on `registry`, other than `own`, deduplicated in order. Mounting is never
/// tried across registries: the blob would not be there, and the attempt
/// would tell one registry about another's contents.
fn mount_candidates(registry: &str, own: &str, from: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in from {
        let f = f.strip_prefix("docker://").unwrap_or(f);
        let f = f.split_once('@').map_or(f, |(n, _)| n);
        let Some((reg, repo)) = f.split_once('/') else {
            continue;
        };
        let repo = match repo.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => r,
            _ => repo,
        };
        let valid = !repo.is_empty()
            && repo.split('/').all(|c| {
                c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            });
        if reg == registry && valid && repo != own && !out.iter().any(|o| o == repo) {
            out.push(repo.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mount_candidates;

    #[test]
    fn mount_candidates_stay_on_the_registry() {
        let from: Vec<String> = [
            "docker://127.0.0.1:5000/team/a:1",
            "127.0.0.1:5000/team/b@sha256:00",
            "127.0.0.1:5001/team/c",
            "other.io/team/d",
            "127.0.0.1:5000/team/dest",
            "127.0.0.1:5000/team/a",
            "127.0.0.1:5000/Bad/x",
            "127.0.0.1:5000/bad/../x",
            "127.0.0.1:5000/",
            "no-slash",
            "127.0.0.1:5000/e",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            mount_candidates("127.0.0.1:5000", "team/dest", &from),
            ["team/a", "team/b", "e"]
        );
    }
}

/// A blob copied to an anonymous temp file, its digest verified.
struct Spooled {
    digest: Digest,
    size: u64,
    file: std::fs::File,
}

/// Spools so the upload can be retried and streamed with a known size.
fn spool(desc: &Descriptor, reader: &mut dyn Read) -> Result<Spooled> {
    let mut w = HashingWriter::new(tempfile::tempfile()?);
    std::io::copy(reader, &mut w)?;
    let (digest, size, file) = w.finish();
    if digest != desc.digest {
        anyhow::bail!(
            "blob content {digest} does not match expected {}",
            desc.digest
        );
    }
    Ok(Spooled { digest, size, file })
}

async fn push_spooled(conn: &Conn, s: Spooled) -> Result<()> {
    let r = conn.reference.clone();
    let ds = s.digest.to_string();
    let size = s.size;
    let file = s.file;
    conn.retry(&format!("pushing blob {}", s.digest), move |c| {
        let (r, ds) = (r.clone(), ds.clone());
        let f = file.try_clone();
        async move {
            let mut f = f.map_err(|e| OciDistributionError::GenericError(Some(e.to_string())))?;
            f.seek(SeekFrom::Start(0))
                .map_err(|e| OciDistributionError::GenericError(Some(e.to_string())))?;
            let stream =
                futures_util::stream::unfold(tokio::fs::File::from_std(f), |mut f| async move {
                    use tokio::io::AsyncReadExt;
                    let mut buf = vec![0u8; 256 * 1024];
                    match f.read(&mut buf).await {
                        Ok(0) => None,
                        Ok(n) => {
                            buf.truncate(n);
                            Some((Ok(bytes::Bytes::from(buf)), f))
                        }
                        Err(e) => Some((
                            Err(OciDistributionError::GenericError(Some(e.to_string()))),
                            f,
                        )),
                    }
                });
            c.push_blob_stream(&r, stream, &ds, Some(size))
                .await
                .map(|_| ())
        }
    })
    .await
}

fn http_header(v: &str) -> Result<http::HeaderValue> {
    http::HeaderValue::from_str(v).map_err(|e| anyhow!("bad media type {v:?}: {e}"))
}
