//! `ws2i run` end to end: the real binary on images in a real store — a built S2I app, an
//! image whose command prints its argv/env (hostile's env_dump), a Linux ELF, and the
//! http-hello wasi:http component served over loopback.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ws2i_tests::builders::{make_builder, shared_cache};
use ws2i_tests::{describe, guests, run, run_fail, run_ok, stderr, stdout, ws2i};

struct World {
    dir: tempfile::TempDir,
    cache: PathBuf,
}

impl World {
    fn new() -> World {
        World { dir: tempfile::tempdir().unwrap(), cache: shared_cache("run") }
    }
    /// A world with a cache of its own, for tests that look inside it.
    fn with_own_cache() -> World {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        World { dir, cache }
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn ws2i(&self, args: &[&str]) -> Command {
        let mut c = ws2i();
        c.env("WS2I_HOME", self.home()).env("WS2I_CACHE", &self.cache).args(args);
        c
    }

    /// Commit an image holding `files` (guest path, host file) with config `set` applied.
    fn image(&self, name: &str, files: &[(&str, &Path)], set: &[(&str, serde_json::Value)]) {
        let t = tempfile::tempdir().unwrap();
        for (guest, host) in files {
            let to = t.path().join(guest.trim_start_matches('/'));
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(host, &to).unwrap();
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::create_dir_all(t.path().join("tmp")).unwrap();
        ws2i_tests::builders::commit_tree(&self.home(), name, t.path(), "run test", &mut |b| {
            for (k, v) in set {
                b.set(k, v.clone());
            }
        });
    }

    fn env_dump_image(&self, name: &str) {
        self.image(
            name,
            &[("/bin/env_dump", &guests::wasm("env_dump"))],
            &[
                ("Entrypoint", serde_json::json!(["/bin/env_dump"])),
                ("Cmd", serde_json::json!(["from-cmd"])),
                ("Env", serde_json::json!(["PATH=/bin", "FROM_IMAGE=image", "OVERRIDDEN=image"])),
                ("WorkingDir", serde_json::json!("/tmp")),
            ],
        );
    }

    fn hello_http_image(&self, name: &str) {
        self.image(
            name,
            &[("/app/hello.wasm", &http_hello())],
            &[
                ("Cmd", serde_json::json!(["/app/hello.wasm"])),
                ("Env", serde_json::json!(["GREETING=from the image"])),
            ],
        );
    }
}

/// The http-hello component (the bin is also built as an empty wasip1 module; take the component).
fn http_hello() -> PathBuf {
    guests::wasm("http-hello-run-p2");
    let p = guests::guest_scripts_dir().join("target/wasm32-wasip2/release/http-hello-run-p2.wasm");
    assert!(p.is_file(), "{} not built", p.display());
    p
}

#[test]
fn a_built_app_runs_its_run_hook() {
    let w = World::new();
    make_builder(&w.home(), "ws2i-test/run-builder:latest", &["assemble", "run"]);
    let src = w.dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("index.txt"), "hello from the app\n").unwrap();
    // `build --run` runs the result right away (its digest first, then the app's output).
    let out = run_ok(&mut w.ws2i(&["--quiet", "build", src.to_str().unwrap(), "ws2i-test/run-builder:latest", "app:v1", "--run"]));
    assert!(stdout(&out).ends_with("\nhello from the app\n"), "{}", describe(&out));
    let out = run_ok(&mut w.ws2i(&["run", "app:v1"]));
    assert_eq!(stdout(&out), "hello from the app\n", "{}", describe(&out));
}

#[test]
fn sigterm_during_a_run_removes_its_rootfs() {
    let w = World::with_own_cache();
    w.image("sleeper:latest", &[("/bin/sleeper", &guests::wasm("sleeper"))], &[("Cmd", serde_json::json!(["/bin/sleeper"]))]);
    let mut child = w.ws2i(&["run", "sleeper"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first, "sleeping\n");
    let builds = w.cache.join("layers/builds");
    assert_eq!(fs::read_dir(&builds).unwrap().count(), 1, "one checkout while running");
    unsafe { libc_kill(child.id() as i32, 15) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ws2i run did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(128 + 15));
    assert_eq!(fs::read_dir(&builds).unwrap().count(), 0, "the checkout is removed");
}

#[test]
fn env_workdir_args_and_exit_code_pass_through() {
    let w = World::new();
    w.env_dump_image("dump:latest");
    let out = run(&mut w.ws2i(&["run", "-e", "OVERRIDDEN=cli", "--env", "EXIT_CODE=7", "dump"]));
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    let o = stdout(&out);
    for want in ["arg=/bin/env_dump", "arg=from-cmd", "env=FROM_IMAGE=image", "env=OVERRIDDEN=cli", "env=PWD=/tmp"] {
        assert!(o.lines().any(|l| l == want), "{want} in\n{}", describe(&out));
    }
    assert!(!o.contains("OVERRIDDEN=image"), "{o}");

    // `-- ARGS` replace Cmd, not Entrypoint.
    let out = run_ok(&mut w.ws2i(&["run", "dump", "--", "one", "two"]));
    let o = stdout(&out);
    let args: Vec<&str> = o.lines().filter(|l| l.starts_with("arg=")).collect();
    assert_eq!(args, ["arg=/bin/env_dump", "arg=one", "arg=two"]);
}

#[test]
fn a_linux_elf_is_refused_with_the_podman_command() {
    let w = World::new();
    let ctx = w.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::copy("/bin/true", ctx.join("app")).unwrap();
    fs::write(ctx.join("Containerfile"), "FROM scratch\nCOPY app /app\nCMD [\"/app\"]\n").unwrap();
    run_ok(&mut w.ws2i(&["--quiet", "bud", "-t", "hello-go", ctx.to_str().unwrap()]));
    let out = run_fail(&mut w.ws2i(&["run", "-p", "8080:8080", "hello-go"]));
    let err = stderr(&out);
    assert!(
        err.contains("image hello-go:latest runs /app, a Linux ELF executable, not WebAssembly; ws2i runs only WebAssembly")
            && err.contains("Run it with: podman run --rm -p 8080:8080 localhost/hello-go:latest"),
        "{}",
        describe(&out)
    );
}

#[test]
fn publish_only_for_http_components() {
    let w = World::new();
    w.env_dump_image("dump:latest");
    w.hello_http_image("hello-http:latest");
    let out = run_fail(&mut w.ws2i(&["run", "-p", "127.0.0.1:0:8080", "dump"]));
    assert!(stderr(&out).contains("is a WASI command module, not a wasi:http proxy component"), "{}", describe(&out));
    let out = run_fail(&mut w.ws2i(&["run", "hello-http"]));
    assert!(stderr(&out).contains("serves HTTP") && stderr(&out).contains("publish a port"), "{}", describe(&out));
}

/// A `ws2i run -p` in the background; killed if the test ends early.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Server {
    fn start(mut cmd: Command) -> Server {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
            match line {
                Ok(l) if l.starts_with("Serving ") => {
                    let addr = l.rsplit("http://").next().unwrap().parse().unwrap();
                    return Server { child, addr, log: rx };
                }
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!("no Serving line: {:?}", child.wait_with_output());
                }
            }
        }
    }

    /// GET `path`: (status, body). HTTP/1.0, so the body comes unchunked and the connection closes.
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serves_a_wasi_http_component_per_request_with_budgets() {
    let w = World::with_own_cache();
    w.hello_http_image("hello-http:latest");
    let server = Server::start(w.ws2i(&["run", "--timeout", "2s", "-p", "127.0.0.1:0:8080", "-e", "EXTRA=cli", "hello-http"]));

    let (status, body) = server.get("/some/path");
    assert_eq!(status, 200);
    assert!(body.contains("hello from wasi:http") && body.contains("path: /some/path"), "{body}");
    assert!(server.get("/env/GREETING").1.contains("from the image"));
    assert!(server.get("/env/EXTRA").1.contains("cli"));

    // A trap is that request's 500; the server goes on.
    assert_eq!(server.get("/trap").0, 500);
    assert_eq!(server.get("/").0, 200);
    // A runaway request is stopped by its own time budget.
    let (status, body) = server.get("/loop");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("time budget (2s)"), "{body}");
    assert_eq!(server.get("/").0, 200);

    // The served rootfs is read-only: a request cannot change what a later one sees, nor take disk.
    assert_eq!(server.get("/write/tmp/written.txt").0, 500);
    assert_eq!(server.get("/file/tmp/written.txt").0, 404);
    let base = fs::read_dir(w.cache.join("layers/rootfs")).unwrap().flatten().map(|e| e.path()).collect::<Vec<_>>();
    assert!(!base.is_empty());
    for b in &base {
        assert!(!b.join("tmp/written.txt").exists(), "cache changed: {}", b.display());
    }

    // SIGTERM: a clean exit, the checkout removed, nothing left listening.
    let mut server = server;
    unsafe { libc_kill(server.child.id() as i32, 15) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "ws2i run did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log: Vec<String> = server.log.try_iter().collect();
    assert_eq!(status.code(), Some(0), "{log:?}");
    let left: Vec<_> = fs::read_dir(w.cache.join("layers/builds")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "leftover checkouts: {left:?}");
    assert!(TcpStream::connect(server.addr).is_err(), "still listening");

}

