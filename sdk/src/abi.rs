//! The guest side of the `ws2i` host imports (docs/hooks.md, "Host imports").
//!
//! Encoding is plain functions over bytes so the host can unit-test it; the
//! raw imports exist only on `wasm32-wasip1`, where ws2i provides them.
//! Preview 2 components get no `ws2i` imports (yet), and a native build has
//! no ws2i host at all: there `spawn` reports [`io::ErrorKind::Unsupported`].

use std::io;

/// WASI preview 1 errno values the ABI returns.
pub mod errno {
    pub const SUCCESS: u32 = 0;
    pub const INVAL: u32 = 28;
    pub const NOENT: u32 = 44;
    pub const NOEXEC: u32 = 45;
    pub const PERM: u32 = 63;
}

/// Encodes a list (argv, env) as the ABI wants it: each entry followed by a NUL.
/// An entry containing a NUL cannot be represented and is refused.
pub fn encode_list<I, S>(items: I) -> io::Result<Vec<u8>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut out = Vec::new();
    for item in items {
        let item = item.as_ref();
        if item.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "argument contains a NUL byte: {:?}",
                    String::from_utf8_lossy(item)
                ),
            ));
        }
        out.extend_from_slice(item);
        out.push(0);
    }
    Ok(out)
}

/// Decodes a list produced by [`encode_list`] (used by tests and by hosts
/// that want the same rules): `None` if it is malformed (no final NUL).
pub fn decode_list(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let body = bytes.strip_suffix(&[0])?;
    Some(body.split(|b| *b == 0).collect())
}

/// Encodes `KEY=VALUE` entries; a key that is empty or contains `=` is refused
/// because the child could not parse it back.
pub fn encode_env<'a, I>(vars: I) -> io::Result<Vec<u8>>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut entries = Vec::new();
    for (k, v) in vars {
        if k.is_empty() || k.contains('=') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid environment variable name {k:?}"),
            ));
        }
        entries.push(format!("{k}={v}"));
    }
    encode_list(entries)
}

/// Turns an errno returned by a `ws2i` import into an `io::Error` whose
/// message says which call failed and on what.
pub fn errno_to_error(call: &str, subject: &str, errno: u32) -> io::Error {
    use io::ErrorKind as K;
    let (kind, what) = match errno {
        errno::NOENT => (K::NotFound, "no such file or directory".to_string()),
        errno::NOEXEC => (K::InvalidData, "not a WebAssembly module".to_string()),
        errno::INVAL => (K::InvalidInput, "invalid argument".to_string()),
        errno::PERM => (K::PermissionDenied, "operation not permitted".to_string()),
        n => (K::Other, format!("WASI errno {n}")),
    };
    io::Error::new(kind, format!("ws2i.{call} {subject}: {what}"))
}

/// A string argument as the ABI passes it: pointer and length.
#[cfg(all(target_os = "wasi", target_env = "p1"))]
fn raw(bytes: &[u8]) -> (i32, i32) {
    (bytes.as_ptr() as i32, bytes.len() as i32)
}

#[cfg(all(target_os = "wasi", target_env = "p1"))]
mod imports {
    #[link(wasm_import_module = "ws2i")]
    extern "C" {
        #[allow(clippy::too_many_arguments)]
        pub fn spawn(
            prog_ptr: i32,
            prog_len: i32,
            argv_ptr: i32,
            argv_len: i32,
            env_ptr: i32,
            env_len: i32,
            cwd_ptr: i32,
            cwd_len: i32,
            out_ptr: i32,
            out_len: i32,
            exit_code_ptr: i32,
        ) -> i32;
        pub fn spawn_all(req_ptr: i32, req_len: i32, count: i32, results_ptr: i32) -> i32;
        pub fn chmod(path_ptr: i32, path_len: i32, mode: i32) -> i32;
        pub fn mode(path_ptr: i32, path_len: i32, mode_ptr: i32) -> i32;
    }
}

