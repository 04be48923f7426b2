//! The `ws2i` host imports for core modules (`spawn`, `chmod`; ABI in docs/hooks.md) and
//! resolving guest paths on the host side the way WASI does: inside the rootfs, through cap-std.

use std::path::{Component, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use wasmtime::{Caller, Extern, Linker};

use super::error::{BudgetKind, SandboxError};
use super::log::{clip, Event, Sink, Stream, MAX_NOTICE};
use super::ctx::{Invocation, RunCtx, RunError};
use super::spawn_all::{self, Child};

/// What the host imports need from the store they are linked into. The runner implements it, so
/// `ws2i.spawn` can start a child without this module knowing how modules are run.
pub(crate) trait HostState: Send + 'static {
    fn ctx(&self) -> &Arc<RunCtx>;
    /// How deep in `ws2i.spawn` calls this store runs (the hook itself is 0).
    fn depth(&self) -> u32;
    /// Run a spawned child to completion; `Ok` carries its exit code.
    fn run_child(ctx: &Arc<RunCtx>, inv: Invocation) -> Result<i32, RunError>;
}

// wasi_snapshot_preview1 errno values.
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_INVAL: i32 = 28;
const ERRNO_ISDIR: i32 = 31;
const ERRNO_NOENT: i32 = 44;
const ERRNO_NOEXEC: i32 = 45;
const ERRNO_PERM: i32 = 63;
const ERRNO_IO: i32 = 29;

/// Lexically normalise a guest path: `..` cannot climb above `/` (as WASI clamps it).
pub(crate) fn normalize(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in std::path::Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts
}

/// The directory a guest path lives under (rootfs or the longest matching mount), the path
/// relative to it, and whether it is read-only. Symlinks are resolved later by cap-std, which
/// refuses any that lead outside the directory (absolute ones included).
pub(crate) fn resolve(ctx: &RunCtx, guest: &str) -> std::io::Result<(Dir, PathBuf, bool)> {
    let parts = normalize(guest);
    let mut best: Option<(usize, &super::Mount)> = None;
    for m in &ctx.mounts {
        let mp = normalize(&m.guest);
        if parts.len() >= mp.len() && parts[..mp.len()] == mp[..] && best.is_none_or(|(n, _)| mp.len() > n) {
            best = Some((mp.len(), m));
        }
    }
    let (host, skip, ro) = match best {
        Some((n, m)) => (&m.host, n, m.read_only),
        None => (&ctx.rootfs, 0, ctx.rootfs_read_only),
    };
    let dir = Dir::open_ambient_dir(host, ambient_authority())?;
    let rel: PathBuf = if parts.len() == skip { PathBuf::from(".") } else { parts[skip..].iter().collect() };
    Ok((dir, rel, ro))
}

