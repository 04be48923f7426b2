//! `ws2i create NAME DIR`: scaffolds a builder project (as `s2i create` does, with hooks in Rust
//! on ws2i-sdk): a cargo project of the four hooks for wasm32-wasip1, a Containerfile for
//! `ws2i bud`, `test/test-app/`, a README and a `build` script that builds and checks it all.
//! Existing files are left alone, so it can be rerun to restore a deleted one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where this build of ws2i found the SDK: ws2i-sdk is not on crates.io, so a scaffold depends on
/// it by path.
pub fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

/// A builder name: also its cargo package and image repository, so `[a-z][a-z0-9-]*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderName(String);

#[derive(Debug, thiserror::Error)]
#[error("invalid builder name {0:?}: expected lowercase letters, digits and '-', starting with a letter (it names the cargo package and the image)")]
pub struct BadName(String);

impl std::str::FromStr for BuilderName {
    type Err = BadName;
    fn from_str(s: &str) -> Result<Self, BadName> {
        let ok = s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && !s.ends_with('-')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(BuilderName(s.to_string()))
        } else {
            Err(BadName(s.to_string()))
        }
    }
}

impl std::fmt::Display for BuilderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`create`] did with each file, relative to DIR.
#[derive(Debug, Default, serde::Serialize)]
pub struct Created {
    pub written: Vec<String>,
    /// Already there, left as they were.
    pub skipped: Vec<String>,
}

/// (path in the project, template, executable)
const FILES: &[(&str, &str, bool)] = &[
    ("Cargo.toml", include_str!("create/Cargo.toml.in"), false),
    (
        "src/bin/assemble.rs",
        include_str!("create/assemble.rs"),
        false,
    ),
    ("src/bin/run.rs", include_str!("create/run.rs"), false),
    (
        "src/bin/save-artifacts.rs",
        include_str!("create/save-artifacts.rs"),
        false,
    ),
    ("src/bin/usage.rs", include_str!("create/usage.rs"), false),
    ("Containerfile", include_str!("create/Containerfile"), false),
    ("build", include_str!("create/build"), true),
    ("README.md", include_str!("create/README.md"), false),
    (".gitignore", include_str!("create/gitignore"), false),
    (
        "test/test-app/index.html",
        include_str!("create/index.html"),
        false,
    ),
];

/// Writes the scaffold of builder `name` into `dir` (created if missing); `sdk_path` is where
/// ws2i-sdk's Cargo.toml lives.
pub fn create(name: &BuilderName, dir: &Path, sdk_path: &Path) -> Result<Created> {
    let sdk = std::fs::canonicalize(sdk_path).with_context(|| {
        format!(
            "ws2i-sdk not found at {}: give its directory with --sdk-path",
            sdk_path.display()
        )
    })?;
    if !sdk.join("Cargo.toml").is_file() {
        anyhow::bail!(
            "{} has no Cargo.toml: --sdk-path must be ws2i's sdk/ directory",
            sdk.display()
        );
    }
    // TOML basic string: the path is escaped, not trusted.
    let sdk_toml = sdk
        .to_string_lossy()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    let mut out = Created::default();
    for (rel, template, exec) in FILES {
        let path = dir.join(rel);
        if path.symlink_metadata().is_ok() {
            out.skipped.push(rel.to_string());
            continue;
        }
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let text = template
            .replace("{{name}}", &name.0)
            .replace("{{sdk_path}}", &sdk_toml);
        let mut tmp = tempfile::NamedTempFile::new_in(parent)
            .with_context(|| format!("creating a file in {}", parent.display()))?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        let mode = if *exec { 0o755 } else { 0o644 };
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
        // persist_noclobber: a file appearing meanwhile is not overwritten either.
        tmp.persist_noclobber(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        out.written.push(rel.to_string());
    }
    Ok(out)
}
