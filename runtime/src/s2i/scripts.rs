//! S2I script (hook) resolution: where `assemble`, `run`, `save-artifacts`, `usage` and
//! `assemble-runtime` come from.
//!
//! Order per script, first hit wins (upstream s2i's order):
//! 1. `--scripts-url`/`-s`;
//! 2. the source's `.s2i/bin/` (moved out of the staged source by [`crate::source::fetch`]);
//! 3. the builder's label `io.openshift.s2i.scripts-url`, else `io.s2i.scripts-url`, else its env
//!    `STI_SCRIPTS_URL` (see [`image_scripts_url`]);
//! 4. `image:///usr/libexec/s2i`.
//!
//! A script is found under its S2I name or with a `.wasm` suffix (the plain name is tried first).
//! URL schemes: `image://DIR` (inside the builder rootfs, checked through [`ImageFs`]),
//! `file://DIR` (host dir, relative allowed: `file://rel/dir` is `rel/dir`) and `http(s)://BASE`
//! (downloaded with a size bound and a timeout).
//!
//! Differences from upstream, on purpose:
//! - `image://` is not assumed to contain every script: existence is checked, so a builder without
//!   `save-artifacts` is known up front instead of failing at run time.
//! - Which scripts are required is the caller's choice ([`UPSTREAM_REQUIRED`] = `assemble` and
//!   `run`, as upstream; an extended build's builder needs no `run`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

pub use crate::contract::ScriptName;

/// An image's unpacked rootfs seen through cap-std, so that an image symlink cannot point a
/// script check outside it.
pub struct ImageDir(cap_std::fs::Dir);

impl ImageDir {
    pub fn open(rootfs: &Path) -> std::io::Result<Self> {
        Ok(ImageDir(cap_std::fs::Dir::open_ambient_dir(rootfs, cap_std::ambient_authority())?))
    }
}

impl ImageFs for ImageDir {
    fn exists(&self, guest_path: &str) -> bool {
        let rel = guest_path.trim_start_matches('/');
        !rel.is_empty() && self.0.metadata(rel).is_ok_and(|m| m.is_file())
    }
}

/// Upstream's required set.
pub const UPSTREAM_REQUIRED: [ScriptName; 2] = [ScriptName::Assemble, ScriptName::Run];

/// Default scripts dir inside a builder image.
pub const DEFAULT_IMAGE_SCRIPTS_URL: &str = "image:///usr/libexec/s2i";

/// Read-only view of the builder rootfs; the rootfs itself belongs to the image store.
pub trait ImageFs {
    /// Whether `guest_path` (absolute, inside the image) is an existing regular file.
    fn exists(&self, guest_path: &str) -> bool;
}

/// Where a resolved script lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptLocation {
    /// Absolute path inside the builder image.
    InImage(String),
    /// Fetched from a `file://` or `http(s)://` URL into the download dir (host path).
    Downloaded(PathBuf),
    /// From the source's `.s2i/bin` (host path, already moved out of the staged source).
    FromSource(PathBuf),
}

