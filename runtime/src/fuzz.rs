//! Entry points for fuzzing every parser of untrusted input (issue 13): one function per
//! target, taking the fuzzer's bytes and returning nothing. A parser may refuse its input; it
//! may not panic, hang or run away with memory. `fuzz/` (cargo-fuzz, libFuzzer) drives them, and
//! `tests/tests/fuzz_corpus.rs` replays the checked-in corpus through them in the README's test
//! command. docs/fuzzing.md lists the targets and the figures of the runs.

use std::io::Write;
use std::path::Path;

/// The targets, by name (`fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`).
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("containerfile", containerfile),
    ("envfile", envfile),
    ("s2ifile", s2ifile),
    ("image_ref", image_ref),
    ("manifest", manifest),
    ("auth", auth),
    ("tar_unpack", tar_unpack),
    ("image_metadata", image_metadata),
    ("okd_yaml", okd_yaml),
];

/// The entry point named `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A fresh directory for one input, in memory where the machine has `/dev/shm` (a fuzzer runs
/// millions of inputs; the disk would be the bottleneck).
fn scratch_dir() -> Option<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new().prefix("ws2i-fuzz-").tempdir_in(shm) {
            return Some(d);
        }
    }
    tempfile::tempdir().ok()
}

/// `ws2i bud`'s Containerfile parser, then shell-word expansion of every shell-form argument
/// (against an environment that knows a few names).
pub fn containerfile(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(cf) = crate::containerfile::Containerfile::parse(t) else { return };
    let env = |k: &str| matches!(k, "A" | "PATH" | "HOME").then(|| format!("v-{k}"));
    for i in &cf.instructions {
        if let crate::containerfile::Args::Shell(raw) = &i.args {
            let _ = crate::containerfile::expand_words(raw, &env, cf.escape);
        }
    }
}

/// `.s2i/environment` and `--environment-file`.
pub fn envfile(data: &[u8]) {
    use crate::contract::envfile::{parse_env_file, parse_env_arg, EnvFileKind};
    let Some(t) = text(data) else { return };
    for kind in [EnvFileKind::Source, EnvFileKind::Cli] {
        let _ = parse_env_file(t, Path::new("fuzz"), kind);
    }
    let _ = parse_env_arg(t);
}

/// A `.s2ifile` (a source tree can carry one).
pub fn s2ifile(data: &[u8]) {
    let _ = crate::s2i::s2ifile::S2iFile::parse(data);
}

/// Image references of every kind, platforms, registry credentials given as USER:PASS.
pub fn image_ref(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let _ = t.parse::<crate::image::ImageRef>();
    let _ = t.parse::<crate::image::LocalRef>();
    let _ = t.parse::<crate::image::NameTag>();
    let _ = crate::image::Platform::parse(t);
    let _ = crate::image::auth::Credentials::parse_creds(t);
}

/// Manifests, indexes and configs as a registry or a layout hands them over.
pub fn manifest(data: &[u8]) {
    let _ = crate::image::Manifest::parse(data);
    let _ = crate::image::ImageConfig::parse(data);
    if let Ok(idx) = serde_json::from_slice::<crate::image::Index>(data) {
        let _ = idx.select(&crate::image::Platform::host_default());
    }
}

/// A containers auth file / docker config.json.
pub fn auth(data: &[u8]) {
    let _ = docker_credential::get_credential_from_reader(data, "registry.example:5000");
}

/// A layer tar unpacked into a rootfs, as base layers are (and with save-artifacts' rules).
pub fn tar_unpack(data: &[u8]) {
    use crate::layer::{unpack_with, Compression, UnpackLimits, UnpackOptions};
    let Some(dir) = scratch_dir() else { return };
    for skip_unsafe in [false, true] {
        let target = dir.path().join(if skip_unsafe { "artifacts" } else { "rootfs" });
        if std::fs::create_dir(&target).is_err() {
            return;
        }
        let limits = UnpackLimits { max_bytes: 64 << 20, max_entries: 10_000, ..UnpackLimits::default() };
        let opts = UnpackOptions { limits, rewrite_absolute_symlinks: !skip_unsafe, expected_diff_id: None, skip_unsafe };
        let _ = unpack_with(data, Compression::None, &target, &opts, &|_| {});
    }
}

/// `/tmp/.s2i/image_metadata.json`, which assemble writes.
pub fn image_metadata(data: &[u8]) {
    let Some(dir) = scratch_dir() else { return };
    let meta = dir.path().join("tmp/.s2i");
    if std::fs::create_dir_all(&meta).is_err() {
        return;
    }
    let written = std::fs::File::create(meta.join("image_metadata.json")).and_then(|mut f| f.write_all(data));
    if written.is_err() {
        return;
    }
    if let Ok(root) = cap_std::fs::Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()) {
        let _ = crate::s2i::read_image_metadata(&root);
    }
}

/// OKD objects (`ws2i apply -f`): YAML or JSON, multi-document, `kind: List`.
pub fn okd_yaml(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let _ = crate::pipeline::load::load_str(t, "fuzz");
}