/// The program file, read only if it is a regular file of at most `max` bytes.
pub(crate) fn read_guest_file(ctx: &RunCtx, program: &str, max: u64) -> Result<Vec<u8>, SandboxError> {
    use std::io::Read;
    let not_found = || SandboxError::NotFound { path: program.into() };
    let too_big = |size: u64| SandboxError::Compile {
        path: program.into(),
        message: format!(
            "the module is {}, more than the {} a module may have under a {} memory budget \
             (an eighth of --memory, at most {}): compiling it would take many times that",
            crate::Size(size),
            crate::Size(max),
            ctx.state.budget.memory,
            crate::Size(super::budget::MAX_MODULE)
        ),
    };
    let (dir, rel, _) = resolve(ctx, program).map_err(|e| SandboxError::io(format!("cannot open the rootfs for {program}"), e))?;
    match dir.metadata(&rel) {
        Ok(md) if md.is_file() && md.len() > max => return Err(too_big(md.len())),
        Ok(md) if md.is_file() => {}
        Ok(_) => return Err(not_found()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        // cap-std refuses escapes with PermissionDenied-like errors: to the hook it does not exist.
        Err(_) => return Err(not_found()),
    }
    let read_err = |e| SandboxError::io(format!("cannot read hook {program}"), e);
    let file = dir.open(&rel).map_err(read_err)?;
    // The file may grow between the check and the read (a child writing it): read one byte past.
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(read_err)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

fn memory<T>(caller: &mut Caller<'_, T>) -> Option<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

fn read_bytes<T>(caller: &mut Caller<'_, T>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = memory(caller)?;
    let (ptr, len) = (usize::try_from(ptr as u32).ok()?, usize::try_from(len as u32).ok()?);
    mem.data(&*caller).get(ptr..ptr.checked_add(len)?).map(<[u8]>::to_vec)
}

fn read_str<T>(caller: &mut Caller<'_, T>, ptr: i32, len: i32) -> Option<String> {
    String::from_utf8(read_bytes(caller, ptr, len)?).ok()
}

fn read_list<T>(caller: &mut Caller<'_, T>, ptr: i32, len: i32) -> Option<Vec<String>> {
    if len == 0 {
        return Some(Vec::new());
    }
    let bytes = read_bytes(caller, ptr, len)?;
    let body = bytes.strip_suffix(b"\0")?;
    body.split(|&b| b == 0).map(|s| String::from_utf8(s.to_vec()).ok()).collect()
}

pub(crate) fn add_to_linker<T: HostState>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "ws2i",
        "spawn",
        |mut caller: Caller<'_, T>,
         prog: i32,
         prog_len: i32,
         argv: i32,
         argv_len: i32,
         env: i32,
         env_len: i32,
         cwd: i32,
         cwd_len: i32,
         out: i32,
         out_len: i32,
         exit_ptr: i32|
         -> wasmtime::Result<i32> {
            let args = (|| {
                let program = read_str(&mut caller, prog, prog_len)?;
                let argv = read_list(&mut caller, argv, argv_len)?;
                let env = read_list(&mut caller, env, env_len)?
                    .into_iter()
                    .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                    .collect::<Option<Vec<_>>>()?;
                let cwd = read_str(&mut caller, cwd, cwd_len)?;
                let out = read_str(&mut caller, out, out_len)?;
                Some(Child { program, argv, env, cwd, out })
            })();
            let Some(child) = args else { return Ok(ERRNO_INVAL) };
            let ctx = caller.data().ctx().clone();
            let depth = caller.data().depth() + 1;
            let code = match spawn_child::<T>(&ctx, depth, child)? {
                Ok(code) => code,
                Err(errno) => return Ok(errno),
            };
            let Some(mem) = memory(&mut caller) else { return Ok(ERRNO_INVAL) };
            let Ok(at) = usize::try_from(exit_ptr as u32) else { return Ok(ERRNO_INVAL) };
            match mem.write(&mut caller, at, &code.to_le_bytes()) {
                Ok(()) => Ok(ERRNO_SUCCESS),
                Err(_) => Ok(ERRNO_INVAL),
            }
        },
    )?;
    // docs/hooks.md "spawn_all": the children of one call at once, up to the job budget.
    linker.func_wrap(
        "ws2i",
        "spawn_all",
        |mut caller: Caller<'_, T>, req: i32, req_len: i32, count: i32, results: i32| -> wasmtime::Result<i32> {
            let Ok(count) = u32::try_from(count) else { return Ok(ERRNO_INVAL) };
            let Some(children) = read_bytes(&mut caller, req, req_len).and_then(|b| spawn_all::decode(&b, count)) else {
                return Ok(ERRNO_INVAL);
            };
            let ctx = caller.data().ctx().clone();
            let depth = caller.data().depth() + 1;
            let outcomes = spawn_all::run_all(&ctx, children, |ctx, child| spawn_child::<T>(ctx, depth, child))?;
            let bytes: Vec<u8> = outcomes
                .iter()
                .flat_map(|o| {
                    let (errno, code) = match o {
                        Ok(code) => (ERRNO_SUCCESS, *code),
                        Err(errno) => (*errno, 0),
                    };
                    errno.to_le_bytes().into_iter().chain(code.to_le_bytes())
                })
                .collect();
            let Some(mem) = memory(&mut caller) else { return Ok(ERRNO_INVAL) };
            let Ok(at) = usize::try_from(results as u32) else { return Ok(ERRNO_INVAL) };
            match mem.write(&mut caller, at, &bytes) {
                Ok(()) => Ok(ERRNO_SUCCESS),
                Err(_) => Ok(ERRNO_INVAL),
            }
        },
    )?;
    linker.func_wrap("ws2i", "chmod", |mut caller: Caller<'_, T>, ptr: i32, len: i32, mode: i32| -> wasmtime::Result<i32> {
        let Some(path) = read_str(&mut caller, ptr, len) else { return Ok(ERRNO_INVAL) };
        Ok(chmod(caller.data().ctx(), &path, mode as u32))
    })?;
    // docs/hooks.md "mode": the read half of chmod (WASI p1 filestat has no mode).
    linker.func_wrap("ws2i", "mode", |mut caller: Caller<'_, T>, ptr: i32, len: i32, out: i32| -> wasmtime::Result<i32> {
        let Some(path) = read_str(&mut caller, ptr, len) else { return Ok(ERRNO_INVAL) };
        let bits = match mode(caller.data().ctx(), &path) {
            Ok(bits) => bits,
            Err(errno) => return Ok(errno),
        };
        let Some(mem) = memory(&mut caller) else { return Ok(ERRNO_INVAL) };
        let Ok(at) = usize::try_from(out as u32) else { return Ok(ERRNO_INVAL) };
        match mem.write(&mut caller, at, &bits.to_le_bytes()) {
            Ok(()) => Ok(ERRNO_SUCCESS),
            Err(_) => Ok(ERRNO_INVAL),
        }
    })?;
    Ok(())
}