/// Which step of the resolution order gave a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptOrigin {
    ScriptsUrl,
    Source,
    ImageLabel,
    ImageDefault,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedScript {
    pub location: ScriptLocation,
    pub origin: ScriptOrigin,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedScripts {
    pub scripts: BTreeMap<ScriptName, ResolvedScript>,
}

impl ResolvedScripts {
    pub fn get(&self, name: ScriptName) -> Option<&ResolvedScript> {
        self.scripts.get(&name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptsError {
    #[error("starting the I/O runtime for script downloads: {0}")]
    Runtime(std::io::Error),
    #[error("no {name} script found (looked in: {})", looked.join(", "))]
    Missing { name: ScriptName, looked: Vec<String> },
    #[error("could not download any scripts from URL {url}")]
    NoneFromScriptsUrl { url: String },
    #[error("unsupported scripts URL {url:?}: expected image://, file://, http:// or https://")]
    UnsupportedUrl { url: String },
    #[error("{url}: {message}")]
    Fetch { url: String, message: String },
    #[error("the image's scripts URL {url:?} is refused: an image may only name scripts inside itself (image://DIR); give a host dir or a URL yourself with --image-scripts-url or --scripts-url")]
    NotInImage { url: String },
}

/// The scripts URL a builder declares: label `io.openshift.s2i.scripts-url`, else
/// `io.s2i.scripts-url`, else env `STI_SCRIPTS_URL`. Empty values count as absent.
pub fn image_scripts_url(labels: &HashMap<String, String>, env: &[(String, String)]) -> Option<String> {
    ["io.openshift.s2i.scripts-url", "io.s2i.scripts-url"]
        .iter()
        .find_map(|k| labels.get(*k).filter(|v| !v.trim().is_empty()).map(|v| v.trim().to_string()))
        .or_else(|| {
            env.iter()
                .find(|(k, v)| k == "STI_SCRIPTS_URL" && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_string())
        })
}

/// Who named the image's scripts dir. The user (`--image-scripts-url`) may name any scheme. The
/// image itself (its scripts-url label or `STI_SCRIPTS_URL`, which a hook can write through
/// `image_metadata.json`) may only name a dir inside the image: data from an image never makes
/// ws2i read a host file or fetch a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageUrl<'a> {
    Flag(&'a str),
    Label(&'a str),
}

impl<'a> ImageUrl<'a> {
    /// `--image-scripts-url` if given, else the image's own.
    pub fn choose(flag: Option<&'a str>, label: Option<&'a str>) -> Option<Self> {
        flag.map(ImageUrl::Flag).or(label.map(ImageUrl::Label))
    }
}

/// Inputs of [`resolve`].
pub struct ScriptSources<'a> {
    /// `--scripts-url`.
    pub scripts_url: Option<&'a str>,
    /// Scripts moved out of the source's `.s2i/bin`, by file name (see `FetchedSource::scripts`).
    pub source_scripts: &'a BTreeMap<String, PathBuf>,
    /// `--image-scripts-url`, else [`image_scripts_url`] of the image.
    pub image_url: Option<ImageUrl<'a>>,
    pub image: &'a dyn ImageFs,
    /// Host dir where `file://`/`http(s)://` scripts are written (created if missing).
    pub download_dir: &'a Path,
    pub limits: DownloadLimits,
}

#[derive(Debug, Clone, Copy)]
pub struct DownloadLimits {
    pub max_bytes: u64,
    pub timeout: Duration,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        Self { max_bytes: 256 << 20, timeout: Duration::from_secs(120) }
    }
}

enum Scheme<'u> {
    Image(&'u str),
    File(&'u str),
    Http(&'u str),
}

fn parse_url(url: &str) -> Result<Scheme<'_>, ScriptsError> {
    if let Some(p) = url.strip_prefix("image://") {
        Ok(Scheme::Image(p))
    } else if let Some(p) = url.strip_prefix("file://") {
        Ok(Scheme::File(p))
    } else if url.starts_with("http://") || url.starts_with("https://") {
        Ok(Scheme::Http(url))
    } else {
        Err(ScriptsError::UnsupportedUrl { url: url.to_string() })
    }
}

fn join_url(base: &str, name: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), name)
}

/// [`resolve`] for synchronous callers (the build, `usage`): downloads need an
/// async HTTP client, so this runs it on a short-lived current-thread runtime.
pub fn resolve_blocking(src: &ScriptSources<'_>, required: &[ScriptName]) -> Result<ResolvedScripts, ScriptsError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ScriptsError::Runtime)?
        .block_on(resolve(src, required))
}

/// Resolves every script name; errors if one in `required` is found nowhere.
pub async fn resolve(src: &ScriptSources<'_>, required: &[ScriptName]) -> Result<ResolvedScripts, ScriptsError> {
    let client = reqwest::Client::builder()
        .timeout(src.limits.timeout)
        .connect_timeout(src.limits.timeout.min(Duration::from_secs(30)))
        .build()
        .map_err(|e| ScriptsError::Fetch { url: "http client".into(), message: e.to_string() })?;
    let mut out = ResolvedScripts::default();
    let mut failures: Vec<String> = Vec::new();
    let (image_url, image_origin) = match src.image_url {
        None => (DEFAULT_IMAGE_SCRIPTS_URL, ScriptOrigin::ImageDefault),
        Some(ImageUrl::Flag(u)) => (u, ScriptOrigin::ImageLabel),
        Some(ImageUrl::Label(u)) if u.starts_with("image://") => (u, ScriptOrigin::ImageLabel),
        Some(ImageUrl::Label(u)) => return Err(ScriptsError::NotInImage { url: u.to_string() }),
    };
    let mut any_from_scripts_url = false;
    for name in ScriptName::ALL {
        let mut found = None;
        if let Some(url) = src.scripts_url {
            found = lookup_url(&client, src, url, name, &mut failures).await?.map(|l| (l, ScriptOrigin::ScriptsUrl));
            any_from_scripts_url |= found.is_some();
        }
        if found.is_none() {
            found = name
                .file_names()
                .iter()
                .find_map(|f| src.source_scripts.get(f))
                .map(|p| (ScriptLocation::FromSource(p.clone()), ScriptOrigin::Source));
        }
        if found.is_none() {
            found = lookup_url(&client, src, image_url, name, &mut failures).await?.map(|l| (l, image_origin));
        }
        // A label pointing elsewhere does not hide the conventional dir (upstream's default
        // also applies when the label names a dir without that script).
        if found.is_none() && src.image_url.is_some() && image_url != DEFAULT_IMAGE_SCRIPTS_URL {
            found = lookup_url(&client, src, DEFAULT_IMAGE_SCRIPTS_URL, name, &mut failures)
                .await?
                .map(|l| (l, ScriptOrigin::ImageDefault));
        }
        if let Some((location, origin)) = found {
            out.scripts.insert(name, ResolvedScript { location, origin });
        }
    }
    if let Some(url) = src.scripts_url {
        if !any_from_scripts_url {
            return Err(ScriptsError::NoneFromScriptsUrl { url: url.to_string() });
        }
    }
    for name in required {
        if !out.scripts.contains_key(name) {
            let mut looked: Vec<String> = Vec::new();
            if let Some(u) = src.scripts_url {
                looked.push(format!("--scripts-url {u}"));
            }
            looked.push("source .s2i/bin".into());
            looked.push(image_url.to_string());
            if image_url != DEFAULT_IMAGE_SCRIPTS_URL {
                looked.push(DEFAULT_IMAGE_SCRIPTS_URL.into());
            }
            looked.extend(failures.iter().cloned());
            return Err(ScriptsError::Missing { name: *name, looked });
        }
    }
    Ok(out)
}

/// `Ok(None)` when this URL has no such script (including download failures, which are
/// recorded in `failures` for the final error message, as upstream moves on to the next handler).
async fn lookup_url(
    client: &reqwest::Client,
    src: &ScriptSources<'_>,
    url: &str,
    name: ScriptName,
    failures: &mut Vec<String>,
) -> Result<Option<ScriptLocation>, ScriptsError> {
    match parse_url(url)? {
        Scheme::Image(dir) => {
            let dir = if dir.starts_with('/') { dir.to_string() } else { format!("/{dir}") };
            Ok(name.file_names().iter().map(|f| join_url(&dir, f)).find(|p| src.image.exists(p)).map(ScriptLocation::InImage))
        }
        Scheme::File(dir) => {
            for f in name.file_names() {
                let p = Path::new(dir).join(&f);
                // Only regular files (following links is fine: the host path is the user's choice).
                if p.is_file() {
                    let data = read_bounded(&p, src.limits.max_bytes)
                        .map_err(|message| ScriptsError::Fetch { url: format!("file://{}", p.display()), message })?;
                    return Ok(Some(ScriptLocation::Downloaded(save(src.download_dir, &f, &data, url)?)));
                }
            }
            Ok(None)
        }
        Scheme::Http(base) => {
            for f in name.file_names() {
                let u = join_url(base, &f);
                match download(client, &u, src.limits.max_bytes).await {
                    Ok(Some(data)) => return Ok(Some(ScriptLocation::Downloaded(save(src.download_dir, &f, &data, url)?))),
                    Ok(None) => {}
                    Err(message) => failures.push(format!("{u}: {message}")),
                }
            }
            Ok(None)
        }
    }
}

fn read_bounded(p: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(p).map_err(|e| e.to_string())?;
    let mut data = Vec::new();
    f.take(max + 1).read_to_end(&mut data).map_err(|e| e.to_string())?;
    if data.len() as u64 > max {
        return Err(format!("larger than the limit of {max} bytes"));
    }
    Ok(data)
}

/// `Ok(None)` on 404; other non-success statuses are errors.
async fn download(client: &reqwest::Client, url: &str, max: u64) -> Result<Option<Vec<u8>>, String> {
    let mut resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(format!("HTTP status {}", resp.status()));
    }
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(format!("larger than the limit of {max} bytes"));
    }
    let mut data = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if (data.len() + chunk.len()) as u64 > max {
            return Err(format!("larger than the limit of {max} bytes"));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(Some(data))
}

/// Writes to a temp name, then renames, so a half-written script never looks installed.
fn save(dir: &Path, file_name: &str, data: &[u8], url: &str) -> Result<PathBuf, ScriptsError> {
    let err = |e: std::io::Error| ScriptsError::Fetch { url: url.to_string(), message: format!("saving {file_name}: {e}") };
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    tmp.write_all(data).map_err(err)?;
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o755)).map_err(err)?;
    }
    let dest = dir.join(file_name);
    tmp.persist(&dest).map_err(|e| err(e.error))?;
    Ok(dest)
}

