//! How the build's stages report: each is a named `==>` step of the log, timed, and its time
//! is kept for the result.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use crate::s2i::{BuildError, StepTime};
use crate::sandbox::{LogSink, Stream};

/// Receives the build's log: hook lines (via [`LogSink`]) and ws2i's own steps.
pub trait BuildLog: LogSink {
    /// A ws2i step begins.
    fn step(&self, what: &str);
    /// The step that began last finished after `took`.
    fn step_done(&self, what: &str, took: Duration);
    /// Something the user should know that does not stop the build.
    fn warning(&self, msg: &str);
}

/// The log and the record of the stages run so far.
pub(crate) struct Steps<'a> {
    log: &'a dyn BuildLog,
    done: Vec<StepTime>,
    warnings: RefCell<Vec<String>>,
}

impl<'a> Steps<'a> {
    pub(crate) fn new(log: &'a dyn BuildLog) -> Self {
        Steps { log, done: Vec::new(), warnings: RefCell::new(Vec::new()) }
    }

    /// Logs a warning and keeps it for the result.
    pub(crate) fn warn(&self, msg: String) {
        self.log.warning(&msg);
        self.warnings.borrow_mut().push(msg);
    }

    /// The stage times and warnings, in order.
    pub(crate) fn finish(self) -> (Vec<StepTime>, Vec<String>) {
        (self.done, self.warnings.into_inner())
    }

    /// Runs one stage as a `==>` step.
    pub(crate) fn run<T>(
        &mut self,
        what: &str,
        f: impl FnOnce() -> Result<T, BuildError>,
    ) -> Result<T, BuildError> {
        self.log.step(what);
        let t = Instant::now();
        let r = f()?;
        let took = t.elapsed();
        self.log.step_done(what, took);
        self.done.push(StepTime {
            step: what.to_string(),
            millis: took.as_millis() as u64,
        });
        Ok(r)
    }
}


/// The log the CLI prints, and the simplest one to embed: hook output as written and ws2i's
/// steps (`ws2i: ==> STEP`, `ws2i: <== STEP (0.12s)`) on stderr; `quiet` keeps only warnings.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrLog {
    pub quiet: bool,
}

impl LogSink for StderrLog {
    fn line(&self, _stream: Stream, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
    fn notice(&self, msg: &str) {
        if !self.quiet {
            eprintln!("ws2i: {msg}");
        }
    }
}

impl BuildLog for StderrLog {
    fn step(&self, what: &str) {
        if !self.quiet {
            eprintln!("ws2i: ==> {what}");
        }
    }
    fn step_done(&self, what: &str, took: Duration) {
        if !self.quiet {
            eprintln!("ws2i: <== {what} ({:.2}s)", took.as_secs_f64());
        }
    }
    fn warning(&self, msg: &str) {
        eprintln!("ws2i: warning: {msg}");
    }
}
