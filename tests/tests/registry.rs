//! ws2i against a real docker-registry, cross-checked with skopeo.

use std::process::Command;

use ws2i::image::auth::Credentials;
use ws2i::image::ManifestFormat;
use ws2i::image::reference::ImageRef;
use ws2i::image::registry::RegistryOptions;
use ws2i::image::store::Store;
use ws2i::image::transport::{copy, copy_report, inspect, CopyOptions};
use ws2i_tests::registry::fixtures::make_image;
use ws2i_tests::registry::Registry;

fn opts(store: &Store) -> CopyOptions {
    CopyOptions {
        store_root: Some(store.root().to_path_buf()),
        ..CopyOptions::default()
    }
}

fn r(s: &str) -> ImageRef {
    s.parse().unwrap()
}

use ws2i_tests::skopeo;

#[test]
fn push_pull_round_trip_oci_and_docker_with_skopeo_agreeing() {
    let reg = Registry::start().unwrap();
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("a")).unwrap();
    make_image(&store, "app:v1", &[("hello", b"hi")]).unwrap();
    for (format, mt) in [
        (
            ManifestFormat::Oci,
            "application/vnd.oci.image.manifest.v1+json",
        ),
        (
            ManifestFormat::Docker,
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
    ] {
        let dest = format!("docker://{}/team/app:{format:?}", reg.host()).to_lowercase();
        let o = CopyOptions {
            format: Some(format),
            ..opts(&store)
        };
        let pushed = copy(&r("app:v1"), &r(&dest), &o).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", "--raw", &dest]))
                .unwrap();
        assert_eq!(v["mediaType"], mt);
        let v: serde_json::Value =
            serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &dest])).unwrap();
        assert_eq!(v["Digest"], pushed.to_string());
        // registry → fresh store (converted to OCI there) → oci dir → oci-archive → store
        let store2 = Store::open(t.path().join(format!("b{format:?}"))).unwrap();
        copy(&r(&dest), &r("pulled:1"), &opts(&store2)).unwrap();
        let dir = format!("oci:{}:x", t.path().join(format!("d{format:?}")).display());
        copy(&r("pulled:1"), &r(&dir), &opts(&store2)).unwrap();
        let arc = format!(
            "oci-archive:{}:x",
            t.path().join(format!("a{format:?}.tar")).display()
        );
        copy(&r(&dir), &r(&arc), &opts(&store2)).unwrap();
        copy(&r(&arc), &r("again:1"), &opts(&store2)).unwrap();
        let info = inspect(&r("again:1"), &opts(&store2)).unwrap();
        assert_eq!(info.labels["io.ws2i.test"], "app:v1");
        // and back to the registry in the original format gives the same digest
        let back = format!("docker://{}/team/back:1", reg.host());
        let again = copy(
            &r("again:1"),
            &r(&back),
            &CopyOptions {
                format: Some(format),
                ..opts(&store2)
            },
        )
        .unwrap();
        assert_eq!(again, pushed, "{format:?}");
    }
}

#[test]
fn skopeo_pushes_ws2i_pulls_and_vice_versa() {
    let reg = Registry::start().unwrap();
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("s")).unwrap();
    let (d, _) = make_image(&store, "src:1", &[("f", b"from skopeo")]).unwrap();
    let by_skopeo = format!("docker://{}/sk/img:1", reg.host());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:src:1", store.root().display()),
        &by_skopeo,
    ]);
    let got = copy(&r(&by_skopeo), &r("got:1"), &opts(&store)).unwrap();
    assert_eq!(got, d);
    let by_ws2i = format!("docker://{}/ws/img:1", reg.host());
    copy(&r("got:1"), &r(&by_ws2i), &opts(&store)).unwrap();
    let out = t.path().join("out");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &by_ws2i,
        &format!("oci:{}:o", out.display()),
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", &format!("oci:{}:o", out.display())])).unwrap();
    assert_eq!(v["Digest"], d.to_string());
}