/// Stage "Resolving scripts": the build's scripts against the builder's rootfs
/// (`--scripts-url`, the source's `.s2i/bin`, `--image-scripts-url` or the builder's label).
/// An extended build's builder needs no `run`: the runtime image's is the result's command.
pub(crate) fn for_build(
    ctx: &crate::s2i::BuildCtx,
    builder: &crate::s2i::builder::Builder,
    base: &crate::s2i::builder::Base,
    source: &crate::source::FetchedSource,
) -> Result<ResolvedScripts, crate::s2i::BuildError> {
    use anyhow::Context as _;
    let required: &[ScriptName] =
        if ctx.req.runtime_image.is_some() { &[ScriptName::Assemble] } else { &UPSTREAM_REQUIRED };
    let label = image_scripts_url(&builder.labels, &builder.env);
    let image_url = ImageUrl::choose(ctx.req.image_scripts_url.as_deref(), label.as_deref());
    let fs = ImageDir::open(base.rootfs.path()).context("opening the builder rootfs")?;
    let src = ScriptSources {
        scripts_url: ctx.req.scripts_url.as_deref(),
        source_scripts: &source.scripts,
        image_url,
        image: &fs,
        download_dir: &ctx.staging.path().join("downloads"),
        limits: DownloadLimits::default(),
    };
    Ok(resolve_blocking(&src, required).context("resolving S2I scripts")?)
}

