//! Builder images for the build tests, made with the library from the
//! test-builder hooks (guest-scripts/test-builder), so a test needs no `ws2i bud`.

use std::fs;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use ws2i::image::{ImageBuilder, NewLayer, Platform};
use ws2i::layer::{pack_dir, MediaTypeFlavor, PackOptions};
use ws2i::image::store::Store;

use crate::{guests, stdout, workspace_root};

/// A cache dir (`WS2I_CACHE`) shared by the tests of one suite: compiled modules and
/// unpacked builder layers are content-addressed, so sharing them only saves time.
pub fn shared_cache(suite: &str) -> PathBuf {
    workspace_root().join("target/test-cache").join(suite)
}

/// The last word of a command's stdout: the digest `ws2i build` and `rebuild` print last.
pub fn digest_line(out: &Output) -> String {
    stdout(out).split_whitespace().last().unwrap_or_default().to_string()
}

/// The test builder: its hooks at /usr/libexec/s2i/<hook> (no suffix, like a shell-script
/// builder), /opt/app-root and /tmp present, the S2I labels.
pub fn make_builder(home: &Path, name: &str, hooks: &[&str]) {
    make_builder_with(home, name, hooks, &|_| {})
}

/// [`make_builder`] with `tweak` applied to the builder's tree before it is packed.
pub fn make_builder_with(home: &Path, name: &str, hooks: &[&str], tweak: &dyn Fn(&Path)) {
    let t = tempfile::tempdir().unwrap();
    let s2i = t.path().join("usr/libexec/s2i");
    fs::create_dir_all(&s2i).unwrap();
    for hook in hooks {
        let to = s2i.join(hook);
        fs::copy(guests::wasm(&format!("test-builder/{hook}")), &to).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::create_dir_all(t.path().join("opt/app-root")).unwrap();
    fs::create_dir_all(t.path().join("tmp")).unwrap();
    fs::set_permissions(t.path().join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    tweak(t.path());
    commit_tree(home, name, t.path(), "test builder", &mut |b| {
        b.label("io.openshift.s2i.scripts-url", "image:///usr/libexec/s2i")
            .label("io.k8s.description", "the ws2i test builder")
            .env("PATH", "/usr/bin")
            .env("FROM_IMAGE", "image");
    });
}

/// Stores `tree` as a one-layer image `name` (host platform) in the store at `home`,
/// with `configure` applied to its config.
pub fn commit_tree(home: &Path, name: &str, tree: &Path, created_by: &str, configure: &mut dyn FnMut(&mut ImageBuilder)) {
    let store = Store::open(home).unwrap();
    let mut blob = tempfile::tempfile().unwrap();
    let packed = pack_dir(tree, &PackOptions::default(), &mut blob).unwrap();
    blob.seek(SeekFrom::Start(0)).unwrap();
    store.put_blob(&mut blob, Some(&packed.digest)).unwrap();
    let mut b = ImageBuilder::scratch(&Platform::host_default());
    b.add_layer(NewLayer {
        diff_id: packed.diff_id.clone(),
        digest: packed.digest.clone(),
        size: packed.size,
        media_type: packed.compression.media_type(MediaTypeFlavor::Oci).into(),
        created_by: created_by.into(),
    })
    .unwrap();
    configure(&mut b);
    let (cfg, m) = b.finish().unwrap();
    store.commit_image(&cfg, &m, &name.parse().unwrap()).unwrap();
}