#[test]
fn htpasswd_auth_with_creds_and_authfile_and_refusal_without() {
    let reg = Registry::start_with_auth("alice", "s3cret").unwrap();
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("s")).unwrap();
    make_image(&store, "app", &[("f", b"x")]).unwrap();
    let dest = format!("docker://{}/priv/app:1", reg.host());
    let authfile = t.path().join("none.json");
    std::fs::write(&authfile, "{}").unwrap();
    let anon = CopyOptions {
        registry: RegistryOptions {
            authfile: Some(authfile),
            attempts: Some(1),
            ..Default::default()
        },
        ..opts(&store)
    };
    let e = format!("{:#}", copy(&r("app"), &r(&dest), &anon).unwrap_err());
    assert!(
        e.contains("requires authentication") && e.contains(&reg.host()),
        "{e}"
    );

    let wrong = CopyOptions {
        registry: RegistryOptions {
            creds: Some(Credentials::parse_creds("alice:nope").unwrap()),
            ..Default::default()
        },
        ..opts(&store)
    };
    let e = format!("{:#}", copy(&r("app"), &r(&dest), &wrong).unwrap_err());
    assert!(e.contains("rejected the credentials"), "{e}");

    let creds = CopyOptions {
        registry: RegistryOptions {
            creds: Some(Credentials::parse_creds("alice:s3cret").unwrap()),
            ..Default::default()
        },
        ..opts(&store)
    };
    let d = copy(&r("app"), &r(&dest), &creds).unwrap();

    let authfile = t.path().join("auth.json");
    // base64("alice:s3cret")
    std::fs::write(
        &authfile,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let with_file = CopyOptions {
        registry: RegistryOptions {
            authfile: Some(authfile),
            ..Default::default()
        },
        ..opts(&store)
    };
    assert_eq!(copy(&r(&dest), &r("pulled"), &with_file).unwrap(), d);
}

#[test]
fn corrupted_blob_is_detected_and_nothing_is_stored() {
    let reg = Registry::start().unwrap();
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("s")).unwrap();
    let (_, layer) = make_image(&store, "app", &[("f", b"some content to corrupt")]).unwrap();
    let dest = format!("docker://{}/c/app:1", reg.host());
    copy(&r("app"), &r(&dest), &opts(&store)).unwrap();
    let data = reg.blob_data_path(layer.hex());
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&data, bytes).unwrap();

    let fresh = Store::open(t.path().join("fresh")).unwrap();
    let e = copy(&r(&dest), &r("pulled"), &opts(&fresh)).unwrap_err();
    let msg = format!("{e:#}").to_lowercase();
    eprintln!("corrupted pull error: {msg}");
    assert!(msg.contains("digest"), "{msg}");
    assert!(!fresh.has_blob(&layer));
    assert!(fresh.list().unwrap().is_empty());
}

#[test]
fn push_interrupted_by_registry_death_fails_clearly_leaves_no_tag_and_reruns() {
    let mut reg = Registry::start().unwrap();
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("s")).unwrap();
    // 48 MiB of incompressible data: large enough that the upload is in flight when we kill.
    let mut big = vec![0u8; 48 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    make_image(&store, "big", &[("big.bin", &big)]).unwrap();
    drop(big);
    let dest = format!("docker://{}/big/app:1", reg.host());
    let o = CopyOptions {
        registry: RegistryOptions {
            attempts: Some(2),
            ..Default::default()
        },
        ..opts(&store)
    };

    let uploads = reg
        .storage_dir()
        .join("docker/registry/v2/repositories/big/app/_uploads");
    let result = std::thread::scope(|s| {
        let h = s.spawn(|| copy(&r("big"), &r(&dest), &o));
        // Kill once an upload has started writing data (bounded wait).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline && !h.is_finished() {
            let started = std::fs::read_dir(&uploads)
                .map(|rd| {
                    rd.flatten().any(|e| {
                        std::fs::metadata(e.path().join("data"))
                            .map(|m| m.len() > 0)
                            .unwrap_or(false)
                    })
                })
                .unwrap_or(false);
            if started {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        reg.stop();
        h.join().unwrap()
    });
    let e = result.expect_err("push must fail when the registry dies mid-upload");
    let msg = format!("{e:#}");
    eprintln!("interrupted push error: {msg}");
    assert!(
        msg.contains(&reg.host()) && msg.contains("pushing"),
        "{msg}"
    );

    reg.restart().unwrap();
    let tag_exists = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &dest])
        .output()
        .unwrap()
        .status
        .success();
    assert!(!tag_exists, "no tag after a failed push");
    let d = copy(&r("big"), &r(&dest), &o).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &dest])).unwrap();
    assert_eq!(v["Digest"], d.to_string());
}

