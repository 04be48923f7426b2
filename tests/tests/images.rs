//! The image commands through the real `ws2i` binary.

use std::path::Path;
use std::process::{Command, Output};

use ws2i::image::store::Store;
use ws2i_tests::registry::fixtures::make_image;
use ws2i_tests::registry::Registry;

fn ws2i(home: &Path, args: &[&str]) -> Output {
    Command::new(ws2i_tests::ws2i_bin())
        .env("WS2I_HOME", home)
        .args(args)
        .output()
        .expect("ws2i runs")
}

fn ok(home: &Path, args: &[&str]) -> String {
    let o = ws2i(home, args);
    assert!(
        o.status.success(),
        "ws2i {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn images_inspect_tag_rmi_prune() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    let store = Store::open(&home).unwrap();
    let (d, layer) = make_image(&store, "my/app:1", &[("f", b"x")]).unwrap();

    let v: serde_json::Value =
        serde_json::from_str(&ok(&home, &["--output", "json", "inspect", "my/app:1"])).unwrap();
    assert_eq!(v["digest"], d.to_string());
    assert_eq!(v["labels"]["io.ws2i.test"], "my/app:1");
    assert_eq!(v["layers"][0]["digest"], layer.to_string());

    ok(&home, &["tag", "my/app:1", "other:2"]);
    let list: serde_json::Value =
        serde_json::from_str(&ok(&home, &["--output", "json", "images"])).unwrap();
    let names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["name"].as_str().unwrap(),
                i["tag"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["my/app:1", "other:2"]);
    assert!(ok(&home, &["images"]).contains("my/app"));

    ok(&home, &["rmi", "my/app:1", "other:2"]);
    let o = ws2i(&home, &["rmi", "my/app:1"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("ws2i: error: "),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&home, &["--output", "json", "prune"])).unwrap();
    assert_eq!(v["blobs"], 3);

    let o = ws2i(&home, &["inspect", "Bad Name"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("invalid image reference"),
        "{err}"
    );
}

#[test]
fn push_pull_copy_commands_and_auth_message() {
    let reg = Registry::start_with_auth("bob", "pw").unwrap();
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    let store = Store::open(&home).unwrap();
    let (d, _) = make_image(&store, "app", &[("f", b"x")]).unwrap();
    let dest = format!("docker://{}/x/app:1", reg.host());
    let o = ws2i(&home, &["push", "--quiet", "app", &dest]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("requires authentication") && err.contains("--creds"),
        "{err}"
    );
    ok(
        &home,
        &[
            "push", "--creds", "bob:pw", "--format", "docker", "app", &dest,
        ],
    );
    let home2 = t.path().join("home2");
    let v: serde_json::Value = serde_json::from_str(&ok(
        &home2,
        &["--output", "json", "pull", "--creds", "bob:pw", &dest],
    ))
    .unwrap();
    assert_eq!(v["image"], format!("{}/x/app:1", reg.host()));
    let oci = format!("oci:{}:app", t.path().join("dir").display());
    let out = ok(&home2, &["copy", &format!("{}/x/app:1", reg.host()), &oci]);
    assert_eq!(
        out.trim(),
        d.to_string(),
        "OCI again after the docker round trip"
    );
}
