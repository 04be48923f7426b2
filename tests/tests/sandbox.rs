//! End-to-end tests of the sandbox: hostile guests (guest-scripts/hostile) run through the
//! library API and through the real `ws2i exec` binary.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ws2i::sandbox::{Budget, BudgetKind, Hook, LogSink, Sandbox, SandboxConfig, SandboxError, Stdout, Stream};
use ws2i::Size;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Build the hostile guests once (p1 for all, p2 for `socket`); return the dir of p1 .wasm files.
fn guests() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let gs = repo().join("guest-scripts");
        for args in [
            &["build", "--release", "--target", "wasm32-wasip1", "-p", "hostile"][..],
            &["build", "--release", "--target", "wasm32-wasip2", "-p", "hostile", "--bin", "socket"][..],
        ] {
            let st = cargo().args(args).current_dir(&gs).env_remove("CARGO_TARGET_DIR").status().expect("run cargo");
            assert!(st.success(), "building hostile guests failed");
        }
        gs.join("target/wasm32-wasip1/release")
    })
}

fn p2_guest(name: &str) -> PathBuf {
    guests();
    repo().join("guest-scripts/target/wasm32-wasip2/release").join(format!("{name}.wasm"))
}

fn ws2i_bin() -> PathBuf {
    ws2i_tests::ws2i_bin()
}

/// A temp dir holding `rootfs/` (with every hostile guest under /bin) and `outside/secret`.
struct World {
    dir: tempfile::TempDir,
}

const SECRET: &str = "top secret\n";

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        let secret = dir.path().join("outside/secret");
        std::fs::write(&secret, SECRET).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        for e in std::fs::read_dir(guests()).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "wasm") {
                std::fs::copy(&p, rootfs.join("bin").join(p.file_name().unwrap())).unwrap();
            }
        }
        std::fs::copy(p2_guest("socket"), rootfs.join("bin/socket_p2.wasm")).unwrap();
        World { dir }
    }
    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
    fn secret(&self) -> PathBuf {
        self.dir.path().join("outside/secret")
    }
    fn assert_secret_untouched(&self) {
        let s = self.secret();
        assert_eq!(std::fs::read_to_string(&s).unwrap(), SECRET, "host file changed");
        let md = std::fs::metadata(&s).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o600, "host file mode changed");
        assert_eq!(md.nlink(), 1, "host file got a hardlink");
    }
    fn hook(&self, program: &str, args: &[&str]) -> Hook {
        let mut h = Hook::new(self.rootfs(), program);
        h.args = args.iter().map(|s| s.to_string()).collect();
        h.budget = small_budget();
        h
    }
}

fn small_budget() -> Budget {
    Budget {
        memory: Size(64 << 20),
        timeout: Duration::from_secs(20),
        disk: Size(16 << 20),
        log: Size(1 << 20),
        spawn_count: 20,
        spawn_depth: 4,
        jobs: 2,
        cancel: Default::default(),
    }
}

/// Records lines with the time they arrived.
#[derive(Default)]
struct Recorder {
    lines: Mutex<Vec<(Instant, Stream, String)>>,
    notices: Mutex<Vec<String>>,
}

impl LogSink for Recorder {
    fn line(&self, stream: Stream, line: &str) {
        self.lines.lock().unwrap().push((Instant::now(), stream, line.to_string()));
    }
    fn notice(&self, msg: &str) {
        self.notices.lock().unwrap().push(msg.to_string());
    }
}

impl Recorder {
    fn stdout(&self) -> Vec<String> {
        self.lines.lock().unwrap().iter().filter(|l| l.1 == Stream::Stdout).map(|l| l.2.clone()).collect()
    }
}

fn sandbox() -> &'static Sandbox {
    static SB: OnceLock<(tempfile::TempDir, Sandbox)> = OnceLock::new();
    &SB.get_or_init(|| {
        let cache = tempfile::tempdir().unwrap();
        let sb = Sandbox::new(SandboxConfig { cache_dir: cache.path().to_path_buf() }).unwrap();
        (cache, sb)
    })
    .1
}

fn run(hook: Hook) -> (Result<ws2i::sandbox::Outcome, SandboxError>, Recorder) {
    let rec = Recorder::default();
    let r = sandbox().run(hook, &rec);
    (r, rec)
}

