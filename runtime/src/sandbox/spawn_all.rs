//! `ws2i.spawn_all` (docs/hooks.md): several children of one hook at once. Each child is what a
//! `ws2i.spawn` call would run - the same rootfs, mounts, budgets and log - and the run's job
//! budget (`--jobs`, default the cores) bounds how many modules run at the same moment, the
//! hook's own thread included: a batch borrows free job slots for helper threads and the
//! calling thread works through the batch too, so nested batches can never wait on each other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::budget::RunState;
use super::ctx::RunCtx;

/// One child of a batch, as decoded from the guest's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Child {
    pub program: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    /// File for the child's stdout ("" = the parent's log).
    pub out: String,
}

/// What became of one child: `Ok(code)` when it ran, `Err(errno)` when it was refused.
pub(crate) type Outcome = Result<i32, i32>;

/// Decodes `count` records laid out back to back, each five fields (program, argv, env, cwd,
/// out), each field a little-endian u32 byte length and that many bytes; argv and env are
/// lists as `ws2i.spawn` takes them (NUL-terminated entries). `None` if malformed.
pub(crate) fn decode(mut bytes: &[u8], count: u32) -> Option<Vec<Child>> {
    fn field<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        let (f, rest) = (rest.get(..len)?, rest.get(len..)?);
        *bytes = rest;
        Some(f)
    }
    fn text(f: &[u8]) -> Option<String> {
        String::from_utf8(f.to_vec()).ok()
    }
    fn list(f: &[u8]) -> Option<Vec<String>> {
        if f.is_empty() {
            return Some(Vec::new());
        }
        f.strip_suffix(b"\0")?.split(|&b| b == 0).map(text).collect()
    }
    let mut out = Vec::new();
    for _ in 0..count {
        let program = text(field(&mut bytes)?)?;
        let argv = list(field(&mut bytes)?)?;
        let env = list(field(&mut bytes)?)?
            .into_iter()
            .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect::<Option<Vec<_>>>()?;
        let cwd = text(field(&mut bytes)?)?;
        let out_path = text(field(&mut bytes)?)?;
        out.push(Child { program, argv, env, cwd, out: out_path });
    }
    bytes.is_empty().then_some(out)
}

/// Job slots a batch may use besides the thread that runs it.
impl RunState {
    /// Takes up to `want` free job slots; returns how many it got (maybe 0).
    pub(crate) fn take_jobs(&self, want: u32) -> u32 {
        let mut free = self.jobs_free.load(Ordering::Relaxed);
        loop {
            let take = free.min(want);
            if take == 0 {
                return 0;
            }
            match self.jobs_free.compare_exchange_weak(free, free - take, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return take,
                Err(now) => free = now,
            }
        }
    }

    pub(crate) fn give_jobs(&self, n: u32) {
        self.jobs_free.fetch_add(n, Ordering::AcqRel);
    }
}

/// Runs every child with `one`, up to the free job slots at once, and returns their outcomes
/// in order. A fatal error of a child (a spent budget) stops handing out the rest, which are
/// not run; the first such error is returned once the running ones have finished.
pub(crate) fn run_all<F>(ctx: &Arc<RunCtx>, children: Vec<Child>, one: F) -> wasmtime::Result<Vec<Outcome>>
where
    F: Fn(&Arc<RunCtx>, Child) -> wasmtime::Result<Outcome> + Sync,
{
    let n = children.len();
    let helpers = ctx.state.take_jobs(u32::try_from(n.saturating_sub(1)).unwrap_or(u32::MAX));
    let results: Vec<Mutex<Option<wasmtime::Result<Outcome>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(child) = children.get(i) else { return };
        let r = one(ctx, child.clone());
        let fatal = r.is_err();
        *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        if fatal {
            next.store(n, Ordering::Relaxed);
            return;
        }
    };
    std::thread::scope(|s| {
        for _ in 0..helpers {
            // A thread that cannot be started only means fewer at once.
            let _ = std::thread::Builder::new().name("ws2i-job".into()).spawn_scoped(s, work);
        }
        work();
    });
    ctx.state.give_jobs(helpers);
    let mut outcomes = Vec::with_capacity(n);
    for r in results {
        match r.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(o)) => outcomes.push(o),
            Some(Err(e)) => return Err(e),
            // Not run because an earlier child spent a budget; that error is in the list.
            None => continue,
        }
    }
    if outcomes.len() < n {
        return Err(wasmtime::Error::msg("a spawned child stopped the batch"));
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(children: &[Child]) -> Vec<u8> {
        let mut b = Vec::new();
        let mut field = |f: &[u8]| {
            b.extend_from_slice(&(f.len() as u32).to_le_bytes());
            b.extend_from_slice(f);
        };
        let list = |l: &[String]| l.iter().flat_map(|s| s.bytes().chain([0])).collect::<Vec<u8>>();
        for c in children {
            field(c.program.as_bytes());
            field(&list(&c.argv));
            field(&list(&c.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>()));
            field(c.cwd.as_bytes());
            field(c.out.as_bytes());
        }
        b
    }

    #[test]
    fn batches_decode_and_malformed_ones_are_refused() {
        let kids = vec![
            Child {
                program: "/bin/gz.wasm".into(),
                argv: vec!["gz".into(), "a b".into()],
                env: vec![("K".into(), "v=1".into())],
                cwd: "/src".into(),
                out: "".into(),
            },
            Child { program: "/x".into(), argv: vec![], env: vec![], cwd: "".into(), out: "/tmp/o".into() },
        ];
        let bytes = encode(&kids);
        assert_eq!(decode(&bytes, 2), Some(kids.clone()));
        assert_eq!(decode(&bytes, 1), None, "trailing bytes");
        assert_eq!(decode(&bytes, 3), None, "too few records");
        assert_eq!(decode(&bytes[..bytes.len() - 1], 2), None, "cut short");
        let mut no_nul = encode(&kids[..1]);
        let at = 4 + kids[0].program.len() + 4 + 2; // inside argv: "gz\0" -> "gzX"
        no_nul[at] = b'X';
        assert_eq!(decode(&no_nul, 1).map(|k| k[0].argv.clone()), Some(vec!["gzXa b".to_string()]));
        let mut bad_env = Vec::new();
        for f in [&b"/p"[..], b"", b"NOEQUALS\0", b"", b""] {
            bad_env.extend_from_slice(&(f.len() as u32).to_le_bytes());
            bad_env.extend_from_slice(f);
        }
        assert_eq!(decode(&bad_env, 1), None, "env entry without =");
        let mut huge = Vec::new();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge, 1), None);
        assert_eq!(decode(&[], 0), Some(vec![]));
    }
}
