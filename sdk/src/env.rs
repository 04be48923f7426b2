//! The S2I paths and the environment a hook is given (docs/hooks.md,
//! "Paths" and "Environment").

use std::ffi::OsString;
use std::path::PathBuf;

/// The destination when neither `$DESTINATION` nor the builder's
/// `io.openshift.s2i.destination` label says otherwise (S2I's default).
pub const DEFAULT_DESTINATION: &str = "/tmp";

/// Where S2I builders keep their hooks, and where ws2i looks by default.
pub const SCRIPTS_DIR: &str = "/usr/libexec/s2i";

/// The directory the build inputs were placed in: `$DESTINATION`, which ws2i
/// sets from `--destination` or the builder's `io.openshift.s2i.destination`
/// label; `/tmp` when unset or empty.
pub fn destination() -> PathBuf {
    match std::env::var_os("DESTINATION") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(DEFAULT_DESTINATION),
    }
}

/// `$DESTINATION/src`: the application source (assemble's input).
pub fn source_dir() -> PathBuf {
    destination().join("src")
}

/// `$DESTINATION/artifacts`: what the previous image's `save-artifacts`
/// produced, present only in an incremental build.
pub fn artifacts_dir() -> PathBuf {
    destination().join("artifacts")
}

/// `Some(dir)` when this is an incremental build with artifacts to restore.
pub fn artifacts() -> Option<PathBuf> {
    let dir = artifacts_dir();
    dir.is_dir().then_some(dir)
}

/// A variable of the hook's environment, `None` when unset or not UTF-8.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A variable, or `default` when unset or empty.
pub fn var_or(name: &str, default: &str) -> String {
    match var(name) {
        Some(v) if !v.is_empty() => v,
        _ => default.to_string(),
    }
}

/// A boolean switch: set to `1`, `true`, `yes` or `on` (any case).
pub fn flag(name: &str) -> bool {
    var(name).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// A whitespace- or comma-separated list variable (e.g. `TEST_PRINT_ENV="A B"`).
pub fn list(name: &str) -> Vec<String> {
    var(name)
        .unwrap_or_default()
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The hook's whole environment, the starting point of a spawned child's.
pub fn vars() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test mutates the process environment, so keep it in one function.
    #[test]
    fn paths_and_vars_follow_the_environment() {
        std::env::remove_var("DESTINATION");
        assert_eq!(destination(), PathBuf::from("/tmp"));
        assert_eq!(source_dir(), PathBuf::from("/tmp/src"));
        std::env::set_var("DESTINATION", "");
        assert_eq!(destination(), PathBuf::from("/tmp"));
        std::env::set_var("DESTINATION", "/opt/s2i");
        assert_eq!(artifacts_dir(), PathBuf::from("/opt/s2i/artifacts"));
        std::env::remove_var("DESTINATION");

        std::env::set_var("WS2I_SDK_T_LIST", " A, B  C,");
        assert_eq!(list("WS2I_SDK_T_LIST"), ["A", "B", "C"]);
        std::env::set_var("WS2I_SDK_T_FLAG", "Yes");
        assert!(flag("WS2I_SDK_T_FLAG"));
        assert!(!flag("WS2I_SDK_T_UNSET"));
        assert_eq!(var_or("WS2I_SDK_T_UNSET", "d"), "d");
    }
}
