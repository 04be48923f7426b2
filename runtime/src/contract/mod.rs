//! The vocabulary of the S2I contract (docs/hooks.md) that more than one layer speaks: the hook
//! names, and environment files (`.s2i/environment`, `--environment-file`). The source stage
//! reads both out of a source tree; the S2I build resolves and runs them. Uses nothing else of
//! ws2i.

pub mod envfile;

/// The S2I script names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScriptName {
    Assemble,
    Run,
    SaveArtifacts,
    Usage,
    AssembleRuntime,
}

impl ScriptName {
    pub const ALL: [ScriptName; 5] =
        [Self::Assemble, Self::Run, Self::SaveArtifacts, Self::Usage, Self::AssembleRuntime];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assemble => "assemble",
            Self::Run => "run",
            Self::SaveArtifacts => "save-artifacts",
            Self::Usage => "usage",
            Self::AssembleRuntime => "assemble-runtime",
        }
    }
    /// File names under which the script is looked up, in order.
    pub fn file_names(self) -> [String; 2] {
        [self.as_str().to_string(), format!("{}.wasm", self.as_str())]
    }
    pub fn from_file_name(name: &str) -> Option<Self> {
        let base = name.strip_suffix(".wasm").unwrap_or(name);
        Self::ALL.into_iter().find(|s| s.as_str() == base)
    }
}

impl std::fmt::Display for ScriptName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