#[test]
fn copy_within_a_registry_mounts_blobs_and_falls_back_to_upload() {
    let reg = Registry::start().unwrap();
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("s")).unwrap();
    make_image(&store, "app:v1", &[("hello", b"hi")]).unwrap();
    let repos = reg.storage_dir().join("docker/registry/v2/repositories");
    let a = format!("docker://{}/team/a:1", reg.host());
    let first = copy_report(&r("app:v1"), &r(&a), &opts(&store)).unwrap();
    assert!(first.mounted.is_empty());
    assert_eq!(first.copied.len(), 2, "config and layer uploaded");
    assert!(
        repos.join("team/a/_uploads").exists(),
        "an upload leaves _uploads"
    );

    // a → b on the same registry: every blob is linked, none uploaded.
    let b = format!("docker://{}/team/b:1", reg.host());
    let rep = copy_report(&r(&a), &r(&b), &opts(&store)).unwrap();
    assert_eq!(rep.digest, first.digest);
    assert!(rep.copied.is_empty(), "{rep:?}");
    let mut got: Vec<_> = rep.mounted.iter().map(|m| m.digest.clone()).collect();
    let mut want = first.copied.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let from = format!("{}/team/a", reg.host());
    assert!(rep.mounted.iter().all(|m| m.from == from), "{rep:?}");
    assert!(
        !repos.join("team/b/_uploads").exists(),
        "a mount starts no upload session"
    );
    let v: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &b])).unwrap();
    assert_eq!(v["Digest"], rep.digest.to_string());
    let out = t.path().join("b-out");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &b,
        &format!("oci:{}:o", out.display()),
    ]);

    // The CLI reports mounts in --output json; a hint also mounts a push
    // from the local store.
    let c = format!("docker://{}/team/c:1", reg.host());
    let o = ws2i_tests::ws2i()
        .args(["--output", "json", "copy", &b, &c])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["mounted"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(v["mounted"][0]["from"], format!("{}/team/b", reg.host()));
    assert_eq!(v["copied"].as_array().map(Vec::len), Some(0), "{v}");
    let hinted = CopyOptions {
        mount_from: vec![format!("{}/team/a:1", reg.host())],
        ..opts(&store)
    };
    let e = format!("docker://{}/team/e:1", reg.host());
    let rep = copy_report(&r("app:v1"), &r(&e), &hinted).unwrap();
    assert_eq!(rep.mounted.len(), 2, "{rep:?}");

    // Fallback: the hinted repository lacks these blobs → plain upload.
    make_image(&store, "other:v1", &[("other", b"not in a")]).unwrap();
    let d = format!("docker://{}/team/d:1", reg.host());
    let rep = copy_report(&r("other:v1"), &r(&d), &hinted).unwrap();
    assert!(rep.mounted.is_empty(), "{rep:?}");
    assert_eq!(rep.copied.len(), 2);
    let v: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &d])).unwrap();
    assert_eq!(v["Digest"], rep.digest.to_string());

    // Never across registries: reg → reg2 uploads, even with a reg hint.
    let reg2 = Registry::start().unwrap();
    let far = format!("docker://{}/team/a:1", reg2.host());
    let rep = copy_report(&r(&a), &r(&far), &hinted).unwrap();
    assert!(rep.mounted.is_empty(), "{rep:?}");
    assert_eq!(rep.copied.len(), 2);
}
