//! Layers through the library API: hostile input, determinism, diff round trip.

use std::cell::RefCell;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tar::{EntryType, Header};
use ws2i::layer::{
    diff, pack, pack_dir, unpack, unpack_with, Compression, LayerError, LayerSource, PackOptions, RootfsCache,
    UnpackLimits, UnpackOptions,
};
use ws2i::Digest;

// ---------- helpers ----------

/// A tar entry with a raw name (the tar crate's own setters refuse hostile names).
fn raw(b: &mut tar::Builder<Vec<u8>>, name: &str, t: EntryType, link: Option<&str>, mode: u32, data: &[u8]) {
    let mut h = Header::new_ustar();
    h.set_entry_type(t);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_mtime(1_000_000);
    let u = h.as_ustar_mut().unwrap();
    u.name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(l) = link {
        u.linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tar_of(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    f(&mut b);
    b.into_inner().unwrap()
}

fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    raw(b, name, EntryType::Regular, None, 0o644, data);
}

/// A temp area with `target/` to unpack into and `sentinel/` beside it that must stay untouched.
struct Area {
    tmp: tempfile::TempDir,
}

impl Area {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("target")).unwrap();
        fs::create_dir(tmp.path().join("sentinel")).unwrap();
        fs::write(tmp.path().join("sentinel/keep"), b"keep").unwrap();
        Area { tmp }
    }
    fn target(&self) -> PathBuf {
        self.tmp.path().join("target")
    }
    fn unpack(&self, tar: &[u8], limits: &UnpackLimits) -> Result<ws2i::layer::UnpackStats, LayerError> {
        unpack(tar, Compression::None, &self.target(), limits, &|_| {})
    }
    /// Nothing was written outside target/.
    fn assert_outside_untouched(&self) {
        let mut top: Vec<_> = fs::read_dir(self.tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        top.sort();
        assert_eq!(top, ["sentinel", "target"]);
        let s: Vec<_> = fs::read_dir(self.tmp.path().join("sentinel")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(s, ["keep"]);
        assert_eq!(fs::read(self.tmp.path().join("sentinel/keep")).unwrap(), b"keep");
    }
}

fn expect_unsafe(r: Result<ws2i::layer::UnpackStats, LayerError>, rule_part: &str) {
    match r {
        Err(e @ LayerError::Unsafe { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(rule_part), "{msg:?} should mention {rule_part:?}");
        }
        other => panic!("expected an Unsafe error mentioning {rule_part:?}, got {other:?}"),
    }
}

// ---------- hostile layers ----------

#[test]
fn dotdot_and_absolute_names_rejected() {
    let a = Area::new();
    expect_unsafe(a.unpack(&tar_of(|b| file(b, "../x", b"pwned")), &Default::default()), "`..`");
    expect_unsafe(a.unpack(&tar_of(|b| file(b, "ok/../../sentinel/x", b"pwned")), &Default::default()), "`..`");
    let victim = format!("/tmp/ws2i-victim-{}", std::process::id());
    expect_unsafe(a.unpack(&tar_of(|b| file(b, &victim, b"pwned")), &Default::default()), "absolute");
    assert!(!Path::new(&victim).exists());
    a.assert_outside_untouched();
}

#[test]
fn symlink_then_write_through_rejected() {
    let a = Area::new();
    let t = tar_of(|b| {
        raw(b, "a", EntryType::Symlink, Some("/etc"), 0o777, b"");
        file(b, "a/passwd", b"root::0:0::/:/bin/sh\n");
    });
    expect_unsafe(a.unpack(&t, &Default::default()), "symlink");
    // Relative escape, split over two layers.
    let a = Area::new();
    a.unpack(&tar_of(|b| raw(b, "x", EntryType::Symlink, Some("../sentinel"), 0o777, b"")), &Default::default())
        .unwrap();
    expect_unsafe(a.unpack(&tar_of(|b| file(b, "x/file", b"pwned")), &Default::default()), "symlink");
    a.assert_outside_untouched();
}

#[test]
fn replacing_a_symlink_never_follows_it() {
    let a = Area::new();
    let t = tar_of(|b| {
        raw(b, "x", EntryType::Symlink, Some("../sentinel/keep"), 0o777, b"");
        file(b, "x", b"later wins");
    });
    a.unpack(&t, &Default::default()).unwrap();
    assert_eq!(fs::read(a.target().join("x")).unwrap(), b"later wins");
    assert!(!fs::symlink_metadata(a.target().join("x")).unwrap().file_type().is_symlink());
    a.assert_outside_untouched();
}

#[test]
fn hostile_hardlinks_rejected() {
    let a = Area::new();
    let hl = |target: &'static str| tar_of(move |b| raw(b, "h", EntryType::Link, Some(target), 0o644, b""));
    expect_unsafe(a.unpack(&hl("/etc/passwd"), &Default::default()), "hardlink target escapes");
    expect_unsafe(a.unpack(&hl("../sentinel/keep"), &Default::default()), "hardlink target escapes");
    expect_unsafe(a.unpack(&hl("not-yet"), &Default::default()), "does not exist");
    // Through a symlinked directory planted earlier.
    a.unpack(&tar_of(|b| raw(b, "s", EntryType::Symlink, Some("../sentinel"), 0o777, b"")), &Default::default())
        .unwrap();
    expect_unsafe(a.unpack(&hl("s/keep"), &Default::default()), "symlink");
    a.assert_outside_untouched();
    // A well-formed hardlink works.
    a.unpack(&tar_of(|b| {
        file(b, "f", b"data");
        raw(b, "g", EntryType::Link, Some("f"), 0o644, b"");
    }), &Default::default())
    .unwrap();
    assert_eq!(fs::metadata(a.target().join("g")).unwrap().ino(), fs::metadata(a.target().join("f")).unwrap().ino());
}

#[test]
fn decompression_bomb_capped() {
    // A 10 GiB zero file: only its first 8 MiB are actually in the (small) gzip stream,
    // which is enough to show the cap stops it long before 10 GiB is read or written.
    let mut h = Header::new_ustar();
    h.set_path("zeros").unwrap();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(10 << 30);
    h.set_cksum();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(h.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..8 {
        gz.write_all(&zeros).unwrap();
    }
    let blob = gz.finish().unwrap();
    assert!(blob.len() < 64 * 1024, "bomb is small: {}", blob.len());
    let a = Area::new();
    let limits = UnpackLimits { max_bytes: 1 << 30, ..Default::default() };
    let err = unpack(blob.as_slice(), Compression::Gzip, &a.target(), &limits, &|_| {}).unwrap_err();
    assert!(matches!(err, LayerError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("zeros"), "{err}");
    // A stream whose true content exceeds the cap (small files adding up) is stopped too.
    let t = tar_of(|b| {
        for i in 0..8 {
            file(b, &format!("f{i}"), &vec![1u8; 1 << 20]);
        }
    });
    let limits = UnpackLimits { max_bytes: 3 << 20, ..Default::default() };
    let err = a.unpack(&t, &limits).unwrap_err();
    assert!(matches!(err, LayerError::TooLarge { .. }), "{err}");
    let written: u64 = fs::read_dir(a.target()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(written <= 3 << 20, "{written}");
    a.assert_outside_untouched();
}

/// An uncompressed tar of `n` empty files, generated on the fly (1e6 entries would be 512 MB).
struct ManyEntries {
    n: u64,
    i: u64,
    block: Vec<u8>,
    pos: usize,
}

impl Read for ManyEntries {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.block.len() {
            if self.i == self.n {
                self.block = vec![0u8; 1024];
                self.i += 1;
            } else if self.i > self.n {
                return Ok(0);
            } else {
                let mut h = Header::new_ustar();
                h.set_path(format!("e{}", self.i)).unwrap();
                h.set_entry_type(EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(0);
                h.set_cksum();
                self.block = h.as_bytes().to_vec();
                self.i += 1;
            }
            self.pos = 0;
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn entry_count_capped() {
    let a = Area::new();
    let limits = UnpackLimits { max_entries: 10_000, ..Default::default() };
    let r = ManyEntries { n: 1_000_000, i: 0, block: Vec::new(), pos: 0 };
    let err = unpack(r, Compression::None, &a.target(), &limits, &|_| {}).unwrap_err();
    assert!(matches!(err, LayerError::TooManyEntries { cap: 10_000 }), "{err}");
    assert!(fs::read_dir(a.target()).unwrap().count() <= 10_000);
    a.assert_outside_untouched();
}

#[test]
fn devices_skipped_setuid_dropped_whiteouts_applied() {
    let a = Area::new();
    let warnings = RefCell::new(Vec::new());
    let lower = tar_of(|b| {
        raw(b, "bin/", EntryType::Directory, None, 0o755, b"");
        raw(b, "bin/su", EntryType::Regular, None, 0o4755, b"su");
        raw(b, "dev/null", EntryType::Char, None, 0o666, b"");
        raw(b, "fifo", EntryType::Fifo, None, 0o644, b"");
        file(b, "gone", b"x");
        file(b, "opq/old1", b"x");
        file(b, "opq/old2", b"x");
        file(b, "keep", b"x");
    });
    let st = unpack(lower.as_slice(), Compression::None, &a.target(), &Default::default(), &|w| {
        warnings.borrow_mut().push(w.to_string())
    })
    .unwrap();
    assert_eq!(st.skipped, 2);
    assert_eq!(warnings.borrow().len(), 2);
    assert!(warnings.borrow()[0].contains("dev/null"));
    assert!(!a.target().join("dev/null").exists() && !a.target().join("fifo").exists());
    assert_eq!(fs::metadata(a.target().join("bin/su")).unwrap().mode() & 0o7777, 0o755);

    let upper = tar_of(|b| {
        file(b, ".wh.gone", b"");
        file(b, "opq/new", b"n");
        file(b, "opq/.wh..wh..opq", b"");
    });
    a.unpack(&upper, &Default::default()).unwrap();
    assert!(!a.target().join("gone").exists());
    let mut opq: Vec<_> = fs::read_dir(a.target().join("opq")).unwrap().map(|e| e.unwrap().file_name()).collect();
    opq.sort();
    assert_eq!(opq, ["new"], "opaque whiteout hides lower entries only");
    assert!(a.target().join("keep").exists());

    // keep_setuid asks for the bits.
    let b2 = Area::new();
    let limits = UnpackLimits { keep_setuid: true, ..Default::default() };
    b2.unpack(&lower, &limits).unwrap();
    assert_eq!(fs::metadata(b2.target().join("bin/su")).unwrap().mode() & 0o7777, 0o4755);
}

#[test]
fn all_compressions_unpack() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("a")).unwrap();
    fs::write(src.path().join("a/b"), b"hello").unwrap();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut blob = Vec::new();
        pack_dir(src.path(), &PackOptions { compression: c, ..Default::default() }, &mut blob).unwrap();
        let a = Area::new();
        unpack(blob.as_slice(), c, &a.target(), &Default::default(), &|_| {}).unwrap();
        assert_eq!(fs::read(a.target().join("a/b")).unwrap(), b"hello", "{c:?}");
    }
}

// ---------- determinism ----------

fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("etc/conf"), vec![7u8; 300_000]).unwrap();
    fs::hard_link(root.join("etc/conf"), root.join("etc/conf.link")).unwrap();
    std::os::unix::fs::symlink("../usr/bin/tool", root.join("etc/tool")).unwrap();
    let long = root.join("d".repeat(60)).join("e".repeat(60));
    fs::create_dir_all(&long).unwrap();
    fs::write(long.join("f".repeat(90)), b"long name").unwrap();
}

fn pack_vec(dir: &Path, c: Compression) -> ws2i::layer::PackedLayer {
    let opts = PackOptions { compression: c, ..Default::default() };
    let mut out = Vec::new();
    let p = pack_dir(dir, &opts, &mut out).unwrap();
    assert_eq!(p.digest, Digest::of(&out));
    assert_eq!(p.size, out.len() as u64);
    p
}

fn run(cmd: &mut Command) {
    let s = cmd.status().unwrap();
    assert!(s.success(), "{cmd:?}");
}

#[test]
fn packing_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    sample_tree(&a);
    let b = tmp.path().join("b");
    run(Command::new("cp").arg("-a").arg(&a).arg(&b));
    run(Command::new("touch").args(["-h", "-d", "2001-02-03 04:05:06"]).arg(b.join("etc/conf")).arg(b.join("etc/tool")));
    if unsafe { libc_geteuid() } == 0 {
        run(Command::new("chown").args(["-R", "-h", "1234:4321"]).arg(&b));
    }
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let p1 = pack_vec(&a, c);
        let p2 = pack_vec(&a, c);
        let p3 = pack_vec(&b, c);
        assert_eq!(p1, p2, "{c:?}");
        assert_eq!(p1, p3, "{c:?}: different mtimes/owners must not matter");
    }
    // The diff_id does not depend on compression, and the tar unpacks to the same tree.
    let (pn, pg) = (pack_vec(&a, Compression::None), pack_vec(&a, Compression::Gzip));
    assert_eq!(pn.diff_id, pg.diff_id);
    // GNU gzip reads the multi-member (parallel) stream to the same tar.
    let mut gz = Vec::new();
    pack_dir(&a, &PackOptions::default(), &mut gz).unwrap();
    fs::write(tmp.path().join("l.tar.gz"), &gz).unwrap();
    let out = Command::new("gzip").arg("-dc").arg(tmp.path().join("l.tar.gz")).output().unwrap();
    assert!(out.status.success());
    assert_eq!(Digest::of(&out.stdout), pg.diff_id);
    // GNU tar understands the PAX long names and sees no GNU extensions.
    let list = Command::new("tar").arg("-tzf").arg(tmp.path().join("l.tar.gz")).output().unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let list = String::from_utf8(list.stdout).unwrap();
    let long = format!("{}/{}/{}", "d".repeat(60), "e".repeat(60), "f".repeat(90));
    assert!(list.lines().any(|l| l == long), "{list}");
    assert!(!list.contains("LongLink") && !list.contains("PaxHeader"), "{list}");
    let mut out = Vec::new();
    pack_dir(&a, &PackOptions { compression: Compression::Zstd, ..Default::default() }, &mut out).unwrap();
    let back = tmp.path().join("back");
    fs::create_dir(&back).unwrap();
    unpack(out.as_slice(), Compression::Zstd, &back, &Default::default(), &|_| {}).unwrap();
    assert_same_tree(&a, &back, &[]);
    assert_eq!(fs::metadata(back.join("etc/conf")).unwrap().ino(), fs::metadata(back.join("etc/conf.link")).unwrap().ino());
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Same entries, types, modes, contents and link targets (mtimes and owners ignored).
fn assert_same_tree(a: &Path, b: &Path, skip: &[&str]) {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut names: Vec<_> = fs::read_dir(root.join(rel)).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        for n in names {
            let p = rel.join(&n);
            let m = fs::symlink_metadata(root.join(&p)).unwrap();
            let desc = if m.is_dir() {
                format!("dir {:o}", m.mode() & 0o7777)
            } else if m.file_type().is_symlink() {
                format!("link {}", fs::read_link(root.join(&p)).unwrap().display())
            } else {
                format!("file {:o} {}", m.mode() & 0o7777, Digest::of(&fs::read(root.join(&p)).unwrap()))
            };
            out.push((p.clone(), desc));
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    walk(a, Path::new(""), &mut x);
    walk(b, Path::new(""), &mut y);
    let keep = |v: Vec<(PathBuf, String)>| -> Vec<_> { v.into_iter().filter(|(p, _)| !skip.iter().any(|s| p.starts_with(s))).collect() };
    assert_eq!(keep(x), keep(y));
}

// ---------- cache, checkout, diff round trip ----------

fn base_layers(opens: Arc<AtomicUsize>) -> Vec<LayerSource> {
    let l1 = tar_of(|b| {
        raw(b, "etc/", EntryType::Directory, None, 0o755, b"");
        file(b, "etc/os-release", b"ID=test\n");
        file(b, "etc/same-size", b"aaaa");
        raw(b, "usr/share/zoneinfo/UTC", EntryType::Regular, None, 0o644, b"TZif");
        raw(b, "etc/localtime", EntryType::Symlink, Some("/usr/share/zoneinfo/UTC"), 0o777, b"");
        file(b, "var/lib/old/a", b"a");
        file(b, "var/lib/old/b", b"b");
        file(b, "bin/replace-me", b"x");
        file(b, "tmp/.keep", b"");
    });
    let l2 = tar_of(|b| {
        file(b, "app/run", b"#!/bin/sh\n");
        raw(b, "app/run2", EntryType::Link, Some("app/run"), 0o644, b"");
    });
    [l1, l2]
        .into_iter()
        .map(|t| {
            let diff_id = Digest::of(&t);
            let opens = opens.clone();
            LayerSource::new(diff_id, Compression::None, move || {
                opens.fetch_add(1, Ordering::SeqCst);
                Ok(Box::new(io::Cursor::new(t.clone())) as Box<dyn Read>)
            })
        })
        .collect()
}

#[test]
fn cache_checkout_diff_pack_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = RootfsCache::new(&tmp.path().join("cache")).unwrap();
    let opens = Arc::new(AtomicUsize::new(0));
    let layers = base_layers(opens.clone());
    let base = cache.base(&layers).unwrap();
    assert_eq!(opens.load(Ordering::SeqCst), 2);
    let again = cache.base(&layers).unwrap();
    assert_eq!(opens.load(Ordering::SeqCst), 2, "second base() must not unpack again");
    assert_eq!(again.path(), base.path());
    // Absolute symlinks are made relative in the base.
    assert_eq!(fs::read_link(base.path().join("etc/localtime")).unwrap(), Path::new("../usr/share/zoneinfo/UTC"));

    let build = cache.checkout(&base).unwrap();
    let r = build.path();
    // Assemble-like changes.
    fs::create_dir_all(r.join("opt/app")).unwrap();
    fs::write(r.join("opt/app/server"), b"binary").unwrap();
    fs::hard_link(r.join("opt/app/server"), r.join("opt/app/server-link")).unwrap();
    fs::write(r.join("etc/os-release"), b"ID=changed\n").unwrap();
    // Same size, mtime put back: only content differs.
    let mt = fs::metadata(r.join("etc/same-size")).unwrap().modified().unwrap();
    fs::write(r.join("etc/same-size"), b"bbbb").unwrap();
    fs::File::options().write(true).open(r.join("etc/same-size")).unwrap().set_modified(mt).unwrap();
    fs::set_permissions(r.join("app/run"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_dir_all(r.join("var/lib/old")).unwrap();
    fs::remove_file(r.join("bin/replace-me")).unwrap();
    std::os::unix::fs::symlink("../app/run", r.join("bin/replace-me")).unwrap();
    std::os::unix::fs::symlink("/etc/os-release", r.join("abs-link")).unwrap();
    // A new name for a file the base already had: the link must survive.
    fs::hard_link(r.join("usr/share/zoneinfo/UTC"), r.join("etc/UTC.hl")).unwrap();
    fs::create_dir_all(r.join("tmp/src")).unwrap();
    fs::write(r.join("tmp/src/main.go"), b"package main").unwrap();

    // The cache is untouched by the build's writes.
    assert_eq!(fs::read(base.path().join("etc/os-release")).unwrap(), b"ID=test\n");
    assert_eq!(fs::read(base.path().join("etc/same-size")).unwrap(), b"aaaa");
    assert!(base.path().join("var/lib/old/a").exists());

    let changes = diff(&base, &build, &["/tmp/src"]).unwrap();
    let paths: Vec<String> = changes.as_slice().iter().map(|c| format!("{:?} {}", c.kind, c.path.display())).collect();
    for expected in [
        "Upsert opt/app/server",
        "Upsert etc/os-release",
        "Upsert etc/same-size",
        "Upsert app/run",
        "Delete var/lib/old",
        "Upsert bin/replace-me",
        "Upsert abs-link",
        "Upsert etc/UTC.hl",
        "Upsert usr/share/zoneinfo/UTC",
    ] {
        assert!(paths.contains(&expected.to_string()), "{expected} missing from {paths:?}");
    }
    for unexpected in ["tmp/src", "etc/localtime", "etc", "usr", "etc/os-release.hl"] {
        assert!(!paths.iter().any(|p| p.ends_with(&format!(" {unexpected}"))), "{unexpected} in {paths:?}");
    }

    let mut blob = Vec::new();
    let packed = pack(&changes, &PackOptions::default(), &mut blob).unwrap();
    assert_eq!(packed.digest, Digest::of(&blob));
    // Reproduce the build on a fresh copy of the base.
    let fresh = tmp.path().join("fresh");
    fs::create_dir(&fresh).unwrap();
    let opts = UnpackOptions { rewrite_absolute_symlinks: true, ..Default::default() };
    for l in &layers {
        unpack_with((l.open)().unwrap(), l.compression, &fresh, &opts, &|_| {}).unwrap();
    }
    unpack(blob.as_slice(), Compression::Gzip, &fresh, &Default::default(), &|_| {}).unwrap();
    assert_same_tree(r, &fresh, &["tmp/src"]);
    assert_eq!(
        fs::metadata(fresh.join("opt/app/server")).unwrap().ino(),
        fs::metadata(fresh.join("opt/app/server-link")).unwrap().ino()
    );

    assert_eq!(
        fs::metadata(fresh.join("usr/share/zoneinfo/UTC")).unwrap().ino(),
        fs::metadata(fresh.join("etc/UTC.hl")).unwrap().ino()
    );
    // Dropping the build root removes it.
    let bp = r.to_path_buf();
    drop(build);
    assert!(!bp.exists());
}

#[test]
fn cache_rejects_layer_not_matching_its_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = RootfsCache::new(tmp.path()).unwrap();
    let t = tar_of(|b| file(b, "a", b"real"));
    let lie = LayerSource::new(Digest::of(b"something else"), Compression::None, move || {
        Ok(Box::new(io::Cursor::new(t.clone())) as Box<dyn Read>)
    });
    let err = cache.base(&[lie]).unwrap_err();
    assert!(format!("{err:#}").contains("does not match its diff_id"), "{err:#}");
    assert_eq!(fs::read_dir(tmp.path().join("rootfs")).unwrap().count(), 0, "nothing cached");
}

#[test]
fn unchanged_checkout_diffs_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = RootfsCache::new(tmp.path()).unwrap();
    let base = cache.base(&base_layers(Arc::new(AtomicUsize::new(0)))).unwrap();
    let build = cache.checkout(&base).unwrap();
    let changes = diff(&base, &build, &[]).unwrap();
    assert!(changes.is_empty(), "{:?}", changes.as_slice());
}

#[test]
fn a_stack_starts_from_its_cached_prefix_and_leaves_it_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = RootfsCache::new(tmp.path()).unwrap();
    let src = |t: Vec<u8>| {
        LayerSource::new(Digest::of(&t), Compression::None, move || {
            Ok(Box::new(io::Cursor::new(t.clone())) as Box<dyn Read>)
        })
    };
    let l1 = tar_of(|b| {
        file(b, "keep", b"same");
        file(b, "change", b"old");
        file(b, "gone", b"x");
    });
    let l2 = tar_of(|b| {
        file(b, "change", b"new");
        file(b, ".wh.gone", b"");
    });
    let one = cache.base(&[src(l1.clone())]).unwrap();
    let two = cache.base(&[src(l1), src(l2)]).unwrap();
    let (p1, p2) = (one.path(), two.path());
    assert_eq!(fs::read(p1.join("change")).unwrap(), b"old", "the prefix is not written through");
    assert!(p1.join("gone").exists(), "a whiteout above does not reach the prefix");
    assert_eq!(fs::read(p2.join("change")).unwrap(), b"new");
    assert!(!p2.join("gone").exists());
    assert_eq!(
        fs::metadata(p1.join("keep")).unwrap().ino(),
        fs::metadata(p2.join("keep")).unwrap().ino(),
        "unchanged files are shared with the prefix, not copied"
    );
}