/// One child of `spawn` or `spawn_all`, `depth` deep: its budgets checked, run to the end.
/// `Ok(Ok(code))` when it ran, `Ok(Err(errno))` when it was refused, `Err` when it spent a
/// fatal budget (which ends the whole hook).
fn spawn_child<T: HostState>(ctx: &Arc<RunCtx>, depth: u32, child: Child) -> wasmtime::Result<spawn_all::Outcome> {
    let Child { program, argv, env, cwd, out } = child;
    if program.is_empty() || !program.starts_with('/') {
        return Ok(Err(ERRNO_INVAL));
    }
    let budget = &ctx.state.budget;
    if depth > budget.spawn_depth {
        return Err(wasmtime::Error::new(budget.exceeded(BudgetKind::SpawnDepth)));
    }
    if ctx.state.spawns.fetch_add(1, Ordering::Relaxed) >= budget.spawn_count {
        return Err(wasmtime::Error::new(budget.exceeded(BudgetKind::SpawnCount)));
    }
    ctx.spawned.fetch_add(1, Ordering::Relaxed);
    let stdout = if out.is_empty() {
        Sink::lines(Stream::Stdout, ctx.log.clone())
    } else {
        match open_output(ctx, &out) {
            Ok(f) => Sink::bytes(Box::new(f)),
            Err(errno) => return Ok(Err(errno)),
        }
    };
    let inv = Invocation { program, args: argv, env, cwd, stdout, depth };
    Ok(match T::run_child(ctx, inv) {
        Ok(code) => Ok(code),
        Err(RunError::Budget(b)) => return Err(wasmtime::Error::new(b)),
        Err(RunError::Trap(msg)) => {
            let _ = ctx.log.events.send(Event::Notice(clip(format!("spawned module trapped: {msg}"), MAX_NOTICE)));
            Ok(134)
        }
        Err(RunError::Refused(SandboxError::NotFound { .. })) => Err(ERRNO_NOENT),
        Err(RunError::Refused(SandboxError::NotWasm { .. })) => Err(ERRNO_NOEXEC),
        Err(RunError::Refused(e)) => {
            let _ = ctx.log.events.send(Event::Notice(clip(format!("spawn failed: {e}"), MAX_NOTICE)));
            Err(ERRNO_NOEXEC)
        }
    })
}

/// Permission bits (`& 0o7777`) of a path, symlinks not followed.
pub(crate) fn mode(ctx: &RunCtx, guest: &str) -> Result<u32, i32> {
    use cap_std::fs::PermissionsExt;
    if !guest.starts_with('/') {
        return Err(ERRNO_INVAL);
    }
    let (dir, rel, _ro) = resolve(ctx, guest).map_err(|_| ERRNO_NOENT)?;
    let md = dir.symlink_metadata(&rel).map_err(|e| errno_of(&e))?;
    Ok(md.permissions().mode() & 0o7777)
}

fn open_output(ctx: &Arc<RunCtx>, guest: &str) -> Result<cap_std::fs::File, i32> {
    let (dir, rel, ro) = resolve(ctx, guest).map_err(|_| ERRNO_NOENT)?;
    if ro {
        return Err(ERRNO_PERM);
    }
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    dir.open_with(&rel, &opts).map_err(|e| errno_of(&e))
}

fn errno_of(e: &std::io::Error) -> i32 {
    match e.kind() {
        std::io::ErrorKind::NotFound => ERRNO_NOENT,
        std::io::ErrorKind::PermissionDenied => ERRNO_PERM,
        std::io::ErrorKind::IsADirectory => ERRNO_ISDIR,
        _ => ERRNO_IO,
    }
}

/// Set permission bits; setuid/setgid are masked off, symlinks are left alone.
pub(crate) fn chmod(ctx: &RunCtx, guest: &str, mode: u32) -> i32 {
    use cap_std::fs::PermissionsExt;
    if !guest.starts_with('/') {
        return ERRNO_INVAL;
    }
    let Ok((dir, rel, ro)) = resolve(ctx, guest) else { return ERRNO_NOENT };
    if ro {
        return ERRNO_PERM;
    }
    match dir.symlink_metadata(&rel) {
        Ok(md) if md.file_type().is_symlink() => return ERRNO_SUCCESS,
        Ok(_) => {}
        Err(e) => return errno_of(&e),
    }
    let perms = cap_std::fs::Permissions::from_mode(mode & 0o1777);
    match dir.set_permissions(&rel, perms) {
        Ok(()) => ERRNO_SUCCESS,
        Err(e) => errno_of(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn dotdot_is_clamped_at_root() {
        assert_eq!(normalize("/../../etc/passwd"), ["etc", "passwd"]);
        assert_eq!(normalize("/a/./b/../c"), ["a", "c"]);
        assert_eq!(normalize("a/../../.."), Vec::<String>::new());
        assert_eq!(normalize("/"), Vec::<String>::new());
    }
}
