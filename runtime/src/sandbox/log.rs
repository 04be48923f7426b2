//! Streaming a hook's stdout/stderr: split into lines as written, charged to the log budget,
//! handed to the caller's thread over a channel (the `LogSink` need not be `'static`).
//!
//! What the log holds in ws2i's memory is bounded whatever the shape of the output: a line is
//! cut at [`MAX_LINE`], the lines of one write travel in batches of at most [`BATCH_COST`], and
//! the channel holds at most [`QUEUE_BATCHES`] batches, so a hook that writes faster than the
//! sink takes its lines waits (as a process writing to a full pipe does) instead of queueing
//! without end. Past the log budget nothing more is queued at all.

use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
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
    /// Lines of one stream, in order.
    Lines(Stream, Vec<String>),
    Notice(String),
    /// The run is over (its result is on a separate channel).
    Done,
}

/// The log budget, shared by a hook and all its spawned children.
pub(crate) struct LogBudget {
    pub limit: u64,
    pub used: AtomicU64,
    pub truncated: AtomicBool,
    pub events: SyncSender<Event>,
}

/// Longest line handed to the sink; a longer one is cut into pieces of this size.
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// What one batch of lines may cost: their bytes plus [`LINE_OVERHEAD`] each.
pub(crate) const BATCH_COST: usize = 256 * 1024;
/// Bytes a line costs in memory besides its text (the `String` and its slot), so that a flood
/// of empty lines is bounded like any other output.
const LINE_OVERHEAD: usize = 32;
/// Batches the channel to the sink holds before the writing guest waits: with
/// [`BATCH_COST`], 16 MiB at most in flight.
pub(crate) const QUEUE_BATCHES: usize = 64;
/// Longest notice (a trap's backtrace, a spawn error); longer ones are cut.
pub(crate) const MAX_NOTICE: usize = 8 * 1024;

/// `s` cut to at most `max` bytes (at a char boundary), saying how much was cut.
pub(crate) fn clip(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    let cut = s.len() - at;
    s.truncate(at);
    s.push_str(&format!("… ({cut} more bytes cut)"));
    s
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
    batch: Vec<String>,
    batch_cost: usize,
}

impl LineSplitter {
    fn feed(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            // Past the budget the bytes are only counted (RunStats::log_bytes).
            if self.budget.truncated.load(Ordering::Relaxed) {
                self.budget.used.fetch_add(buf.len() as u64, Ordering::Relaxed);
                self.partial.clear();
                break;
            }
            // At most `room` more bytes fit the line; a newline right after them still ends it.
            let room = MAX_LINE - self.partial.len();
            let (chunk, rest, end) = match buf[..buf.len().min(room + 1)].iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], &buf[i + 1..], true),
                None => {
                    let (chunk, rest) = buf.split_at(buf.len().min(room));
                    (chunk, rest, false)
                }
            };
            self.partial.extend_from_slice(chunk);
            buf = rest;
            if end || self.partial.len() >= MAX_LINE {
                self.emit();
            }
        }
        self.send_batch();
    }

    fn emit(&mut self) {
        let line = std::mem::take(&mut self.partial);
        if self.budget.charge(line.len() as u64 + 1) {
            self.batch_cost += line.len() + LINE_OVERHEAD;
            self.batch.push(String::from_utf8_lossy(&line).into_owned());
            if self.batch_cost >= BATCH_COST {
                self.send_batch();
            }
        }
    }

    fn send_batch(&mut self) {
        if !self.batch.is_empty() {
            let lines = std::mem::take(&mut self.batch);
            self.batch_cost = 0;
            // Blocks while the sink is behind; fails only once the run was abandoned.
            let _ = self.budget.events.send(Event::Lines(self.stream, lines));
        }
    }

    pub(crate) fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
        self.send_batch();
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
        Sink::Lines(Arc::new(Mutex::new(LineSplitter { stream, budget, partial: Vec::new(), batch: Vec::new(), batch_cost: 0 })))
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
