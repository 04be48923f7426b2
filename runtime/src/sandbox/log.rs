//! Streaming a hook's stdout/stderr: split into lines as written, charged to the log budget,
//! handed to the caller's thread over a channel (the `LogSink` need not be `'static`).

use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Which of the hook's streams a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Receives a hook's output, line by line, as it is written.
pub trait LogSink: Send + Sync {
    fn line(&self, stream: Stream, line: &str);
    /// A message from ws2i itself about the run (truncation, cache use).
    fn notice(&self, msg: &str);
}

pub(crate) enum Event {
    Line(Stream, String),
    Notice(String),
    /// The run is over (its result is on a separate channel).
    Done,
}

/// The log budget, shared by a hook and all its spawned children.
pub(crate) struct LogBudget {
    pub limit: u64,
    pub used: AtomicU64,
    pub truncated: AtomicBool,
    pub events: Sender<Event>,
}

impl LogBudget {
    /// Charge `n` bytes; false once the budget is spent (the first refusal sends the notice).
    fn charge(&self, n: u64) -> bool {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        if before + n <= self.limit {
            return true;
        }
        if !self.truncated.swap(true, Ordering::Relaxed) {
            let _ = self.events.send(Event::Notice(format!(
                "log truncated: hook exceeded its log budget ({}); further output is dropped",
                crate::Size(self.limit)
            )));
        }
        false
    }
}

/// Splits bytes into lines. Over-long lines are cut so one line cannot hold memory hostage.
pub(crate) struct LineSplitter {
    stream: Stream,
    budget: Arc<LogBudget>,
    partial: Vec<u8>,
}

const MAX_LINE: usize = 64 * 1024;

impl LineSplitter {
    fn feed(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            let (chunk, rest, end) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], &buf[i + 1..], true),
                None => (buf, &buf[buf.len()..], false),
            };
            self.partial.extend_from_slice(chunk);
            buf = rest;
            if end || self.partial.len() >= MAX_LINE {
                self.emit();
            }
        }
    }

    fn emit(&mut self) {
        let line = std::mem::take(&mut self.partial);
        if self.budget.charge(line.len() as u64 + 1) {
            let text = String::from_utf8_lossy(&line).into_owned();
            let _ = self.budget.events.send(Event::Line(self.stream, text));
        }
    }

    pub(crate) fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
    }
}

/// Where one guest stream goes.
#[derive(Clone)]
pub(crate) enum Sink {
    Lines(Arc<Mutex<LineSplitter>>),
    /// Raw bytes to a writer (save-artifacts' tar stream, or a spawn redirect); not charged to the log.
    Bytes(Arc<Mutex<Box<dyn Write + Send>>>),
}

impl Sink {
    pub(crate) fn lines(stream: Stream, budget: Arc<LogBudget>) -> Self {
        Sink::Lines(Arc::new(Mutex::new(LineSplitter { stream, budget, partial: Vec::new() })))
    }

    pub(crate) fn bytes(w: Box<dyn Write + Send>) -> Self {
        Sink::Bytes(Arc::new(Mutex::new(w)))
    }

    fn write(&self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Lines(s) => {
                s.lock().unwrap_or_else(|e| e.into_inner()).feed(buf);
                Ok(())
            }
            Sink::Bytes(w) => w.lock().unwrap_or_else(|e| e.into_inner()).write_all(buf),
        }
    }

    /// Emit a trailing unterminated line / flush the writer once the guest is done.
    pub(crate) fn finish(&self) -> std::io::Result<()> {
        match self {
            Sink::Lines(s) => {
                s.lock().unwrap_or_else(|e| e.into_inner()).flush_partial();
                Ok(())
            }
            Sink::Bytes(w) => w.lock().unwrap_or_else(|e| e.into_inner()).flush(),
        }
    }
}

impl AsyncWrite for Sink {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.write(buf).map(|()| buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Sink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Sink {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}