/// Run an attack guest: it must exit 0, report no LEAK, and leave the host file alone.
fn attack(world: &World, guest: &str, args: &[&str]) -> Vec<String> {
    let (r, rec) = run(world.hook(&format!("/bin/{guest}.wasm"), args));
    let out = rec.stdout();
    assert_eq!(r.expect("attack guest runs").exit_code, 0, "{out:?}");
    assert!(out.iter().all(|l| !l.starts_with("LEAK")), "sandbox escape: {out:#?}");
    assert!(out.iter().any(|l| l.starts_with("blocked")), "{out:?}");
    world.assert_secret_untouched();
    out
}

/// After a failure, the same sandbox still runs hooks fine.
fn assert_healthy(world: &World) {
    let (r, rec) = run(world.hook("/bin/env_dump.wasm", &["ok"]));
    assert_eq!(r.unwrap().exit_code, 0);
    assert!(rec.stdout().contains(&"arg=ok".to_string()));
}

#[test]
fn dotdot_cannot_leave_the_rootfs() {
    let w = World::new();
    attack(&w, "dotdot", &["outside/secret"]);
}

#[test]
fn absolute_symlinks_lead_nowhere() {
    let w = World::new();
    std::os::unix::fs::symlink("/etc", w.rootfs().join("etc_link")).unwrap();
    std::os::unix::fs::symlink(w.secret(), w.rootfs().join("secret_link")).unwrap();
    let out = attack(&w, "abs_symlink", &[]);
    assert!(out.iter().any(|l| l.starts_with("blocked: read /etc_link/passwd")), "{out:?}");
    // The planted link is still a link to the host path, not replaced by a file pointing anywhere.
    assert_eq!(std::fs::read_link(w.rootfs().join("secret_link")).unwrap(), w.secret());
}

