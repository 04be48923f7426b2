//! Hostile OCI layouts and registries (issue 13): every read is bounded by its descriptor's size,
//! manifests and indexes by a cap, and only regular files are read from a layout. Nothing here
//! may make ws2i run out of memory or disk, abort or hang.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ws2i::image::registry::RegistryOptions;
use ws2i::image::store::Store;
use ws2i::image::transport::{copy, inspect, CopyOptions};
use ws2i::Digest;
use ws2i_tests::registry::fixtures::make_image;

fn opts(store_root: &Path) -> CopyOptions {
    CopyOptions {
        store_root: Some(store_root.to_path_buf()),
        registry: RegistryOptions { attempts: Some(1), ..RegistryOptions::default() },
        ..CopyOptions::default()
    }
}

fn err_of<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    format!("{:#}", r.expect_err("a hostile input must be refused"))
}

/// A store with one image, copied out to the OCI dir `t/dir`: its path, manifest, config and
/// layer digests.
struct Layout {
    t: tempfile::TempDir,
    manifest: Digest,
    config: Digest,
    layer: Digest,
}

impl Layout {
    fn new() -> Layout {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("store")).unwrap();
        make_image(&store, "app:v1", &[("hello", b"hi")]).unwrap();
        let dir = format!("oci:{}:app", t.path().join("dir").display());
        let manifest = copy(&"app:v1".parse().unwrap(), &dir.parse().unwrap(), &opts(store.root())).unwrap();
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(t.path().join("dir/blobs/sha256").join(manifest.hex())).unwrap()).unwrap();
        let digest = |v: &serde_json::Value| v["digest"].as_str().unwrap().parse::<Digest>().unwrap();
        let (config, layer) = (digest(&m["config"]), digest(&m["layers"][0]));
        Layout { t, manifest, config, layer }
    }
    fn dir(&self) -> PathBuf {
        self.t.path().join("dir")
    }
    fn blob(&self, d: &Digest) -> PathBuf {
        self.dir().join("blobs/sha256").join(d.hex())
    }
    fn reference(&self) -> ws2i::image::reference::ImageRef {
        format!("oci:{}:app", self.dir().display()).parse().unwrap()
    }
    fn store(&self) -> PathBuf {
        self.t.path().join("store")
    }
    /// Replaces `path` with a symlink to /dev/zero.
    fn zero_link(&self, path: &Path) {
        std::fs::remove_file(path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", path).unwrap();
    }
    /// Replaces `path` with a FIFO nobody writes.
    fn fifo(&self, path: &Path) {
        std::fs::remove_file(path).unwrap();
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }
    /// Replaces `path` with a sparse file of `size` bytes.
    fn huge(&self, path: &Path, size: u64) {
        std::fs::remove_file(path).unwrap();
        std::fs::File::create(path).unwrap().set_len(size).unwrap();
    }
    /// A store that has none of the image's blobs yet, for copies out of the layout.
    fn fresh(&self) -> PathBuf {
        self.t.path().join("fresh")
    }
    /// Copies the layout into the fresh store.
    fn pull(&self) -> anyhow::Result<Digest> {
        copy(&self.reference(), &"app:pulled".parse().unwrap(), &opts(&self.fresh()))
    }
    /// Neither the layer nor a temp file reached the fresh store.
    fn assert_layer_not_stored(&self) {
        let Ok(rd) = std::fs::read_dir(self.fresh().join("blobs/sha256")) else { return };
        let names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        assert!(!names.iter().any(|n| *n == self.layer.hex() || n.starts_with(".tmp-")), "{names:?}");
    }
}

/// Plants something in place of `which` (`index.json`, `oci-layout`, or the manifest, config or
/// layer blob) of a fresh layout, then inspects the image (copies it, for the layer): the error,
/// once it is checked that the layer did not reach the store.
fn read_with_planted(which: &str, plant: impl Fn(&Layout, &Path)) -> String {
    let l = Layout::new();
    let path = match which {
        "index.json" | "oci-layout" => l.dir().join(which),
        "manifest" => l.blob(&l.manifest),
        "config" => l.blob(&l.config),
        _ => l.blob(&l.layer),
    };
    plant(&l, &path);
    let e = if which == "layer" { err_of(l.pull()) } else { err_of(inspect(&l.reference(), &opts(&l.store()))) };
    l.assert_layer_not_stored();
    e
}

