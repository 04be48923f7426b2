//! Per-build logs: `$WS2I_HOME/pipeline/logs/<namespace>/<build>.log`, written line by line as the
//! build runs (so `ws2i logs -f` in another process follows it, and the log outlives the process),
//! and echoed to the caller prefixed by the build name, as one stream for a whole cascade.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::sandbox::{LogSink, Stream};

/// Where the lines of a running build also go (the terminal, prefixed).
pub trait Echo: Send + Sync {
    fn line(&self, build: &str, line: &str);
}

pub fn log_path(home: &Path, ns: &str, build: &str) -> PathBuf {
    home.join("pipeline/logs")
        .join(ns)
        .join(format!("{build}.log"))
}

const TAIL_LINES: usize = 12;

/// The log of one running build.
pub struct BuildLogFile<'a> {
    build: String,
    file: Mutex<File>,
    echo: &'a dyn Echo,
    tail: Mutex<VecDeque<String>>,
}

impl<'a> BuildLogFile<'a> {
    /// Creates (truncating) the log of `build`.
    pub fn create(home: &Path, ns: &str, build: &str, echo: &'a dyn Echo) -> Result<Self> {
        let p = log_path(home, ns, build);
        std::fs::create_dir_all(p.parent().expect("has a parent"))
            .with_context(|| format!("creating {}", p.display()))?;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&p)
            .with_context(|| format!("creating {}", p.display()))?;
        Ok(BuildLogFile {
            build: build.into(),
            file: Mutex::new(file),
            echo,
            tail: Mutex::new(VecDeque::new()),
        })
    }

    pub fn write_line(&self, line: &str) {
        // A full disk must not fail the build; the echo still shows the line.
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{line}");
        }
        if let Ok(mut t) = self.tail.lock() {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line.to_string());
        }
        self.echo.line(&self.build, line);
    }

    /// The last lines written (OKD's `logSnippet` of a failed build).
    pub fn snippet(&self) -> String {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

impl LogSink for BuildLogFile<'_> {
    fn line(&self, _stream: Stream, line: &str) {
        self.write_line(line);
    }
    fn notice(&self, msg: &str) {
        self.write_line(&format!("ws2i: {msg}"));
    }
}

impl crate::s2i::BuildLog for BuildLogFile<'_> {
    fn step(&self, what: &str) {
        self.write_line(&format!("ws2i: ==> {what}"));
    }
    fn step_done(&self, what: &str, took: Duration) {
        self.write_line(&format!("ws2i: <== {what} ({:.2}s)", took.as_secs_f64()));
    }
    fn warning(&self, msg: &str) {
        self.write_line(&format!("ws2i: warning: {msg}"));
    }
}

/// Prints the log of a build; with `follow`, keeps printing new lines until `done()` says the
/// build reached a terminal phase and the file has nothing more.
pub fn print(
    path: &Path,
    follow: bool,
    mut done: impl FnMut() -> Result<bool>,
    out: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut pos = 0u64;
    let mut partial = String::new();
    loop {
        // Read `done` before the file, so lines written just before the end are not missed.
        let finished = !follow || done()?;
        if let Ok(mut f) = File::open(path) {
            f.seek(SeekFrom::Start(pos))?;
            let mut r = BufReader::new(f);
            loop {
                let mut line = String::new();
                let n = r.read_line(&mut line)?;
                if n == 0 {
                    break;
                }
                pos += n as u64;
                if !line.ends_with('\n') && !finished {
                    partial.push_str(&line); // the rest comes in the next round
                    continue;
                }
                partial.push_str(line.trim_end_matches('\n'));
                out(&partial);
                partial.clear();
            }
        }
        if finished {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Mutex<Vec<String>>);
    impl Echo for Collect {
        fn line(&self, build: &str, line: &str) {
            self.0.lock().unwrap().push(format!("{build}: {line}"));
        }
    }

    #[test]
    fn lines_go_to_the_file_and_the_echo_and_survive() {
        let t = tempfile::tempdir().unwrap();
        let echo = Collect(Mutex::new(Vec::new()));
        {
            let log = BuildLogFile::create(t.path(), "default", "app-1", &echo).unwrap();
            log.line(Stream::Stdout, "compiling");
            log.notice("done");
            assert_eq!(log.snippet(), "compiling\nws2i: done");
        }
        assert_eq!(
            *echo.0.lock().unwrap(),
            ["app-1: compiling", "app-1: ws2i: done"]
        );
        let mut got = Vec::new();
        print(
            &log_path(t.path(), "default", "app-1"),
            false,
            || Ok(true),
            &mut |l| got.push(l.to_string()),
        )
        .unwrap();
        assert_eq!(got, ["compiling", "ws2i: done"]);
    }
}