/// Everything `spawn` needs, already encoded.
pub struct SpawnRequest<'a> {
    pub program: &'a [u8],
    pub argv: &'a [u8],
    pub env: &'a [u8],
    pub cwd: &'a [u8],
    pub stdout: &'a [u8],
}

/// Calls `ws2i.spawn`; `Ok(exit_code)` when the child ran.
pub fn spawn(req: &SpawnRequest<'_>) -> io::Result<i32> {
    #[cfg(all(target_os = "wasi", target_env = "p1"))]
    {
        let (p, pl) = raw(req.program);
        let (a, al) = raw(req.argv);
        let (e, el) = raw(req.env);
        let (c, cl) = raw(req.cwd);
        let (o, ol) = raw(req.stdout);
        let mut code: i32 = 0;
        // SAFETY: every pointer is to a live slice of the stated length, and
        // exit_code points to an i32 that outlives the call.
        let rc = unsafe {
            imports::spawn(
                p,
                pl,
                a,
                al,
                e,
                el,
                c,
                cl,
                o,
                ol,
                &mut code as *mut i32 as i32,
            )
        };
        if rc == 0 {
            Ok(code)
        } else {
            Err(errno_to_error(
                "spawn",
                &String::from_utf8_lossy(req.program),
                rc as u32,
            ))
        }
    }
    #[cfg(not(all(target_os = "wasi", target_env = "p1")))]
    {
        Err(unsupported("spawn", req.program))
    }
}

/// The request of `ws2i.spawn_all`: each child's five fields (program, argv, env, cwd,
/// stdout) in that order, each a little-endian u32 length and its bytes.
pub fn encode_batch(children: &[SpawnRequest<'_>]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for c in children {
        for f in [c.program, c.argv, c.env, c.cwd, c.stdout] {
            let len = u32::try_from(f.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "spawn argument over 4 GiB"))?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(f);
        }
    }
    Ok(out)
}

