//! Crash safety (issue 13): ws2i killed with SIGKILL in the middle of a build, a push or a pull
//! leaves a consistent store, the next command removes what it left behind, and a disk that
//! fills up gives a clear error and loses nothing already stored.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ws2i::image::store::Store;
use ws2i::Digest;
use ws2i_tests::builders::{commit_tree, make_builder_with};
use ws2i_tests::registry::fixtures::make_image;
use ws2i_tests::registry::Registry;
use ws2i_tests::{guests, run_fail, run_ok, skopeo, stderr};

/// How long a dead writer's scratch is protected by its age (ws2i::scratch::GRACE), plus slack.
const PAST_GRACE: Duration = Duration::from_millis(2600);

/// One test's ws2i: its own store, cache and temp dir, so leftovers are this test's alone.
struct Home {
    _t: tempfile::TempDir,
    home: PathBuf,
    cache: PathBuf,
    tmp: PathBuf,
}

impl Home {
    fn new() -> Self {
        Self::under(tempfile::tempdir().unwrap())
    }

    fn under(t: tempfile::TempDir) -> Self {
        let (home, cache, tmp) = (t.path().join("home"), t.path().join("cache"), t.path().join("tmp"));
        for d in [&home, &cache, &tmp] {
            fs::create_dir_all(d).unwrap();
        }
        Home { _t: t, home, cache, tmp }
    }

    fn ws2i(&self, args: &[&str]) -> Command {
        let mut c = ws2i_tests::ws2i();
        c.env("WS2I_HOME", &self.home).env("WS2I_CACHE", &self.cache).env("TMPDIR", &self.tmp).args(args);
        c
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.ws2i(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
    }

    /// Temp names ws2i writes through, wherever they are.
    fn leftovers(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut scan = |dir: PathBuf, prefix: &str| {
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(prefix) {
                    out.push(e.path());
                }
            }
        };
        scan(self.home.clone(), ".tmp-");
        scan(self.home.join("blobs/sha256"), ".tmp-");
        scan(self.cache.join("layers/builds"), "build-");
        scan(self.cache.join("layers/rootfs"), ".tmp-");
        scan(self.tmp.clone(), "ws2i-source-");
        out
    }

    /// Every tag of the store resolves, and every blob it reaches is whole: its content
    /// matches its digest and its descriptor's size.
    fn assert_consistent(&self) -> Vec<String> {
        let store = Store::open(&self.home).unwrap();
        let index = store.layout().read_index().unwrap();
        let mut names = Vec::new();
        let mut todo: Vec<_> = index.manifests.clone();
        while let Some(d) = todo.pop() {
            if let Some(n) = d.annotations.get("org.opencontainers.image.ref.name") {
                names.push(n.clone());
            }
            let bytes = whole_blob(&self.home, &d.digest, d.size);
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if let Some(children) = v["manifests"].as_array() {
                todo.extend(children.iter().map(|c| serde_json::from_value(c.clone()).unwrap()));
                continue;
            }
            for b in std::iter::once(&v["config"]).chain(v["layers"].as_array().unwrap()) {
                let digest: Digest = b["digest"].as_str().unwrap().parse().unwrap();
                whole_blob(&self.home, &digest, b["size"].as_u64().unwrap());
            }
        }
        names
    }
}

fn whole_blob(home: &Path, d: &Digest, size: u64) -> Vec<u8> {
    let path = home.join("blobs/sha256").join(d.hex());
    let mut bytes = Vec::new();
    fs::File::open(&path).unwrap_or_else(|e| panic!("blob {d} missing: {e}")).read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes.len() as u64, size, "blob {d} has the wrong size");
    assert_eq!(Digest::of(&bytes), *d, "blob {d} is corrupt");
    bytes
}

/// Incompressible bytes (xorshift), so a layer of them is as big packed as unpacked.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A one-layer image `name` in the store at `home` holding `mib` MiB of noise.
fn big_image(home: &Path, name: &str, mib: usize) {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("noise"), noise(mib << 20, mib as u64)).unwrap();
    commit_tree(home, name, t.path(), "noise", &mut |_| {});
}

fn kill9(child: &mut Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
}

/// Polls `cond` every 50 ms for at most `limit`, while `child` runs.
fn wait_for(child: &mut Child, limit: Duration, what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        if child.try_wait().unwrap().is_some() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("ws2i ended before {what}:\n{err}");
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_build_killed_mid_assemble_leaves_a_consistent_store_and_the_next_command_cleans_up() {
    let h = Home::new();
    make_image(&Store::open(&h.home).unwrap(), "kept:1", &[("hello", b"hi")]).unwrap();
    make_builder_with(&h.home, "sleepy:latest", &["run"], &|root| {
        fs::copy(guests::wasm("sleeper"), root.join("usr/libexec/s2i/assemble")).unwrap();
    });
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("app.txt"), "app").unwrap();
    let mut child = h.spawn(&["build", src.path().to_str().unwrap(), "sleepy:latest", "app:1"]);
    let builds = h.cache.join("layers/builds");
    wait_for(&mut child, Duration::from_secs(120), "the build root", || {
        fs::read_dir(&builds).into_iter().flatten().flatten().any(|e| e.file_name().to_string_lossy().starts_with("build-"))
    });
    std::thread::sleep(Duration::from_millis(300));
    kill9(&mut child);
    let left = h.leftovers();
    assert!(left.iter().any(|p| p.starts_with(&builds)), "the killed build left its root: {left:?}");
    assert!(left.iter().any(|p| p.starts_with(&h.tmp)), "and its staging dir: {left:?}");

    std::thread::sleep(PAST_GRACE);
    let out = run_ok(&mut h.ws2i(&["images"]));
    assert!(ws2i_tests::stdout(&out).contains("kept"), "{}", ws2i_tests::describe(&out));
    assert_eq!(h.leftovers(), Vec::<PathBuf>::new(), "the next command removes what the kill left");
    let mut names = h.assert_consistent();
    names.sort();
    assert_eq!(names, ["kept:1", "sleepy:latest"], "only the earlier images, whole; no app:1");
}