/// Reads what the server sends on `s` until it closes the connection or `limit` passes;
/// returns the bytes and whether it closed.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let (start, mut got, mut buf) = (Instant::now(), Vec::new(), [0u8; 4096]);
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

#[test]
fn slow_idle_and_greedy_clients_cannot_take_the_server_from_the_others() {
    let w = World::with_own_cache();
    w.hello_http_image("hello-http:latest");
    // One request slot (the memory bound holds one 64 MiB request), two connections at most.
    let server = Server::start(w.ws2i(&[
        "run", "--memory", "64MiB", "--serve-memory", "64MiB", "--header-timeout", "1s", "--body-timeout", "1s",
        "--max-connections", "2", "-p", "127.0.0.1:0:8080", "hello-http",
    ]));

    // A head that never ends (slowloris) is cut off after the header timeout.
    let mut slow_head = TcpStream::connect(server.addr).unwrap();
    write!(slow_head, "GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ").unwrap();
    let (_, closed) = read_until_closed(&mut slow_head, Duration::from_secs(20));
    assert!(closed, "a half-sent head must not hold its connection");

    // A body that stops mid-way fails its request after the body timeout and frees the only
    // slot, instead of holding it for the request's whole time budget (30 min).
    let mut slow_body = TcpStream::connect(server.addr).unwrap();
    write!(slow_body, "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789").unwrap();
    let (resp, _) = read_until_closed(&mut slow_body, Duration::from_secs(20));
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp:?}");
    drop(slow_body);
    assert_eq!(server.get("/").0, 200, "the slot is free again");
    let mut whole = TcpStream::connect(server.addr).unwrap();
    write!(whole, "POST /echo HTTP/1.0\r\nHost: test\r\nContent-Length: 10\r\n\r\n0123456789").unwrap();
    assert!(read_until_closed(&mut whole, Duration::from_secs(20)).0.ends_with("10 bytes\n"));

    // At the connection cap, an idle keep-alive connection is closed to make room.
    let keep_alive = |s: &mut TcpStream| {
        write!(s, "GET / HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    };
    let (mut a, mut b) = (TcpStream::connect(server.addr).unwrap(), TcpStream::connect(server.addr).unwrap());
    keep_alive(&mut a);
    keep_alive(&mut b);
    assert_eq!(server.get("/").0, 200, "a third client is served at the cap");
    let (_, closed) = read_until_closed(&mut a, Duration::from_secs(20));
    assert!(closed, "the oldest idle connection made room");
}

#[test]
fn a_request_memory_budget_over_the_server_bound_is_refused() {
    let w = World::with_own_cache();
    w.hello_http_image("hello-http:latest");
    let out = ws2i_tests::run_fail(&mut w.ws2i(&["run", "--memory", "1GiB", "--serve-memory", "512MiB", "-p", "127.0.0.1:0:8080", "hello-http"]));
    let err = ws2i_tests::stderr(&out);
    assert!(err.contains("memory budget (1GiB) is larger than the server's memory bound (512MiB)"), "{err}");
}

#[test]
fn an_image_labelled_read_only_is_served_from_the_cache_and_refuses_writes() {
    let w = World::with_own_cache();
    w.image(
        "ro-http:latest",
        &[("/app/hello.wasm", &http_hello())],
        &[
            ("Cmd", serde_json::json!(["/app/hello.wasm"])),
            ("Labels", serde_json::json!({"io.ws2i.run.read-only-rootfs": "true"})),
        ],
    );
    let server = Server::start(w.ws2i(&["run", "--timeout", "2s", "-p", "127.0.0.1:0:8080", "ro-http"]));
    assert_eq!(server.get("/").0, 200);
    // A request cannot change what the next one sees.
    let (status, body) = server.get("/write/tmp/written.txt");
    assert_eq!(status, 500, "{body}");
    assert_eq!(server.get("/file/tmp/written.txt").0, 404);
    // The pooled server still answers a trap and a runaway with 500/503 and goes on.
    assert_eq!(server.get("/trap").0, 500);
    assert_eq!(server.get("/loop").0, 503);
    assert_eq!(server.get("/").0, 200);
    // Served straight from the cached rootfs: no private checkout was made.
    let builds: Vec<_> = fs::read_dir(w.cache.join("layers/builds")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(builds.is_empty(), "checkouts: {builds:?}");
    for b in fs::read_dir(w.cache.join("layers/rootfs")).unwrap().flatten() {
        assert!(!b.path().join("tmp/written.txt").exists());
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn a_wasm_build_result_is_pushed_as_a_wasm_platform_image() {
    let reg = ws2i_tests::registry::Registry::start().unwrap();
    let w = World::new();
    make_builder(&w.home(), "ws2i-test/run-builder:latest", &["assemble", "run"]);
    let src = w.dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("index.txt"), "pushed\n").unwrap();
    run_ok(&mut w.ws2i(&["--quiet", "build", src.to_str().unwrap(), "ws2i-test/run-builder:latest", "app:v1"]));
    let dest = format!("docker://{}/apps/wasm:v1", reg.host());
    run_ok(&mut w.ws2i(&["push", "app:v1", &dest]));

    let inspect = |args: &[&str]| -> serde_json::Value {
        let out = run(Command::new("skopeo").args(["inspect", "--tls-verify=false"]).args(args).arg(&dest));
        assert!(out.status.success(), "{}", describe(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let raw = inspect(&["--raw"]);
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.manifest.v1+json", "a single manifest, not an index: {raw}");
    assert_eq!(raw["annotations"]["module.wasm.image/variant"], "compat-smart", "{raw}");
    let cfg = inspect(&["--config"]);
    assert_eq!((cfg["os"].as_str(), cfg["architecture"].as_str()), (Some("wasip1"), Some("wasm")), "{cfg}");
    assert_eq!(cfg["config"]["Entrypoint"], serde_json::json!(["/usr/libexec/s2i/run"]));
    assert!(cfg["config"].get("Cmd").is_none_or(|c| c.is_null()), "{cfg}");
    assert_eq!(cfg["config"]["Labels"]["module.wasm.image/variant"], "compat-smart");
    let summary = inspect(&[]);
    assert_eq!((summary["Os"].as_str(), summary["Architecture"].as_str()), (Some("wasip1"), Some("wasm")), "{summary}");

    // Pulled back on this (linux) host, it still runs.
    let other = World::new();
    run_ok(&mut other.ws2i(&["pull", &dest]));
    let name = dest.trim_start_matches("docker://");
    let out = run_ok(&mut other.ws2i(&["run", name]));
    assert_eq!(stdout(&out), "pushed\n");
}
