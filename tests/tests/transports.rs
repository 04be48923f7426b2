//! File transports and the local store against real skopeo and umoci.

use std::process::Command;

use ws2i::image::ManifestFormat;
use ws2i::image::reference::ImageRef;
use ws2i::image::store::Store;
use ws2i::image::transport::{copy, inspect, CopyOptions};
use ws2i_tests::registry::fixtures::make_image;

fn opts(store: &Store, format: Option<ManifestFormat>) -> CopyOptions {
    CopyOptions {
        format,
        store_root: Some(store.root().to_path_buf()),
        ..CopyOptions::default()
    }
}

use ws2i_tests::skopeo;

fn skopeo_digest(r: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&skopeo(&["inspect", r])).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

#[test]
fn skopeo_reads_the_store_with_slash_and_colon_in_the_name() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let (d, _) = make_image(&store, "my/app:1.0", &[("hello", b"hi")]).unwrap();
    // skopeo splits oci:PATH:REF at the first colon, so REF may hold '/' and ':'.
    let r = format!("oci:{}:my/app:1.0", store.root().display());
    assert_eq!(skopeo_digest(&r), d.to_string());
    let other = t.path().join("other");
    skopeo(&["copy", &r, &format!("oci:{}:x", other.display())]);
    assert_eq!(
        skopeo_digest(&format!("oci:{}:x", other.display())),
        d.to_string()
    );
}

#[test]
fn round_trip_store_oci_dir_archive_store() {
    {
        let format = ManifestFormat::Oci;
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("store")).unwrap();
        make_image(&store, "app:v1", &[("hello", b"hi")]).unwrap();
        let o = opts(&store, Some(format));
        let dir = format!("oci:{}:app", t.path().join("dir").display());
        let arc = format!("oci-archive:{}:app", t.path().join("a.tar").display());
        let d1 = copy(&"app:v1".parse().unwrap(), &dir.parse().unwrap(), &o).unwrap();
        let d2 = copy(&dir.parse().unwrap(), &arc.parse().unwrap(), &o).unwrap();
        let d3 = copy(&arc.parse().unwrap(), &"app:back".parse().unwrap(), &o).unwrap();
        assert_eq!((&d1, &d2), (&d3, &d3), "{format:?}");
        for r in [&dir, &arc] {
            assert_eq!(skopeo_digest(r), d1.to_string(), "{format:?} {r}");
        }
        let info = inspect(&"app:back".parse().unwrap(), &o).unwrap();
        assert_eq!(info.labels["io.ws2i.test"], "app:v1");
        assert_eq!(info.media_type, ws2i::image::media::OCI_MANIFEST);
        // skopeo copy accepts the archive ws2i wrote
        skopeo(&[
            "copy",
            &arc,
            &format!("oci:{}:c", t.path().join("sk").display()),
        ]);
    }
}

#[test]
fn docker_format_into_an_oci_layout_is_refused_clearly() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    make_image(&store, "app", &[("a", b"a")]).unwrap();
    let dst: ImageRef = format!("oci:{}:app", t.path().join("dir").display())
        .parse()
        .unwrap();
    let e = copy(
        &"app".parse().unwrap(),
        &dst,
        &opts(&store, Some(ManifestFormat::Docker)),
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("OCI manifests only"), "{e:#}");
}

#[test]
fn umoci_unpacks_an_image_written_by_ws2i() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    make_image(&store, "app", &[("etc/greeting", b"hello umoci\n")]).unwrap();
    let dir = t.path().join("dir");
    let dst: ImageRef = format!("oci:{}:app", dir.display()).parse().unwrap();
    copy(&"app".parse().unwrap(), &dst, &opts(&store, None)).unwrap();
    let bundle = t.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:app", dir.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(bundle.join("rootfs/etc/greeting")).unwrap(),
        b"hello umoci\n"
    );
    // umoci also reads the store itself
    let out = Command::new("umoci")
        .arg("ls")
        .arg("--layout")
        .arg(store.root())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("app:latest"));
}

#[test]
fn hostile_oci_archive_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let arc = t.path().join("evil.tar");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_link_name("/etc").unwrap();
    b.append_data(&mut h, "blobs", &b"x"[..]).unwrap();
    std::fs::write(&arc, b.into_inner().unwrap()).unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let src: ImageRef = format!("oci-archive:{}", arc.display()).parse().unwrap();
    let e = copy(&src, &"x".parse().unwrap(), &opts(&store, None)).unwrap_err();
    assert!(format!("{e:#}").contains("non-regular"), "{e:#}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn docker_archive_is_read_by_skopeo_and_round_trips() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    make_image(&store, "app:v1", &[("etc/greeting", b"hello docker\n")]).unwrap();
    let arc = format!(
        "docker-archive:{}:my/app:v1",
        t.path().join("d.tar").display()
    );
    copy(
        &"app:v1".parse().unwrap(),
        &arc.parse().unwrap(),
        &opts(&store, None),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&skopeo(&["inspect", &arc])).unwrap();
    assert_eq!(v["Labels"]["io.ws2i.test"], "app:v1");
    // skopeo can copy it into an OCI layout umoci unpacks
    let dir = t.path().join("sk");
    skopeo(&["copy", &arc, &format!("oci:{}:x", dir.display())]);
    // and ws2i reads it back
    copy(
        &arc.parse().unwrap(),
        &"back:1".parse().unwrap(),
        &opts(&store, None),
    )
    .unwrap();
    let info = inspect(&"back:1".parse().unwrap(), &opts(&store, None)).unwrap();
    assert_eq!(info.labels["io.ws2i.test"], "app:v1");
    assert_eq!(info.layers.len(), 1);
}

#[test]
fn index_resolves_to_the_requested_platform() {
    use ws2i::image::{media, Descriptor, Index, Platform};
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let (linux, _) = make_image(&store, "linux", &[("l", b"linux")]).unwrap();
    let (wasm, _) = make_image(&store, "wasm", &[("w", b"wasm")]).unwrap();
    let mut idx = Index::empty();
    for (d, p) in [(&linux, "linux/amd64"), (&wasm, "wasip2/wasm")] {
        let size = std::fs::metadata(store.blob_path(d)).unwrap().len();
        let mut desc = Descriptor::new(media::OCI_MANIFEST, d.clone(), size);
        desc.platform = Some(Platform::parse(p).unwrap());
        idx.manifests.push(desc);
    }
    let bytes = serde_json::to_vec(&idx).unwrap();
    let idx_digest = store.put_manifest(&bytes, media::OCI_INDEX).unwrap();
    store.tag(&"multi:1".parse().unwrap(), &idx_digest).unwrap();
    let pick = |p: &str| {
        let o = CopyOptions {
            platform: Platform::parse(p).unwrap(),
            ..opts(&store, None)
        };
        copy(
            &"multi:1".parse().unwrap(),
            &format!("picked-{}:1", p.replace('/', "-")).parse().unwrap(),
            &o,
        )
    };
    assert_eq!(pick("wasip2/wasm").unwrap(), wasm);
    assert_eq!(pick("linux/amd64").unwrap(), linux);
    let e = format!("{:#}", pick("linux/arm64").unwrap_err());
    assert!(
        e.contains("no manifest for platform linux/arm64") && e.contains("wasip2/wasm"),
        "{e}"
    );
}