/// Installs every non-image script at `<destination>/scripts/<name>` (temp name, then rename)
/// and returns each script's guest path.
pub(crate) fn install(
    root: &cap_std::fs::Dir,
    destination: &str,
    resolved: &ResolvedScripts,
) -> Result<BTreeMap<ScriptName, String>, crate::s2i::BuildError> {
    let mut placed = BTreeMap::new();
    for (name, script) in &resolved.scripts {
        let host = match &script.location {
            ScriptLocation::InImage(p) => {
                placed.insert(*name, p.clone());
                continue;
            }
            ScriptLocation::Downloaded(p) | ScriptLocation::FromSource(p) => p,
        };
        let scripts_rel = crate::s2i::rootfs::join_rel(destination, "scripts");
        root.create_dir_all(&scripts_rel)
            .with_context(|| format!("creating {destination}/scripts"))?;
        let file = format!("{scripts_rel}/{}", name.as_str());
        let bytes =
            std::fs::read(host).with_context(|| format!("reading script {}", host.display()))?;
        let tmp = format!("{file}.ws2i-tmp");
        root.write(&tmp, &bytes)
            .with_context(|| format!("writing {destination}/scripts/{name}"))?;
        root.set_permissions(
            &tmp,
            cap_std::fs::Permissions::from_std(std::os::unix::fs::PermissionsExt::from_mode(0o755)),
        )
        .context("setting script permissions")?;
        root.rename(&tmp, root, &file)
            .context("installing a script")?;
        placed.insert(*name, format!("/{file}"));
    }
    Ok(placed)
}