/// Calls `ws2i.spawn_all`: runs the children, as many at once as the build's job budget
/// allows, and waits for all. The outer error means the batch itself was refused (malformed);
/// each child's result is its exit code or why it could not be run.
pub fn spawn_all(children: &[SpawnRequest<'_>]) -> io::Result<Vec<io::Result<i32>>> {
    let req = encode_batch(children)?;
    let count = i32::try_from(children.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many children"))?;
    #[cfg(all(target_os = "wasi", target_env = "p1"))]
    {
        let (r, rl) = raw(&req);
        // Two i32 per child: errno, exit code.
        let mut results = vec![0i32; children.len() * 2];
        // SAFETY: req is a live slice of the stated length; results holds 2*count i32s and
        // outlives the call.
        let rc = unsafe { imports::spawn_all(r, rl, count, results.as_mut_ptr() as i32) };
        if rc != 0 {
            return Err(errno_to_error("spawn_all", &format!("({count} children)"), rc as u32));
        }
        Ok(children
            .iter()
            .zip(results.chunks_exact(2))
            .map(|(c, r)| match r[0] {
                0 => Ok(r[1]),
                n => Err(errno_to_error("spawn_all", &String::from_utf8_lossy(c.program), n as u32)),
            })
            .collect())
    }
    #[cfg(not(all(target_os = "wasi", target_env = "p1")))]
    {
        let _ = (req, count);
        Err(unsupported("spawn_all", b"(batch)"))
    }
}

/// Calls `ws2i.chmod`.
pub fn chmod(path: &[u8], mode: u32) -> io::Result<()> {
    #[cfg(all(target_os = "wasi", target_env = "p1"))]
    {
        let (p, pl) = raw(path);
        // SAFETY: path is a live slice of the stated length.
        let rc = unsafe { imports::chmod(p, pl, mode as i32) };
        match rc {
            0 => Ok(()),
            n => Err(errno_to_error(
                "chmod",
                &String::from_utf8_lossy(path),
                n as u32,
            )),
        }
    }
    #[cfg(not(all(target_os = "wasi", target_env = "p1")))]
    {
        let _ = mode;
        Err(unsupported("chmod", path))
    }
}

/// Calls `ws2i.mode` (an addition to the first ABI, see docs/hooks.md).
pub fn mode(path: &[u8]) -> io::Result<u32> {
    #[cfg(all(target_os = "wasi", target_env = "p1"))]
    {
        let (p, pl) = raw(path);
        let mut mode: u32 = 0;
        // SAFETY: path is a live slice; mode points to a u32 that outlives the call.
        let rc = unsafe { imports::mode(p, pl, &mut mode as *mut u32 as i32) };
        match rc {
            0 => Ok(mode),
            n => Err(errno_to_error(
                "mode",
                &String::from_utf8_lossy(path),
                n as u32,
            )),
        }
    }
    #[cfg(not(all(target_os = "wasi", target_env = "p1")))]
    {
        Err(unsupported("mode", path))
    }
}

#[cfg(not(all(target_os = "wasi", target_env = "p1")))]
fn unsupported(call: &str, subject: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "ws2i.{call} {}: only available to hooks built for wasm32-wasip1 and run by ws2i",
            String::from_utf8_lossy(subject)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_nul_terminated_entries() {
        assert_eq!(encode_list(["a", "bc"]).unwrap(), b"a\0bc\0");
        assert_eq!(encode_list(Vec::<&str>::new()).unwrap(), b"");
        assert_eq!(encode_list([""]).unwrap(), b"\0");
        assert!(encode_list(["a\0b"]).is_err());
        let enc = encode_list(["x", "", "yz"]).unwrap();
        assert_eq!(decode_list(&enc).unwrap(), vec![&b"x"[..], b"", b"yz"]);
        assert_eq!(decode_list(b"").unwrap(), Vec::<&[u8]>::new());
        assert!(decode_list(b"no-nul").is_none());
    }

    #[test]
    fn env_entries_are_key_equals_value() {
        assert_eq!(
            encode_env([("A", "1"), ("B", "x=y")]).unwrap(),
            b"A=1\0B=x=y\0"
        );
        assert!(encode_env([("", "1")]).is_err());
        assert!(encode_env([("A=B", "1")]).is_err());
    }

    #[test]
    fn errnos_map_to_kinds_and_name_the_call() {
        let e = errno_to_error("spawn", "/bin/x.wasm", errno::NOENT);
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("ws2i.spawn /bin/x.wasm"));
        assert_eq!(
            errno_to_error("spawn", "x", errno::NOEXEC).kind(),
            io::ErrorKind::InvalidData
        );
        assert!(errno_to_error("chmod", "x", 76)
            .to_string()
            .contains("errno 76"));
    }

    #[cfg(not(target_os = "wasi"))]
    #[test]
    fn imports_are_unsupported_natively() {
        assert_eq!(
            chmod(b"/x", 0o755).unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
        assert_eq!(mode(b"/x").unwrap_err().kind(), io::ErrorKind::Unsupported);
        let req = SpawnRequest {
            program: b"/t.wasm",
            argv: b"",
            env: b"",
            cwd: b"",
            stdout: b"",
        };
        assert_eq!(spawn(&req).unwrap_err().kind(), io::ErrorKind::Unsupported);
        assert_eq!(
            spawn_all(&[req]).unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
    }

    #[test]
    fn batches_are_length_prefixed_fields() {
        let a = SpawnRequest {
            program: b"/a",
            argv: b"a\0",
            env: b"",
            cwd: b"/",
            stdout: b"",
        };
        let b = SpawnRequest {
            program: b"/bb",
            ..a
        };
        let mut want = Vec::new();
        for f in [&b"/a"[..], b"a\0", b"", b"/", b"", b"/bb", b"a\0", b"", b"/", b""] {
            want.extend_from_slice(&(f.len() as u32).to_le_bytes());
            want.extend_from_slice(f);
        }
        assert_eq!(encode_batch(&[a, b]).unwrap(), want);
        assert!(encode_batch(&[]).unwrap().is_empty());
    }
}
