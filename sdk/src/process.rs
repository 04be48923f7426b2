//! Running another WASI module of the rootfs (a compiler, an interpreter)
//! over the `ws2i.spawn` import, with a `std::process::Command`-like builder.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::abi;

/// A child module to run. Like `std::process::Command`, the child starts
/// with this hook's environment (which ws2i built from the builder's ENV and
/// the build's variables, never the host's) unless [`env_clear`](Self::env_clear)
/// is called, and runs in this hook's working directory unless told otherwise.
///
/// ```no_run
/// use ws2i_sdk::Command;
/// let status = Command::new("/usr/local/go/pkg/tool/wasip1_wasm/compile.wasm")
///     .args(["-o", "/tmp/main.a", "main.go"])
///     .env("GOOS", "wasip1")
///     .current_dir("/opt/app-root/src")
///     .status()?;
/// if !status.success() {
///     return Err(std::io::Error::other(format!("compile failed: {status}")));
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Command {
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    stdout: Option<PathBuf>,
}

/// How a child ended: its exit code (`134` if it trapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus(i32);

impl ExitStatus {
    pub fn success(self) -> bool {
        self.0 == 0
    }
    pub fn code(self) -> i32 {
        self.0
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl Command {
    /// `program` is the module's path in the rootfs, e.g. `/usr/bin/tool.wasm`.
    pub fn new(program: impl AsRef<Path>) -> Self {
        Command {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            env: std::env::vars().collect(),
            cwd: None,
            stdout: None,
        }
    }

    pub fn arg(&mut self, arg: impl AsRef<str>) -> &mut Self {
        self.args.push(arg.as_ref().to_string());
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    pub fn env(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> &mut Self {
        self.env
            .insert(key.as_ref().to_string(), value.as_ref().to_string());
        self
    }

    pub fn env_remove(&mut self, key: impl AsRef<str>) -> &mut Self {
        self.env.remove(key.as_ref());
        self
    }

    /// Starts the child with an empty environment.
    pub fn env_clear(&mut self) -> &mut Self {
        self.env.clear();
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Sends the child's stdout to this file (created or truncated) instead
    /// of the build log.
    pub fn stdout_file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.stdout = Some(path.as_ref().to_path_buf());
        self
    }

    /// The encoded arguments of `ws2i.spawn`, exactly as they are passed.
    pub fn encode(&self) -> io::Result<EncodedSpawn> {
        let program = absolute(&self.program)?;
        let argv0 = program.clone();
        let argv = abi::encode_list(
            std::iter::once(argv0.as_str()).chain(self.args.iter().map(String::as_str)),
        )?;
        let env = abi::encode_env(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        let cwd = match &self.cwd {
            Some(c) => absolute(c)?,
            None => std::env::current_dir()
                .ok()
                .and_then(|d| d.into_os_string().into_string().ok())
                .unwrap_or_default(),
        };
        let stdout = self
            .stdout
            .as_deref()
            .map(absolute)
            .transpose()?
            .unwrap_or_default();
        Ok(EncodedSpawn {
            program: program.into_bytes(),
            argv,
            env,
            cwd: cwd.into_bytes(),
            stdout: stdout.into_bytes(),
        })
    }

    /// Runs the child and waits for it. An error means it could not be run
    /// (missing, not WebAssembly, ...); a non-zero exit is an `Ok` status.
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        abi::spawn(&self.encode()?.request()).map(ExitStatus)
    }

    /// Runs every command at once, up to the build's job budget (`ws2i build --jobs`, the
    /// cores by default), and waits for all: one result per command, in order. The outer
    /// error means the batch could not be encoded or was refused.
    ///
    /// ```no_run
    /// use ws2i_sdk::Command;
    /// let shards: Vec<Command> = (0..4)
    ///     .map(|i| Command::new("/usr/libexec/s2i/compress").arg(i.to_string()).clone())
    ///     .collect();
    /// for status in Command::status_all(&shards)? {
    ///     if !status?.success() {
    ///         return Err(std::io::Error::other("a shard failed"));
    ///     }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn status_all(cmds: &[Command]) -> io::Result<Vec<io::Result<ExitStatus>>> {
        let encoded = cmds.iter().map(Command::encode).collect::<io::Result<Vec<_>>>()?;
        let reqs: Vec<abi::SpawnRequest<'_>> = encoded.iter().map(EncodedSpawn::request).collect();
        Ok(abi::spawn_all(&reqs)?.into_iter().map(|r| r.map(ExitStatus)).collect())
    }

    /// Runs the child and turns a non-zero exit into an error naming it.
    pub fn run(&mut self) -> io::Result<()> {
        let status = self.status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "{} failed with {status}",
                self.program.display()
            )))
        }
    }
}

/// [`Command::encode`]'s result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedSpawn {
    pub program: Vec<u8>,
    pub argv: Vec<u8>,
    pub env: Vec<u8>,
    pub cwd: Vec<u8>,
    pub stdout: Vec<u8>,
}

impl EncodedSpawn {
    /// The arguments as the ABI functions take them.
    pub fn request(&self) -> abi::SpawnRequest<'_> {
        abi::SpawnRequest {
            program: &self.program,
            argv: &self.argv,
            env: &self.env,
            cwd: &self.cwd,
            stdout: &self.stdout,
        }
    }
}

fn absolute(p: &Path) -> io::Result<String> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    abs.into_os_string().into_string().map_err(|p| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: path is not UTF-8", Path::new(&p).display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_abi_arguments() {
        let mut c = Command::new("/usr/bin/tool.wasm");
        c.env_clear()
            .arg("-v")
            .args(["a b", ""])
            .env("B", "2")
            .env("A", "1=x")
            .current_dir("/work")
            .stdout_file("/tmp/out");
        let e = c.encode().unwrap();
        assert_eq!(e.program, b"/usr/bin/tool.wasm");
        assert_eq!(e.argv, b"/usr/bin/tool.wasm\0-v\0a b\0\0");
        assert_eq!(e.env, b"A=1=x\0B=2\0");
        assert_eq!(e.cwd, b"/work");
        assert_eq!(e.stdout, b"/tmp/out");
    }

    #[test]
    fn inherits_the_environment_and_refuses_nul() {
        let c = Command::new("/t.wasm");
        let e = c.encode().unwrap();
        // Other tests change the environment concurrently: check the shape only.
        assert!(abi::decode_list(&e.env).is_some());
        assert!(e.stdout.is_empty());
        assert!(Command::new("/t.wasm").arg("a\0b").encode().is_err());
    }

    #[cfg(not(target_os = "wasi"))]
    #[test]
    fn spawning_natively_is_unsupported() {
        let err = Command::new("/t.wasm").env_clear().status().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }
}