#[test]
fn layout_files_that_are_links_to_dev_zero_are_refused() {
    for which in ["index.json", "manifest", "config", "layer", "oci-layout"] {
        let e = read_with_planted(which, Layout::zero_link);
        assert!(e.contains("is a symlink; only regular files are read"), "{which}: {e}");
    }
}

#[test]
fn layout_files_that_are_fifos_are_refused_without_blocking() {
    for which in ["index.json", "manifest", "config", "layer"] {
        let e = read_with_planted(which, Layout::fifo);
        assert!(e.contains("is a FIFO; only regular files are read"), "{which}: {e}");
    }
}

#[test]
fn huge_layout_files_are_refused_at_their_cap_or_descriptor_size() {
    // A 512 MiB manifest: refused at the 4 MiB cap, not read.
    let l = Layout::new();
    l.huge(&l.blob(&l.manifest), 512 << 20);
    let e = err_of(inspect(&l.reference(), &opts(&l.store())));
    assert!(e.contains("is larger than 4MiB (refused)"), "{e}");
    // A 1 GiB index.json.
    let l = Layout::new();
    l.huge(&l.dir().join("index.json"), 1 << 30);
    let e = err_of(inspect(&l.reference(), &opts(&l.store())));
    assert!(e.contains("index.json is larger than 64MiB (refused)"), "{e}");
    // A layer blob far larger than its descriptor: the copy stops one byte past the size, and
    // the store keeps nothing of it (no blob, no temp file).
    let l = Layout::new();
    l.huge(&l.blob(&l.layer), 4 << 30);
    let e = err_of(l.pull());
    assert!(e.contains("is larger than the") && e.contains("bytes its descriptor gives"), "{e}");
    l.assert_layer_not_stored();
    // One that is shorter than its descriptor says.
    let l = Layout::new();
    std::fs::OpenOptions::new().write(true).open(l.blob(&l.layer)).unwrap().set_len(3).unwrap();
    let e = err_of(l.pull());
    assert!(e.contains("ends after 3 of the"), "{e}");
    l.assert_layer_not_stored();
}

// ---- a hostile registry ----

/// What the hostile registry answers for one path.
#[derive(Clone)]
enum Reply {
    /// 200 with this body.
    Body(&'static str, Vec<u8>),
    /// 200 and a body that never ends (until the client hangs up, or 1 GiB).
    Endless,
    /// 200 claiming a Content-Length of this many bytes, then sending zeros.
    Length(u64),
    /// This status with a body that never ends.
    ErrorEndless(u16),
}

/// A registry on 127.0.0.1 that serves `routes` one connection at a time; it stops when dropped.
struct Hostile {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

const ENDLESS_CAP: u64 = 1 << 30;

impl Hostile {
    fn start(routes: Vec<(String, Reply)>) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut most_sent = 0u64;
            // Bounded: a test makes a few dozen requests at most.
            for conn in listener.incoming().take(200) {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                most_sent = most_sent.max(serve(conn, &routes));
            }
            most_sent
        });
        Hostile { port, stop, thread: Some(thread) }
    }
    fn image(&self, repo: &str) -> ws2i::image::reference::ImageRef {
        format!("docker://127.0.0.1:{}/{repo}", self.port).parse().unwrap()
    }
    /// Stops the server; the most bytes it sent on one connection.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = t.join();
        }
    }
}

/// Answers one request; the bytes of body sent.
fn serve(conn: TcpStream, routes: &[(String, Reply)]) -> u64 {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if r.by_ref().take(8192).read_line(&mut first).is_err() {
        return 0;
    }
    // The rest of the head, bounded.
    for _ in 0..100 {
        let mut l = String::new();
        if r.by_ref().take(8192).read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
            break;
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut w = conn;
    let reply = routes.iter().find(|(p, _)| *p == path).map(|(_, r)| r.clone());
    let head = |status: u16, ct: &str, len: Option<u64>| {
        let len = len.map(|n| format!("Content-Length: {n}\r\n")).unwrap_or_default();
        format!("HTTP/1.1 {status} X\r\nContent-Type: {ct}\r\n{len}Connection: close\r\n\r\n")
    };
    let endless = |w: &mut TcpStream, limit: u64| -> u64 {
        let chunk = vec![b' '; 64 << 10];
        let mut sent = 0;
        while sent < limit && w.write_all(&chunk).is_ok() {
            sent += chunk.len() as u64;
        }
        sent
    };
    match reply {
        None if path == "/v2/" => {
            let _ = w.write_all(head(200, "application/json", Some(2)).as_bytes());
            let _ = w.write_all(b"{}");
            2
        }
        None => {
            let _ = w.write_all(head(404, "text/plain", Some(0)).as_bytes());
            0
        }
        Some(Reply::Body(ct, b)) => {
            let _ = w.write_all(head(200, ct, Some(b.len() as u64)).as_bytes());
            let _ = w.write_all(&b);
            b.len() as u64
        }
        Some(Reply::Endless) => {
            let _ = w.write_all(head(200, "application/vnd.oci.image.manifest.v1+json", None).as_bytes());
            endless(&mut w, ENDLESS_CAP)
        }
        Some(Reply::Length(n)) => {
            let _ = w.write_all(head(200, "application/vnd.oci.image.manifest.v1+json", Some(n)).as_bytes());
            endless(&mut w, n)
        }
        Some(Reply::ErrorEndless(code)) => {
            let _ = w.write_all(head(code, "application/json", None).as_bytes());
            endless(&mut w, ENDLESS_CAP)
        }
    }
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A manifest naming a config and one layer of the given digests and sizes.
fn manifest(config: (&Digest, u64), layer: (&Digest, u64)) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0.to_string(), "size": config.1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.0.to_string(), "size": layer.1}],
    }))
    .unwrap()
}