pub(crate) fn is_in_image(resolved: &ResolvedScripts, guest: &str) -> bool {
    resolved
        .scripts
        .values()
        .any(|s| matches!(&s.location, ScriptLocation::InImage(p) if p == guest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    struct Fake(HashSet<String>);
    impl ImageFs for Fake {
        fn exists(&self, p: &str) -> bool {
            self.0.contains(p)
        }
    }
    fn fake(paths: &[&str]) -> Fake {
        Fake(paths.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn label_precedence() {
        let mut labels = HashMap::new();
        let env = vec![("STI_SCRIPTS_URL".to_string(), "image:///env".to_string())];
        assert_eq!(image_scripts_url(&labels, &env).as_deref(), Some("image:///env"));
        labels.insert("io.s2i.scripts-url".to_string(), "image:///old".to_string());
        assert_eq!(image_scripts_url(&labels, &env).as_deref(), Some("image:///old"));
        labels.insert("io.openshift.s2i.scripts-url".to_string(), "image:///new".to_string());
        assert_eq!(image_scripts_url(&labels, &env).as_deref(), Some("image:///new"));
        assert_eq!(image_scripts_url(&HashMap::new(), &[]), None);
    }

    #[test]
    fn names() {
        assert_eq!(ScriptName::from_file_name("save-artifacts.wasm"), Some(ScriptName::SaveArtifacts));
        assert_eq!(ScriptName::from_file_name("run"), Some(ScriptName::Run));
        assert_eq!(ScriptName::from_file_name("runx"), None);
    }

    #[tokio::test]
    async fn image_default_checks_existence_and_wasm_suffix() {
        let dl = tempfile::tempdir().unwrap();
        let img = fake(&["/usr/libexec/s2i/assemble.wasm", "/usr/libexec/s2i/run"]);
        let none = BTreeMap::new();
        let src = ScriptSources {
            scripts_url: None,
            source_scripts: &none,
            image_url: None,
            image: &img,
            download_dir: dl.path(),
            limits: DownloadLimits::default(),
        };
        let r = resolve(&src, &UPSTREAM_REQUIRED).await.unwrap();
        assert_eq!(
            r.get(ScriptName::Assemble).unwrap().location,
            ScriptLocation::InImage("/usr/libexec/s2i/assemble.wasm".into())
        );
        assert_eq!(r.get(ScriptName::Run).unwrap().origin, ScriptOrigin::ImageDefault);
        // Not assumed present, unlike upstream's image:// quirk.
        assert!(r.get(ScriptName::SaveArtifacts).is_none());
    }

    #[tokio::test]
    async fn missing_assemble_is_an_error() {
        let dl = tempfile::tempdir().unwrap();
        let img = fake(&["/usr/libexec/s2i/run"]);
        let none = BTreeMap::new();
        let src = ScriptSources {
            scripts_url: None,
            source_scripts: &none,
            image_url: Some(ImageUrl::Label("image:///opt/s2i")),
            image: &img,
            download_dir: dl.path(),
            limits: DownloadLimits::default(),
        };
        let e = resolve(&src, &UPSTREAM_REQUIRED).await.unwrap_err();
        assert!(matches!(e, ScriptsError::Missing { name: ScriptName::Assemble, .. }), "{e}");
        assert!(e.to_string().contains("image:///opt/s2i"), "{e}");
        // run alone is found via the default dir even though the label points elsewhere.
        let r = resolve(&src, &[ScriptName::Run]).await.unwrap();
        assert_eq!(r.get(ScriptName::Run).unwrap().origin, ScriptOrigin::ImageDefault);
    }

    #[tokio::test]
    async fn unsupported_scheme() {
        let dl = tempfile::tempdir().unwrap();
        let none = BTreeMap::new();
        let img = fake(&[]);
        let src = ScriptSources {
            scripts_url: Some("ftp://x"),
            source_scripts: &none,
            image_url: None,
            image: &img,
            download_dir: dl.path(),
            limits: DownloadLimits::default(),
        };
        assert!(matches!(resolve(&src, &[]).await.unwrap_err(), ScriptsError::UnsupportedUrl { .. }));
    }

    /// A loopback HTTP/1.1 server for the test's lifetime (the task dies with the test runtime).
    async fn serve(routes: Vec<(&'static str, Vec<u8>)>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = l.accept().await else { return };
                let routes = routes.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16384 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let req = String::from_utf8_lossy(&buf);
                    let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (status, body) = match routes.iter().find(|(p, _)| *p == path) {
                        Some((_, b)) => ("200 OK", b.clone()),
                        None => ("404 Not Found", b"nope".to_vec()),
                    };
                    let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                });
            }
        });
        format!("http://{addr}")
    }

    fn touch(p: &Path, content: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    #[tokio::test]
    async fn order_scripts_url_then_source_then_label_then_default() {
        let tmp = tempfile::tempdir().unwrap();
        let url_dir = tmp.path().join("url");
        touch(&url_dir.join("assemble"), "from-url");
        let src_dir = tmp.path().join("srcbin");
        touch(&src_dir.join("assemble"), "from-source");
        touch(&src_dir.join("run.wasm"), "from-source");
        let source_scripts: BTreeMap<String, PathBuf> =
            [("assemble", src_dir.join("assemble")), ("run.wasm", src_dir.join("run.wasm"))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let img = fake(&["/opt/s2i/save-artifacts", "/opt/s2i/run", "/usr/libexec/s2i/usage", "/usr/libexec/s2i/assemble"]);
        let dl = tmp.path().join("dl");
        let url = format!("file://{}", url_dir.display());
        let src = ScriptSources {
            scripts_url: Some(&url),
            source_scripts: &source_scripts,
            image_url: Some(ImageUrl::Label("image:///opt/s2i")),
            image: &img,
            download_dir: &dl,
            limits: DownloadLimits::default(),
        };
        let r = resolve(&src, &UPSTREAM_REQUIRED).await.unwrap();
        let get = |n| r.get(n).unwrap().clone();
        assert_eq!(get(ScriptName::Assemble).origin, ScriptOrigin::ScriptsUrl);
        assert_eq!(get(ScriptName::Assemble).location, ScriptLocation::Downloaded(dl.join("assemble")));
        assert_eq!(std::fs::read_to_string(dl.join("assemble")).unwrap(), "from-url");
        assert_eq!(get(ScriptName::Run).location, ScriptLocation::FromSource(src_dir.join("run.wasm")));
        assert_eq!(get(ScriptName::SaveArtifacts).location, ScriptLocation::InImage("/opt/s2i/save-artifacts".into()));
        assert_eq!(get(ScriptName::SaveArtifacts).origin, ScriptOrigin::ImageLabel);
        assert_eq!(get(ScriptName::Usage).origin, ScriptOrigin::ImageDefault);
        assert!(r.get(ScriptName::AssembleRuntime).is_none());

        // --scripts-url that gives nothing is an error even if others would provide everything.
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let url = format!("file://{}", empty.display());
        let src = ScriptSources { scripts_url: Some(&url), ..src };
        let e = resolve(&src, &UPSTREAM_REQUIRED).await.unwrap_err();
        assert_eq!(e.to_string(), format!("could not download any scripts from URL {url}"));
    }

    #[tokio::test]
    async fn http_download_with_wasm_suffix_and_bounds() {
        let base = serve(vec![
            ("/s2i/assemble.wasm", b"\0asm-assemble".to_vec()),
            ("/s2i/run", b"\0asm-run".to_vec()),
            ("/big/assemble", vec![7u8; 4096]),
        ])
        .await;
        let tmp = tempfile::tempdir().unwrap();
        let none = BTreeMap::new();
        let img = fake(&[]);
        let url = format!("{base}/s2i/");
        let src = ScriptSources {
            scripts_url: Some(&url),
            source_scripts: &none,
            image_url: None,
            image: &img,
            download_dir: tmp.path(),
            limits: DownloadLimits { max_bytes: 1024, timeout: Duration::from_secs(10) },
        };
        let r = resolve(&src, &UPSTREAM_REQUIRED).await.unwrap();
        let a = tmp.path().join("assemble.wasm");
        assert_eq!(r.get(ScriptName::Assemble).unwrap().location, ScriptLocation::Downloaded(a.clone()));
        assert_eq!(std::fs::read(&a).unwrap(), b"\0asm-assemble");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&a).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(std::fs::read(tmp.path().join("run")).unwrap(), b"\0asm-run");
        assert!(r.get(ScriptName::SaveArtifacts).is_none());

        // Over the size bound: not installed, and the reason is in the error.
        let label = format!("{base}/big");
        let src = ScriptSources { scripts_url: None, image_url: Some(ImageUrl::Flag(&label)), ..src };
        let e = resolve(&src, &[ScriptName::Assemble]).await.unwrap_err();
        assert!(e.to_string().contains("larger than the limit"), "{e}");
        // Unreachable server: an error naming the URL, no hang.
        let src = ScriptSources { image_url: Some(ImageUrl::Flag("http://127.0.0.1:1/x")), ..src };
        let e = resolve(&src, &[ScriptName::Assemble]).await.unwrap_err();
        assert!(e.to_string().contains("http://127.0.0.1:1/x/assemble"), "{e}");
        // The same URLs named by the image itself are refused before anything is read or fetched.
        for url in [label.as_str(), "http://127.0.0.1:1/x", "file:///etc", "file://rel/dir"] {
            let src = ScriptSources { image_url: Some(ImageUrl::Label(url)), ..src };
            let e = resolve(&src, &[ScriptName::Assemble]).await.unwrap_err();
            assert!(matches!(&e, ScriptsError::NotInImage { url: u } if u == url), "{e}");
            assert!(e.to_string().contains("--image-scripts-url"), "{e}");
        }
    }
}
