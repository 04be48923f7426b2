//! Shared helpers for hostile guests. Each guest prints `LEAK: …` if an attack worked and
//! `blocked: …` when it did not; the tests assert on those and on the host files.

use std::fs;

/// Try to read `path`; report.
pub fn try_read(path: &str) {
    match fs::read(path) {
        Ok(b) => println!("LEAK: read {path}: {} bytes: {}", b.len(), String::from_utf8_lossy(&b[..b.len().min(60)])),
        Err(e) => println!("blocked: read {path}: {e}"),
    }
}

/// Try to overwrite and append to `path`; report.
pub fn try_write(path: &str) {
    match fs::write(path, b"pwned") {
        Ok(()) => println!("LEAK?: wrote {path}"),
        Err(e) => println!("blocked: write {path}: {e}"),
    }
}

pub fn try_list(path: &str) {
    match fs::read_dir(path) {
        Ok(rd) => {
            let names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            if names.is_empty() {
                println!("blocked: list {path}: empty");
            } else {
                println!("LEAK: list {path}: {names:?}");
            }
        }
        Err(e) => println!("blocked: list {path}: {e}"),
    }
}

#[cfg(target_family = "wasm")]
#[link(wasm_import_module = "ws2i")]
extern "C" {
    #[link_name = "spawn"]
    fn ws2i_spawn(
        prog: *const u8, prog_len: usize, argv: *const u8, argv_len: usize, env: *const u8, env_len: usize,
        cwd: *const u8, cwd_len: usize, out: *const u8, out_len: usize, exit_code: *mut i32,
    ) -> i32;
    #[link_name = "chmod"]
    fn ws2i_chmod(path: *const u8, len: usize, mode: u32) -> i32;
    #[link_name = "spawn_all"]
    fn ws2i_spawn_all(req: *const u8, req_len: usize, count: u32, results: *mut i32) -> i32;
}

fn list(items: &[&str]) -> Vec<u8> {
    let mut v = Vec::new();
    for i in items {
        v.extend_from_slice(i.as_bytes());
        v.push(0);
    }
    v
}

/// `ws2i.spawn`: Ok(exit code) or Err(errno).
#[cfg(target_family = "wasm")]
pub fn spawn(prog: &str, argv: &[&str], env: &[&str], cwd: &str, out: &str) -> Result<i32, i32> {
    let (a, e) = (list(argv), list(env));
    let mut code = -1i32;
    let r = unsafe {
        ws2i_spawn(prog.as_ptr(), prog.len(), a.as_ptr(), a.len(), e.as_ptr(), e.len(), cwd.as_ptr(), cwd.len(), out.as_ptr(), out.len(), &mut code)
    };
    if r == 0 { Ok(code) } else { Err(r) }
}

/// `ws2i.spawn_all` of `children` (program, argv) with no env, cwd `/`, stdout to the log:
/// Err(errno) if refused, else each child's Ok(exit code) or Err(errno).
#[cfg(target_family = "wasm")]
pub fn spawn_all(children: &[(&str, Vec<&str>)]) -> Result<Vec<Result<i32, i32>>, i32> {
    let mut req = Vec::new();
    for (prog, argv) in children {
        for f in [prog.as_bytes().to_vec(), list(argv), Vec::new(), b"/".to_vec(), Vec::new()] {
            req.extend_from_slice(&(f.len() as u32).to_le_bytes());
            req.extend_from_slice(&f);
        }
    }
    let mut results = vec![0i32; children.len() * 2];
    let r = unsafe { ws2i_spawn_all(req.as_ptr(), req.len(), children.len() as u32, results.as_mut_ptr()) };
    if r != 0 {
        return Err(r);
    }
    Ok(results.chunks(2).map(|c| if c[0] == 0 { Ok(c[1]) } else { Err(c[0]) }).collect())
}

/// `ws2i.chmod`: 0 or errno.
#[cfg(target_family = "wasm")]
pub fn chmod(path: &str, mode: u32) -> i32 {
    unsafe { ws2i_chmod(path.as_ptr(), path.len(), mode) }
}