// ---------- measurements (run by benches/layers.sh; never timed in CI) ----------

/// Prints a table of checkout strategies and pack throughput on a generated
/// tree (WS2I_BENCH_MB, default 300 MB, in 10k files). Ignored: run explicitly.
#[test]
#[ignore]
fn bench_layers() {
    use std::time::Instant;
    let mb: usize = std::env::var("WS2I_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let files = 10_000usize;
    let per_file = mb * 1024 * 1024 / files;
    let tmp = tempfile::tempdir_in(std::env::var("WS2I_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into())).unwrap();
    let tree = tmp.path().join("tree");
    // Half text-like, half incompressible: roughly what a runtime image holds.
    let mut seed = 0x9e3779b97f4a7c15u64;
    for i in 0..files {
        let d = tree.join(format!("d{:03}", i % 100));
        fs::create_dir_all(&d).unwrap();
        let mut data = Vec::with_capacity(per_file);
        while data.len() < per_file {
            if (data.len() / 4096) % 2 == 0 {
                data.extend_from_slice(format!("line {} of file {i} with some repeated words words words\n", data.len()).as_bytes());
            } else {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                data.extend_from_slice(&seed.to_le_bytes());
            }
        }
        data.truncate(per_file);
        fs::write(d.join(format!("f{i}")), &data).unwrap();
    }
    let total = (per_file * files) as f64 / 1e6;
    let settle = || run(&mut Command::new("sync"));
    let row = |name: &str, secs: f64| println!("| {name:<44} | {secs:>7.2} s | {:>7.0} MB/s |", total / secs);
    println!("\ntree: {files} files, {total:.0} MB, {} cores\n", std::thread::available_parallelism().unwrap());
    println!("| operation                                    |    time   |  throughput  |");
    println!("|----------------------------------------------|-----------|--------------|");

    settle();
    let t = Instant::now();
    let mut tarball = Vec::new();
    pack_dir(&tree, &PackOptions { compression: Compression::None, ..Default::default() }, &mut tarball).unwrap();
    row("pack_dir, uncompressed (tar + sha256)", t.elapsed().as_secs_f64());
    for (name, c) in [("pack_dir, gzip level 6", Compression::Gzip), ("pack_dir, zstd level 3", Compression::Zstd)] {
        settle();
        let t = Instant::now();
        let mut sink = io::sink();
        let p = pack_dir(&tree, &PackOptions { compression: c, ..Default::default() }, &mut sink).unwrap();
        row(&format!("{name} ({:.0}% of input)", p.size as f64 / 1e6 / total * 100.0), t.elapsed().as_secs_f64());
    }

    let cache = RootfsCache::new(&tmp.path().join("cache")).unwrap();
    let tarball = Arc::new(tarball);
    let tb = tarball.clone();
    let layer = LayerSource::new(Digest::of(&tarball), Compression::None, move || {
        Ok(Box::new(io::Cursor::new(tb.as_ref().clone())) as Box<dyn Read>)
    });
    settle();
    let t = Instant::now();
    let base = cache.base(std::slice::from_ref(&layer)).unwrap();
    row("RootfsCache::base, first (unpack)", t.elapsed().as_secs_f64());
    let t = Instant::now();
    cache.base(std::slice::from_ref(&layer)).unwrap();
    println!("| {:<44} | {:>7.4} s |              |", "RootfsCache::base, cached", t.elapsed().as_secs_f64());

    settle();
    let t = Instant::now();
    let build = cache.checkout(&base).unwrap();
    row("checkout: full copy (copy_file_range)", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let changes = diff(&base, &build, &[]).unwrap();
    assert!(changes.is_empty());
    row("diff of an untouched checkout (ctime stamps)", t.elapsed().as_secs_f64());
    // Touch every file (new ctime, same content): diff must compare bytes.
    run(Command::new("chmod").args(["-R", "u+w"]).arg(build.path()));
    let t = Instant::now();
    let changes = diff(&base, &build, &[]).unwrap();
    assert!(changes.is_empty());
    row("diff after chmod -R (byte compare)", t.elapsed().as_secs_f64());
    drop(build);

    fn walk_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(root.join(rel)).unwrap() {
            let p = rel.join(e.unwrap().file_name());
            if fs::symlink_metadata(root.join(&p)).unwrap().is_dir() {
                walk_files(root, &p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut list = Vec::new();
    walk_files(base.path(), Path::new(""), &mut list);
    let mk_dirs = |dst: &Path| {
        for p in &list {
            fs::create_dir_all(dst.join(p.parent().unwrap())).unwrap();
        }
    };
    // Alternatives considered (measured here only).
    let dst = tmp.path().join("alt-hardlink");
    settle();
    let t = Instant::now();
    mk_dirs(&dst);
    for p in &list {
        fs::hard_link(base.path().join(p), dst.join(p)).unwrap();
    }
    row("alt: hardlink tree (unsafe as root)", t.elapsed().as_secs_f64());
    let dst = tmp.path().join("alt-userspace");
    settle();
    let t = Instant::now();
    mk_dirs(&dst);
    for p in &list {
        let data = fs::read(base.path().join(p)).unwrap();
        fs::write(dst.join(p), data).unwrap();
    }
    row("alt: read+write copy (user space)", t.elapsed().as_secs_f64());
    let dst = tmp.path().join("alt-parallel");
    settle();
    let t = Instant::now();
    mk_dirs(&dst);
    let threads = std::thread::available_parallelism().unwrap().get().max(2);
    std::thread::scope(|s| {
        for chunk in list.chunks(list.len().div_ceil(threads)) {
            let (b, d) = (base.path(), &dst);
            s.spawn(move || {
                for p in chunk {
                    fs::copy(b.join(p), d.join(p)).unwrap();
                }
            });
        }
    });
    row(&format!("alt: copy_file_range, {threads} threads"), t.elapsed().as_secs_f64());
}