#[test]
fn a_live_build_is_never_swept_by_a_concurrent_command() {
    let h = Home::new();
    make_builder_with(&h.home, "sleepy:latest", &["run"], &|root| {
        fs::copy(guests::wasm("sleeper"), root.join("usr/libexec/s2i/assemble")).unwrap();
    });
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("app.txt"), "app").unwrap();
    let mut child = h.spawn(&["build", src.path().to_str().unwrap(), "sleepy:latest", "app:1"]);
    wait_for(&mut child, Duration::from_secs(120), "the build root", || h.leftovers().len() >= 2);
    std::thread::sleep(PAST_GRACE);
    run_ok(&mut h.ws2i(&["images"]));
    run_ok(&mut h.ws2i(&["prune"]));
    let left = h.leftovers();
    assert!(child.try_wait().unwrap().is_none(), "the build is still running");
    assert_eq!(left.len(), 2, "its build root and staging dir are held, so they stay: {left:?}");
    kill9(&mut child);
}

#[test]
fn kills_at_any_moment_of_a_push_or_a_pull_leave_consistent_stores_and_registries() {
    let reg = Registry::start().unwrap();
    let a = Home::new();
    big_image(&a.home, "big:1", 48);
    let delays = [40u64, 150, 400, 1000];
    for (i, ms) in delays.iter().enumerate() {
        let dest = format!("docker://{}/crash/big:{i}", reg.host());
        let mut child = a.spawn(&["push", "big:1", &dest]);
        std::thread::sleep(Duration::from_millis(*ms));
        kill9(&mut child);
        // The registry has the whole image under the tag, or no tag: blobs go before the manifest.
        let inspected = Command::new("skopeo").args(["inspect", "--tls-verify=false", "--raw", &dest]).output().unwrap();
        if inspected.status.success() {
            let copy = tempfile::tempdir().unwrap();
            skopeo(&["copy", "--src-tls-verify=false", &dest, &format!("oci:{}:x", copy.path().display())]);
        }
        assert_eq!(a.assert_consistent(), vec!["big:1".to_string()]);
    }
    let full = format!("docker://{}/crash/big:full", reg.host());
    run_ok(&mut a.ws2i(&["push", "big:1", &full]));

    let b = Home::new();
    make_image(&Store::open(&b.home).unwrap(), "kept:1", &[("hello", b"hi")]).unwrap();
    for ms in delays {
        let mut child = b.spawn(&["pull", &full]);
        std::thread::sleep(Duration::from_millis(ms));
        kill9(&mut child);
        let names = b.assert_consistent();
        assert!(names.contains(&"kept:1".to_string()), "{names:?}");
    }
    std::thread::sleep(PAST_GRACE);
    run_ok(&mut b.ws2i(&["images"]));
    assert_eq!(b.leftovers(), Vec::<PathBuf>::new(), "the next command removes half-written blobs");
    run_ok(&mut b.ws2i(&["pull", &full]));
    assert_eq!(b.assert_consistent().len(), 2);
}

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None (and says so) where this process may not mount: the test needs root.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        if !out.status.success() {
            // SAFETY: getuid(2) has no preconditions.
            assert_ne!(unsafe { libc::getuid() }, 0, "root could not mount a tmpfs: {}", ws2i_tests::describe(&out));
            eprintln!("SKIPPED: mounting a tmpfs needs root: {}", stderr(&out));
            return None;
        }
        Some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[test]
fn a_disk_that_fills_up_gives_a_clear_error_and_loses_nothing_stored() {
    let Some(disk) = SmallDisk::mount("40m") else { return };
    let reg = Registry::start().unwrap();
    let elsewhere = Home::new();
    big_image(&elsewhere.home, "big:1", 48);
    let big = format!("docker://{}/disk/big:1", reg.host());
    run_ok(&mut elsewhere.ws2i(&["push", "big:1", &big]));

    let h = Home::under(tempfile::tempdir_in(disk.dir.path()).unwrap());
    make_image(&Store::open(&h.home).unwrap(), "kept:1", &[("hello", b"hi")]).unwrap();
    // A pull that does not fit.
    let out = run_fail(&mut h.ws2i(&["pull", &big]));
    assert!(stderr(&out).contains("No space left on device"), "{}", ws2i_tests::describe(&out));
    assert_eq!(h.assert_consistent(), vec!["kept:1".to_string()]);
    assert_eq!(h.leftovers(), Vec::<PathBuf>::new(), "a failed write removes its temp file");

    // A build whose hook fills the disk (the disk budget is larger than the disk).
    make_builder_with(&h.home, "filler:latest", &["run"], &|root| {
        fs::copy(guests::wasm("disk_fill"), root.join("usr/libexec/s2i/assemble")).unwrap();
    });
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("app.txt"), "app").unwrap();
    let out = run_fail(&mut h.ws2i(&["build", "--disk", "1GiB", src.path().to_str().unwrap(), "filler:latest", "app:1"]));
    assert!(stderr(&out).contains("No space left on device"), "{}", ws2i_tests::describe(&out));
    let mut names = h.assert_consistent();
    names.sort();
    assert_eq!(names, ["filler:latest", "kept:1"], "nothing new, nothing lost");
    assert_eq!(h.leftovers(), Vec::<PathBuf>::new());
}