#[test]
fn relative_symlink_chains_cannot_climb_out() {
    let w = World::new();
    std::fs::create_dir(w.rootfs().join("d")).unwrap();
    std::os::unix::fs::symlink("../hop2", w.rootfs().join("d/hop1")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", w.rootfs().join("hop2")).unwrap();
    attack(&w, "rel_symlink", &[]);
}

#[test]
fn hardlinks_to_outside_files_fail() {
    let w = World::new();
    std::fs::create_dir(w.rootfs().join("d")).unwrap();
    std::os::unix::fs::symlink(w.secret(), w.rootfs().join("secret_link")).unwrap();
    std::os::unix::fs::symlink("../hop2", w.rootfs().join("d/hop1")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", w.rootfs().join("hop2")).unwrap();
    attack(&w, "hardlink", &[]);
    // linkat(2) without AT_SYMLINK_FOLLOW may link a planted symlink itself: harmless, it is a
    // symlink the guest still cannot follow. What must never exist is a link to the host inode.
    let ino = std::fs::metadata(w.secret()).unwrap().ino();
    for n in 1..=4 {
        if let Ok(md) = std::fs::symlink_metadata(w.rootfs().join(format!("stolen{n}"))) {
            assert!(md.file_type().is_symlink() && md.ino() != ino, "stolen{n} is a real file");
        }
    }
}

#[test]
fn host_environment_is_not_passed_and_args_env_are_exact() {
    let w = World::new();
    let out = Command::new(ws2i_bin())
        .env("WS2I_TEST_SECRET", "hunter2")
        .args(["exec", "--env", "A=1", "--env", "B=two words", "--workdir", "/tmp"])
        .arg(w.rootfs())
        .args(["/bin/env_dump.wasm", "x", "--y"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(!stdout.contains("hunter2"));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["arg=/bin/env_dump.wasm", "arg=x", "arg=--y", "env=A=1", "env=B=two words", "env=PWD=/tmp", "cwd=/"],
        "argv and env exactly as given"
    );
}

#[test]
fn p2_guest_cannot_open_sockets() {
    let w = World::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let out = attack(&w, "socket_p2", &[&port]);
    assert!(out.iter().any(|l| l.starts_with("blocked: connect")), "{out:?}");
    assert!(listener.accept().is_err(), "the guest reached the host's listener");
}

fn expect_budget(r: Result<ws2i::sandbox::Outcome, SandboxError>, which: BudgetKind, message: &str) {
    match r {
        Err(SandboxError::Budget(b)) => {
            assert_eq!(b.which, which);
            assert_eq!(SandboxError::Budget(b).to_string(), message);
        }
        other => panic!("expected the {which} budget error, got {other:?}"),
    }
}

#[test]
fn busy_loop_hits_the_time_budget() {
    let w = World::new();
    let mut h = w.hook("/bin/busy_loop.wasm", &[]);
    h.budget.timeout = Duration::from_secs(2);
    let t = Instant::now();
    let (r, _) = run(h);
    expect_budget(r, BudgetKind::Time, "hook exceeded its time budget (2s)");
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    assert_healthy(&w);
}

#[test]
fn sleeping_guest_hits_the_time_budget() {
    let w = World::new();
    let mut h = w.hook("/bin/sleeper.wasm", &[]);
    h.budget.timeout = Duration::from_secs(2);
    let t = Instant::now();
    let (r, _) = run(h);
    expect_budget(r, BudgetKind::Time, "hook exceeded its time budget (2s)");
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    assert_healthy(&w);
}

#[test]
fn memory_growth_hits_the_memory_budget() {
    let w = World::new();
    let (r, _) = run(w.hook("/bin/memory_grow.wasm", &[]));
    expect_budget(r, BudgetKind::Memory, "hook exceeded its memory budget (64MiB)");
    assert_healthy(&w);
}

#[test]
fn disk_fill_hits_the_disk_budget() {
    let w = World::new();
    let t = Instant::now();
    let (r, _) = run(w.hook("/bin/disk_fill.wasm", &[]));
    expect_budget(r, BudgetKind::Disk, "hook exceeded its disk budget (16MiB)");
    assert!(t.elapsed() < Duration::from_secs(15));
    std::fs::remove_file(w.rootfs().join("fill")).unwrap();
    assert_healthy(&w);
}

#[test]
fn log_flood_is_truncated_not_fatal() {
    let w = World::new();
    let mut h = w.hook("/bin/log_flood.wasm", &["20000"]);
    h.budget.log = Size(64 << 10);
    let (r, rec) = run(h);
    let o = r.expect("log flood is not fatal");
    assert_eq!(o.exit_code, 0);
    assert!(o.stats.log_truncated);
    let kept: usize = rec.stdout().iter().map(|l| l.len() + 1).sum();
    assert!(kept <= 64 << 10, "kept {kept} bytes");
    assert!(kept > 60 << 10, "kept only {kept} bytes");
    let notices = rec.notices.lock().unwrap().clone();
    assert!(notices.iter().any(|n| n.contains("log budget (64KiB)")), "{notices:?}");
}

#[test]
fn spawn_recursion_hits_the_depth_budget() {
    let w = World::new();
    let (r, rec) = run(w.hook("/bin/spawner.wasm", &["deep", "/bin/spawner.wasm"]));
    expect_budget(r, BudgetKind::SpawnDepth, "hook exceeded its spawn depth budget (4)");
    assert!(rec.stdout().contains(&"depth 4".to_string()));
    assert_healthy(&w);
}

#[test]
fn spawn_count_budget() {
    let w = World::new();
    let (r, rec) = run(w.hook("/bin/spawner.wasm", &["wide", "/bin/empty.wasm", "25"]));
    expect_budget(r, BudgetKind::SpawnCount, "hook exceeded its spawn count budget (20)");
    assert!(rec.stdout().contains(&"spawn 19: Ok(0)".to_string()));
    assert_healthy(&w);
}

#[test]
fn spawn_all_runs_children_at_once_within_the_job_and_spawn_budgets() {
    let w = World::new();
    for jobs in [1u32, 3] {
        let dir = format!("/tmp/running-{jobs}");
        let mut h = w.hook("/bin/spawner.wasm", &["all", "/bin/overlap.wasm", "6", &dir]);
        h.budget.jobs = jobs;
        let (r, rec) = run(h);
        let out = rec.stdout();
        let o = r.unwrap_or_else(|e| panic!("{e}: {out:?}"));
        assert_eq!((o.exit_code, o.stats.spawns), (0, 6), "{out:?}");
        let line = out.iter().find(|l| l.starts_with("all: 6 children")).unwrap_or_else(|| panic!("{out:?}"));
        let most: u32 = line.rsplit(' ').next().unwrap().parse().unwrap();
        // The hook waits while its children run: `jobs` of them at once, never more.
        if jobs == 1 {
            assert_eq!(most, 1, "{line}");
        } else {
            assert!((2..=jobs).contains(&most), "{line}");
        }
    }
    // Each child counts against the spawn count, as with spawn.
    let (r, _) = run(w.hook("/bin/spawner.wasm", &["all", "/bin/overlap.wasm", "25", "/tmp/many"]));
    expect_budget(r, BudgetKind::SpawnCount, "hook exceeded its spawn count budget (20)");
    assert_healthy(&w);
}

#[test]
fn spawn_runs_a_child_with_exact_argv_env_and_redirect() {
    let w = World::new();
    let (r, rec) = run(w.hook("/bin/spawner.wasm", &["run", "/bin/env_dump.wasm", "a1"]));
    let o = r.unwrap();
    assert_eq!(o.exit_code, 0);
    assert_eq!(o.stats.spawns, 1);
    assert_eq!(
        rec.stdout(),
        ["arg=/bin/env_dump.wasm", "arg=a1", "env=CHILD=1", "env=EXIT_CODE=7", "env=PWD=/tmp", "cwd=/", "spawn result Ok(7)"]
    );
    let (r, rec) = run(w.hook("/bin/spawner.wasm", &["out", "/bin/env_dump.wasm", "/tmp/child.out"]));
    assert_eq!(r.unwrap().exit_code, 0);
    assert_eq!(rec.stdout(), ["spawn result Ok(0)"]);
    let redirected = std::fs::read_to_string(w.rootfs().join("tmp/child.out")).unwrap();
    assert_eq!(redirected, "arg=/bin/env_dump.wasm\nenv=CHILD=1\nenv=PWD=/\ncwd=/\n");
    // Missing and non-wasm programs give noent / noexec.
    std::fs::write(w.rootfs().join("bin/script"), "#!/bin/sh\necho hi\n").unwrap();
    let (r, rec) = run(w.hook("/bin/spawner.wasm", &["run", "/bin/nope.wasm"]));
    assert_eq!(r.unwrap().exit_code, 0);
    assert_eq!(rec.stdout(), ["spawn result Err(44)"]);
    let (_, rec) = run(w.hook("/bin/spawner.wasm", &["run", "/bin/script"]));
    assert_eq!(rec.stdout(), ["spawn result Err(45)"]);
}

#[test]
fn chmod_sets_modes_inside_the_rootfs_only() {
    let w = World::new();
    let f = w.rootfs().join("tmp/tool");
    std::fs::write(&f, "x").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(w.secret(), w.rootfs().join("secret_link")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", w.rootfs().join("hop2")).unwrap();
    let (r, rec) = run(w.hook(
        "/bin/chmodder.wasm",
        &["/tmp/tool", "6755", "/../outside/secret", "777", "/secret_link", "777", "/hop2", "777"],
    ));
    assert_eq!(r.unwrap().exit_code, 0);
    let out = rec.stdout();
    assert_eq!(out[0], "chmod /tmp/tool 6755 = 0");
    assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o7777, 0o755, "setuid/setgid dropped");
    assert_eq!(out[1], "chmod /../outside/secret 777 = 44", "`..` is clamped at /");
    w.assert_secret_untouched();
}

#[test]
fn non_wasm_hooks_are_refused_clearly() {
    let w = World::new();
    std::fs::write(w.rootfs().join("bin/assemble"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::copy("/bin/true", w.rootfs().join("bin/elf")).unwrap();
    for (hook, found) in [("/bin/assemble", "a shell script (#!/bin/sh)"), ("/bin/elf", "a Linux ELF executable")] {
        let out: Output = Command::new(ws2i_bin()).arg("exec").arg(w.rootfs()).arg(hook).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(err.starts_with("ws2i: error: "), "{err}");
        assert!(err.contains(found) && err.contains("hooks must be WebAssembly"), "{err}");
    }
    let (r, _) = run(w.hook("/bin/missing.wasm", &[]));
    assert!(matches!(r, Err(SandboxError::NotFound { .. })));
}

#[test]
fn exit_code_and_budget_errors_through_the_cli() {
    let w = World::new();
    let out = Command::new(ws2i_bin())
        .args(["exec", "--env", "EXIT_CODE=3"])
        .arg(w.rootfs())
        .arg("/bin/env_dump.wasm")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = Command::new(ws2i_bin())
        .args(["exec", "--memory", "32MiB", "--timeout", "5s"])
        .arg(w.rootfs())
        .arg("/bin/memory_grow.wasm")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ws2i: error: ") && err.contains("hook exceeded its memory budget (32MiB)"), "{err}");
}

#[test]
fn second_run_hits_the_compiled_module_cache() {
    let w = World::new();
    let cache = tempfile::tempdir().unwrap();
    let json = |out: Output| -> serde_json::Value {
        assert!(out.status.success(), "{out:?}");
        let s = String::from_utf8(out.stdout).unwrap();
        serde_json::from_str(s.lines().last().unwrap()).unwrap()
    };
    let exec = || {
        Command::new(ws2i_bin())
            .env("WS2I_CACHE", cache.path())
            .args(["--output", "json", "exec"])
            .arg(w.rootfs())
            .arg("/bin/empty.wasm")
            .output()
            .unwrap()
    };
    let first = json(exec());
    assert_eq!((first["cache_misses"].as_u64(), first["cache_hits"].as_u64()), (Some(1), Some(0)));
    let second = json(exec());
    assert_eq!((second["cache_misses"].as_u64(), second["cache_hits"].as_u64()), (Some(0), Some(1)));
    // The loglevel-1 notice.
    let out = Command::new(ws2i_bin())
        .env("WS2I_CACHE", cache.path())
        .args(["--loglevel", "1", "exec"])
        .arg(w.rootfs())
        .arg("/bin/empty.wasm")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("module cache: 1 hit(s), 0 compiled"));
    // In process: a second run on the same sandbox is a hit too.
    let (r1, _) = run(w.hook("/bin/repro.wasm", &[]));
    let (r2, _) = run(w.hook("/bin/repro.wasm", &[]));
    assert!(r1.unwrap().stats.cache_misses <= 1);
    assert_eq!(r2.unwrap().stats.cache_hits, 1);
}

#[test]
fn slow_printer_is_streamed_before_exit() {
    let w = World::new();
    let (r, rec) = run(w.hook("/bin/slow_printer.wasm", &[]));
    let end = Instant::now();
    assert_eq!(r.unwrap().exit_code, 0);
    let lines = rec.lines.lock().unwrap();
    let first = lines.iter().find(|l| l.2 == "slow line 0").expect("first line");
    assert!(end - first.0 > Duration::from_millis(800), "first line arrived only at the end");
    assert!(lines.iter().any(|l| l.1 == Stream::Stderr && l.2 == "slow err 3"));
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);
impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn capture_streams_stdout_bytes() {
    let w = World::new();
    let buf = Shared::default();
    let mut h = w.hook("/bin/env_dump.wasm", &["cap"]);
    h.stdout = Stdout::Capture(Box::new(buf.clone()));
    let (r, rec) = run(h);
    assert_eq!(r.unwrap().exit_code, 0);
    assert!(rec.stdout().is_empty());
    assert_eq!(String::from_utf8(buf.0.lock().unwrap().clone()).unwrap(), "arg=/bin/env_dump.wasm\narg=cap\nenv=PWD=/\ncwd=/\n");
}

#[test]
fn reproducible_mode_gives_identical_bytes() {
    let w = World::new();
    let once = || {
        let mut h = w.hook("/bin/repro.wasm", &[]);
        h.reproducible = Some(1_700_000_000);
        let (r, rec) = run(h);
        assert_eq!(r.unwrap().exit_code, 0);
        (rec.stdout(), std::fs::read(w.rootfs().join("repro.out")).unwrap())
    };
    let (a, b) = (once(), once());
    assert_eq!(a, b);
    assert!(a.0[0].starts_with("now=1700000000.000000000 "), "{:?}", a.0);
}

#[test]
fn mounts_are_visible_and_read_only_ones_stay_read_only() {
    let w = World::new();
    let data = w.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("f"), "x").unwrap();
    let mut h = w.hook("/bin/chmodder.wasm", &["/data/f", "777"]);
    h.mounts.push(ws2i::sandbox::Mount { host: data.clone(), guest: "/data".into(), read_only: true });
    let (r, rec) = run(h);
    assert_eq!(r.unwrap().exit_code, 0);
    assert_eq!(rec.stdout(), ["chmod /data/f 777 = 63"]);
}

/// A read-only rootfs (save-artifacts on a shared cached rootfs) refuses writes and chmod.
#[test]
fn read_only_rootfs_refuses_writes_and_chmod() {
    let w = World::new();
    let tool = w.rootfs().join("tmp/tool");
    std::fs::write(&tool, "x").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut h = w.hook("/bin/chmodder.wasm", &["/tmp/tool", "777"]);
    h.read_only_rootfs = true;
    let (r, rec) = run(h);
    assert_eq!(r.unwrap().exit_code, 0);
    assert_eq!(rec.stdout(), ["chmod /tmp/tool 777 = 63"]);
    assert_eq!(std::fs::metadata(&tool).unwrap().mode() & 0o7777, 0o644);
    let mut h = w.hook("/bin/disk_fill.wasm", &[]);
    h.read_only_rootfs = true;
    let (r, _) = run(h);
    // The guest panics on the refused create: a trap or a non-zero exit, never a file.
    assert!(r.map(|o| o.exit_code != 0).unwrap_or(true), "the write must fail");
    assert!(!w.rootfs().join("fill").exists());
}

/// Not a test: the measurement behind benches/hook-overhead.sh (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn bench_hook_overhead() {
    let w = World::new();
    let null = Recorder::default();
    let cache = tempfile::tempdir().unwrap();
    let new_sb = || Sandbox::new(SandboxConfig { cache_dir: cache.path().to_path_buf() }).unwrap();
    let mut rows = Vec::new();
    for guest in ["empty", "spawner"] {
        let size = std::fs::metadata(w.rootfs().join(format!("bin/{guest}.wasm"))).unwrap().len();
        let hook = || {
            let mut h = Hook::new(w.rootfs(), format!("/bin/{guest}.wasm"));
            if guest == "spawner" {
                h.args = vec!["run".into(), "/bin/empty.wasm".into()];
            }
            h
        };
        let sb = new_sb();
        let t = Instant::now();
        let o = sb.run(hook(), &null).unwrap();
        rows.push((format!("{guest}.wasm ({size} B) cold: compile + run"), t.elapsed(), o.stats.cache_misses));
        let sb2 = new_sb();
        let t = Instant::now();
        sb2.run(hook(), &null).unwrap();
        rows.push((format!("{guest}.wasm new process-like sandbox: disk cache + run"), t.elapsed(), 0));
        let n = 50;
        let t = Instant::now();
        for _ in 0..n {
            sb2.run(hook(), &null).unwrap();
        }
        rows.push((format!("{guest}.wasm warm: instantiate + run (mean of {n})"), t.elapsed() / n, 0));
    }
    println!("\n| measurement | time |\n|---|---|");
    for (name, d, _) in rows {
        println!("| {name} | {:.2} ms |", d.as_secs_f64() * 1000.0);
    }
}

// ---- issue 13: honest memory and log budgets, nested spawns ----

/// Writes the module `wat` (text) as `/bin/NAME.wasm` in the rootfs.
fn put_wat(w: &World, name: &str, wat: &str) -> String {
    std::fs::write(w.rootfs().join(format!("bin/{name}.wasm")), wat::parse_str(wat).unwrap()).unwrap();
    format!("/bin/{name}.wasm")
}

/// A 64 MiB budget for several memories and tables: each alone fits, together they do not.
#[test]
fn memory_budget_is_the_total_of_the_memories_and_tables_of_a_store() {
    let w = World::new();
    // 40 MiB is 640 pages of 64 KiB.
    let one = put_wat(&w, "one_memory", r#"(module (memory 640) (func (export "_start")))"#);
    let four = put_wat(
        &w,
        "four_memories",
        r#"(module (memory 640) (memory 640) (memory 640) (memory 640) (func (export "_start")))"#,
    );
    // Growing a second memory at run time passes the total (a trap, not -1: the hook ends).
    let grow = put_wat(
        &w,
        "grow_second",
        r#"(module (memory 1) (memory $b 640)
             (func (export "_start") (drop (memory.grow $b (i32.const 400)))))"#,
    );
    // 5 M elements of 8 bytes: 40 MB per table.
    let tables = put_wat(&w, "two_tables", r#"(module (table 5000000 funcref) (table 5000000 funcref) (func (export "_start")))"#);
    let table_grow = put_wat(
        &w,
        "table_grow",
        r#"(module (table $t 1 funcref) (memory 500)
             (func (export "_start") (drop (table.grow $t (ref.null func) (i32.const 5000000)))))"#,
    );
    let (r, _) = run(w.hook(&one, &[]));
    assert_eq!(r.expect("one 40 MiB memory fits a 64 MiB budget").exit_code, 0);
    for m in [&four, &grow, &tables, &table_grow] {
        let (r, _) = run(w.hook(m, &[]));
        expect_budget(r, BudgetKind::Memory, "hook exceeded its memory budget (64MiB)");
    }
    // Nothing stays charged after a run: the same budget runs the big one again.
    let (r, _) = run(w.hook(&one, &[]));
    assert_eq!(r.unwrap().exit_code, 0);
    assert_healthy(&w);
}

/// A spawned child draws on its parent's budget while both are alive, and gives it back when it ends.
#[test]
fn memory_budget_is_shared_with_spawned_children() {
    let w = World::new();
    let (r, rec) = run(w.hook("/bin/mem_hold.wasm", &["40", "/bin/mem_hold.wasm", "40"]));
    expect_budget(r, BudgetKind::Memory, "hook exceeded its memory budget (64MiB)");
    assert!(rec.stdout().contains(&"holding 40 MiB".to_string()), "{:?}", rec.stdout());
    let (r, rec) = run(w.hook("/bin/mem_hold.wasm", &["16", "/bin/mem_hold.wasm", "16"]));
    assert_eq!(r.expect("16 + 16 MiB fit").exit_code, 0, "{:?}", rec.stdout());
    // Children one after another: each gives its memory back when it ends.
    let mut h = w.hook("/bin/mem_hold.wasm", &["8", "/bin/mem_hold.wasm", "40"]);
    h.env = vec![("SPAWNS".into(), "3".into())];
    let (r, rec) = run(h);
    assert_eq!(r.expect("sequential children fit").exit_code, 0, "{:?}", rec.stdout());
    assert_eq!(rec.stdout().iter().filter(|l| *l == "child Ok(0)").count(), 3, "{:?}", rec.stdout());
}

/// A module file larger than the budget allows is refused before it is read or compiled.
#[test]
fn huge_modules_are_refused_before_compiling() {
    let w = World::new();
    let path = w.rootfs().join("bin/huge.wasm");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"\0asm\x01\0\0\0").unwrap();
    // Sparse: 100 GiB that costs nothing on disk; reading it would.
    f.set_len(100 << 30).unwrap();
    drop(f);
    let t = Instant::now();
    let (r, _) = run(w.hook("/bin/huge.wasm", &[]));
    match r {
        Err(e @ SandboxError::Compile { .. }) => {
            let m = e.to_string();
            assert!(m.contains("the module is 100GiB, more than the 8MiB a module may have under a 64MiB memory budget"), "{m}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5), "the file was read: {:?}", t.elapsed());
    // Through the CLI, the cap follows --memory (an eighth of it, at most 128MiB).
    let out = Command::new(ws2i_bin()).args(["exec", "--memory", "4GiB"]).arg(w.rootfs()).arg("/bin/huge.wasm").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("more than the 128MiB a module may have under a 4GiB memory budget"), "{err}");
}

/// Runs `cmd` to the end with stdout to /dev/null and stderr to a file; its exit code, stderr and
/// peak RSS in KiB (wait4(2) reports it for exactly this child).
fn run_measured(cmd: &mut Command) -> (Option<i32>, String, u64) {
    let err = tempfile::NamedTempFile::new().unwrap();
    let child = cmd.stdout(std::process::Stdio::null()).stderr(err.reopen().unwrap()).spawn().unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data; the pid is our own unwaited child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, std::fs::read_to_string(err.path()).unwrap(), usage.ru_maxrss as u64)
}

/// 16 MiB of empty lines, and one 64 MiB line, through `ws2i exec` with a log budget that lets
/// all of it through: ws2i's peak memory stays small (it was 2.25 GB for 60 MiB of empty lines).
#[test]
fn log_output_of_any_shape_is_bounded_in_ws2i_memory() {
    let w = World::new();
    for (shape, mib) in [("empty", "16"), ("long", "64")] {
        let (code, err, rss_kib) = run_measured(
            Command::new(ws2i_bin()).args(["exec", "--log-limit", "1GiB"]).arg(w.rootfs()).args(["/bin/log_shape.wasm", shape, mib]),
        );
        assert_eq!(code, Some(0), "{shape}: {err}");
        assert!(rss_kib < 256 << 10, "{shape}: ws2i peaked at {} MiB", rss_kib >> 10);
    }
    // In process: a long line is cut at 64 KiB, and past the budget nothing more is delivered.
    let mut h = w.hook("/bin/log_shape.wasm", &["long", "8"]);
    h.budget.log = Size(4 << 20);
    let (r, rec) = run(h);
    let o = r.unwrap();
    assert!(o.stats.log_truncated);
    // Every byte is counted (a cut piece is charged one byte for the newline it lacks).
    assert!((8 << 20..(8 << 20) + 1024).contains(&o.stats.log_bytes), "{}", o.stats.log_bytes);
    let lines = rec.stdout();
    assert!(lines.iter().all(|l| l.len() == 64 << 10), "{:?}", lines.iter().map(String::len).collect::<Vec<_>>());
    assert!((63..=64).contains(&lines.len()), "{} lines kept", lines.len());
    let mut h = w.hook("/bin/log_shape.wasm", &["empty", "4"]);
    h.budget.log = Size(1 << 20);
    let (r, rec) = run(h);
    assert!(r.unwrap().stats.log_truncated);
    assert_eq!(rec.stdout().len(), 1 << 20, "an empty line costs its newline");
}

/// Nested spawns, each recursing to 90% of the wasm stack before it spawns the next: every child
/// has a stack of its own, so ws2i ends cleanly (it aborted with rc 134 at the fourth level).
#[test]
fn nested_deep_stacks_do_not_overflow_the_host_stack() {
    let w = World::new();
    let exec = |depth: &str| {
        Command::new(ws2i_bin())
            .args(["exec", "--max-spawns", "200", "--max-spawn-depth", depth])
            .arg(w.rootfs())
            .args(["/bin/deep_stack.wasm", "7"])
            .output()
            .unwrap()
    };
    let out = exec("8");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let frames: u32 = stdout.lines().find_map(|l| l.strip_prefix("frames ")).unwrap().parse().unwrap();
    assert!(frames > 1000, "{stdout}");
    for level in 1..=7 {
        assert!(stdout.contains(&format!("level {level}: child Ok(0)")), "{stdout}");
    }
    // The probes that ran out of wasm stack trapped; each notice (a backtrace of thousands of
    // frames) is cut short.
    assert!(stderr.contains("spawned module trapped"), "{stderr}");
    assert!(stderr.len() < 256 << 10, "{} bytes of notices", stderr.len());
    // Past the depth budget: the budget error, not an abort.
    let out = exec("4");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("hook exceeded its spawn depth budget (4)"), "{stderr}");
}

/// Empty files, directories and symlinks spend the disk budget too (each entry is charged its
/// inode and its blocks); they were free.
#[test]
fn inodes_directories_and_symlinks_are_charged_to_the_disk_budget() {
    let w = World::new();
    let mut h = w.hook("/bin/inode_fill.wasm", &["100000"]);
    h.budget.disk = Size(8 << 20);
    let (r, rec) = run(h);
    expect_budget(r, BudgetKind::Disk, "hook exceeded its disk budget (8MiB)");
    assert!(!rec.stdout().iter().any(|l| l.starts_with("created")), "{:?}", rec.stdout());
    std::fs::remove_dir_all(w.rootfs().join("inodes")).unwrap();
    // A few hundred of them are nothing.
    let (r, rec) = run(w.hook("/bin/inode_fill.wasm", &["100"]));
    assert_eq!(r.unwrap().exit_code, 0);
    assert_eq!(rec.stdout(), ["created 100 of each"]);
}

/// Bytes written through a descriptor after its file was unlinked are on the disk though no
/// walk of the rootfs sees them: they are charged too.
#[test]
fn writes_to_an_unlinked_file_are_charged_to_the_disk_budget() {
    let w = World::new();
    let (r, rec) = run(w.hook("/bin/unlinked_fill.wasm", &[]));
    expect_budget(r, BudgetKind::Disk, "hook exceeded its disk budget (16MiB)");
    assert!(rec.stdout().is_empty(), "{:?}", rec.stdout());
    // Under the budget it runs to the end.
    let (r, rec) = run(w.hook("/bin/unlinked_fill.wasm", &["4"]));
    assert_eq!(r.unwrap().exit_code, 0);
    assert_eq!(rec.stdout(), ["wrote 4 MiB to an unlinked file"]);
    assert_healthy(&w);
}

/// A hook that takes every file descriptor ws2i has cannot blind the disk watcher: the run is
/// stopped with an error saying why, instead of writing unmeasured. Through `ws2i exec`, in a
/// process of its own with a small descriptor limit, so this test process keeps its descriptors.
#[test]
fn a_hook_holding_every_descriptor_is_stopped_not_left_unmeasured() {
    use std::os::unix::process::CommandExt;
    let w = World::new();
    let mut cmd = Command::new(ws2i_bin());
    cmd.args(["exec", "--disk", "64MiB", "--timeout", "60s"]).arg(w.rootfs()).arg("/bin/fd_hog.wasm");
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let l = libc::rlimit { rlim_cur: 256, rlim_max: 256 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("ran out of file descriptors (256 descriptors) and could not measure its disk use")
            || stderr.contains("hook exceeded its disk budget (64MiB)"),
        "{stderr}"
    );
    let written = std::fs::metadata(w.rootfs().join("fill")).map(|m| m.len()).unwrap_or(0);
    // Stopped within one watcher interval of going blind, not at the time budget (which, at the
    // page cache's speed, would be tens of GB).
    assert!(written < 2 << 30, "the hook wrote {written} bytes unmeasured");
}