#[test]
fn endless_and_huge_manifests_from_a_registry_are_cut_off() {
    let reg = Hostile::start(vec![
        ("/v2/evil/endless/manifests/latest".into(), Reply::Endless),
        ("/v2/evil/huge/manifests/latest".into(), Reply::Length(512 << 20)),
        ("/v2/evil/errors/manifests/latest".into(), Reply::ErrorEndless(500)),
        ("/v2/evil/denied/manifests/latest".into(), Reply::ErrorEndless(404)),
    ]);
    let t = tempfile::tempdir().unwrap();
    let e = err_of(inspect(&reg.image("evil/endless"), &opts(t.path())));
    assert!(e.contains("is larger than 4194304 bytes (refused)"), "{e}");
    let e = err_of(inspect(&reg.image("evil/huge"), &opts(t.path())));
    assert!(e.contains("is larger than 4194304 bytes (refused)"), "{e}");
    // An error response's body is read for its message only up to 64 KiB.
    let e = err_of(inspect(&reg.image("evil/errors"), &opts(t.path())));
    assert!(e.contains("500"), "{}", &e[..e.len().min(300)]);
    assert!(e.len() < 70 << 10, "{} bytes of error", e.len());
    let e = err_of(inspect(&reg.image("evil/denied"), &opts(t.path())));
    assert!(e.len() < 70 << 10, "{} bytes of error", e.len());
    // The client hung up early: the server never got near its 1 GiB.
    let most = reg.finish();
    assert!(most < 256 << 20, "the registry sent {most} bytes on one connection");
}

#[test]
fn blobs_from_a_registry_are_bounded_by_their_descriptor() {
    let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}".to_vec();
    let cd = Digest::of(&config);
    let ld = Digest::of(b"a layer that never ends");
    let fake_cd = Digest::of(b"an endless config");
    let reg = Hostile::start(vec![
        // inspect: the config never ends.
        ("/v2/evil/config/manifests/latest".into(), Reply::Body(MANIFEST, manifest((&fake_cd, 100), (&ld, 1000)))),
        (format!("/v2/evil/config/blobs/{fake_cd}"), Reply::Endless),
        // copy: the layer never ends.
        ("/v2/evil/layer/manifests/latest".into(), Reply::Body(MANIFEST, manifest((&cd, config.len() as u64), (&ld, 1000)))),
        (format!("/v2/evil/layer/blobs/{cd}"), Reply::Body("application/octet-stream", config.clone())),
        (format!("/v2/evil/layer/blobs/{ld}"), Reply::Endless),
    ]);
    let t = tempfile::tempdir().unwrap();
    let e = err_of(inspect(&reg.image("evil/config"), &opts(t.path())));
    assert!(e.contains(&format!("blob {fake_cd} is larger than 100 bytes (refused)")), "{e}");
    let dest = t.path().join("out");
    let e = err_of(copy(&reg.image("evil/layer"), &format!("oci:{}:x", dest.display()).parse().unwrap(), &opts(t.path())));
    assert!(e.contains(&format!("blob {ld} is larger than 1000 bytes (refused)")), "{e}");
    // Nothing of the layer was stored.
    assert!(!dest.join("blobs/sha256").join(ld.hex()).exists());
    let most = reg.finish();
    assert!(most < 256 << 20, "the registry sent {most} bytes on one connection");
}
