//! The static-web builder end to end, as a user meets it (upstream S2I's httpd example):
//! `ws2i bud` the builder from guest-scripts/static-web → `ws2i build examples/hello-site` →
//! `ws2i run -p` in the background → real HTTP requests over loopback (raw, so that
//! `/../etc/passwd` reaches the server unnormalised) → SIGTERM ends it. And the incremental
//! path: one changed file in a 1000-file site is the only one recompressed.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ws2i_tests::builders::shared_cache;
use ws2i_tests::{describe, guests, run_ok, stderr, stdout, workspace_root, ws2i};

const BUILDER: &str = "ws2i/static-web:latest";

struct World {
    dir: tempfile::TempDir,
}

impl World {
    /// A store holding the static-web builder, made by `ws2i bud` from its Containerfile.
    fn new() -> World {
        let w = World {
            dir: tempfile::tempdir().unwrap(),
        };
        guests::wasm("static-web/run"); // builds and stages the hooks
        let context = guests::guest_scripts_dir();
        run_ok(
            w.ws2i()
                .args(["--quiet", "bud", "-t", BUILDER, "-f"])
                .arg(context.join("static-web/Containerfile"))
                .arg(&context),
        );
        w
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn ws2i(&self) -> Command {
        let mut c = ws2i();
        c.env("WS2I_HOME", self.home())
            .env("WS2I_CACHE", shared_cache("static_web"));
        c
    }

    fn build(&self, src: &Path, tag: &str, extra: &[&str]) -> String {
        let out = run_ok(
            self.ws2i()
                .arg("build")
                .arg(src)
                .args([BUILDER, tag])
                .args(extra),
        );
        stderr(&out)
    }
}

/// `ws2i run IMAGE -p 127.0.0.1:0:8080`, up once it printed its `Serving ... on` line.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(w: &World, image: &str) -> Server {
        let mut child = w
            .ws2i()
            .args(["run", image, "-p", "127.0.0.1:0:8080"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting ws2i run");
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads the port from the ready line, then keeps draining stderr so the
        // server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split("http://")
                    .nth(1)
                    .filter(|_| line.starts_with("Serving "))
                {
                    let port = addr
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.trim().parse::<u16>().ok());
                    let _ = tx.send(Ok(port));
                } else {
                    let _ = tx.send(Err(line));
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(Some(port))) => return Server { child, port },
                Ok(Ok(None)) => panic!("unparsable ready line after {seen:?}"),
                Ok(Err(line)) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("ws2i run did not get ready: {seen:?}, {:?}", child.wait());
                }
            }
        }
    }

    fn get(&self, target: &str, headers: &[(&str, &str)]) -> Resp {
        request(self.port, "GET", target, headers)
    }

    /// SIGTERM, then a bounded wait: the server must end by itself.
    fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        run_ok(Command::new("kill").args(["-TERM", &pid]));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("ws2i run did not exit within 30s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One raw HTTP/1.1 request: the target goes on the wire exactly as given.
fn request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("reading the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .expect("chunk size");
        b = &b[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("gzip body");
    out
}

fn hello_site() -> PathBuf {
    workspace_root().join("examples/hello-site")
}

#[test]
fn hello_site_is_built_and_served() {
    let w = World::new();
    let usage = run_ok(w.ws2i().args(["usage", BUILDER]));
    assert!(
        stdout(&usage).contains("static-web builder"),
        "{}",
        describe(&usage)
    );

    let log = w.build(&hello_site(), "hello-site", &[]);
    assert!(
        log.contains("---> Installing site into /opt/app-root/web"),
        "{log}"
    );
    assert!(log.contains("---> Summary: 8 files"), "{log}");

    // A wasi:http run hook makes a wasm image: the component is its entrypoint.
    let inspect = stdout(&run_ok(w.ws2i().args(["inspect", "hello-site"])));
    assert!(
        inspect.contains("wasip2/wasm") && inspect.contains("/usr/libexec/s2i/run.wasm"),
        "{inspect}"
    );

    let server = Server::start(&w, "hello-site");
    let site = hello_site();

    let r = server.get("/", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.body, fs::read(site.join("index.html")).unwrap());
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.header("content-security-policy").is_some());
    assert!(r.header("last-modified").is_some());

    // Content types, and bytes as they are in the source.
    for (path, ct) in [
        ("/css/site.css", "text/css; charset=utf-8"),
        ("/js/app.js", "text/javascript; charset=utf-8"),
        ("/img/logo.svg", "image/svg+xml"),
        ("/img/favicon.png", "image/png"),
    ] {
        let r = server.get(path, &[]);
        assert_eq!(
            (r.status, r.header("content-type")),
            (200, Some(ct)),
            "{path}"
        );
        assert_eq!(r.body, fs::read(site.join(&path[1..])).unwrap(), "{path}");
    }

    // A strong ETag, and 304 when the client has it.
    let css = server.get("/css/site.css", &[]);
    let etag = css.header("etag").expect("etag").to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let r = server.get("/css/site.css", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304, "{r:?}");
    assert!(r.body.is_empty());
    assert_eq!(
        server
            .get("/css/site.css", &[("If-None-Match", "\"stale\"")])
            .status,
        200
    );

    // The precompressed variants, when asked for.
    let r = server.get("/css/site.css", &[("Accept-Encoding", "gzip")]);
    assert_eq!(r.header("content-encoding"), Some("gzip"), "{r:?}");
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert!(r.body.len() < css.body.len());
    assert_eq!(gunzip(&r.body), css.body);
    let r = server.get("/css/site.css", &[("Accept-Encoding", "gzip, br")]);
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_ne!(r.header("etag"), Some(etag.as_str()));

    // Markdown, rendered through the site's template.
    let r = server.get("/docs/guide.html", &[]);
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(
        page.contains("<title>The hello-site guide · hello-site</title>"),
        "{page}"
    );
    assert!(
        page.contains("<table>") && page.contains("href=\"about.html\""),
        "{page}"
    );

    // Range, HEAD, directories, methods.
    let r = server.get("/index.html", &[("Range", "bytes=0-9")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, fs::read(site.join("index.html")).unwrap()[..10]);
    let r = server.get(
        "/css/site.css",
        &[("Range", "bytes=100-199"), ("Accept-Encoding", "gzip")],
    );
    assert_eq!((r.status, r.header("content-encoding")), (206, None));
    assert_eq!(
        r.body,
        fs::read(site.join("css/site.css")).unwrap()[100..200]
    );
    assert_eq!(
        server
            .get("/index.html", &[("Range", "bytes=99999-")])
            .status,
        416
    );
    let r = request(server.port, "HEAD", "/", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let index_len = fs::metadata(site.join("index.html"))
        .unwrap()
        .len()
        .to_string();
    assert_eq!(
        r.header("content-length"),
        Some(index_len.as_str()),
        "HEAD says what GET sends"
    );
    let r = server.get("/docs", &[]);
    assert_eq!((r.status, r.header("location")), (301, Some("/docs/")));
    assert_eq!(request(server.port, "POST", "/", &[]).status, 405);

    // Misses get the site's 404 page; no listings, nothing excluded, nothing outside.
    let not_found = fs::read_to_string(site.join("404.html")).unwrap();
    for target in [
        "/nope.html",
        "/docs/",
        "/drafts/secret.html",
        "/README.html",
        "/.s2i/environment",
        "/../etc/passwd",
        "/../../../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/..%5c..%5cetc%5cpasswd",
        "/css/..\\..\\etc\\passwd",
    ] {
        let r = server.get(target, &[]);
        assert_eq!(r.status, 404, "{target}: {r:?}");
        assert_eq!(r.text(), not_found, "{target}");
    }

    let port = server.port;
    let status = server.stop();
    assert!(status.success(), "ws2i run ended with {status}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts connections"
    );

    // Pushed to a registry, it stays a single wasip2/wasm manifest that other wasm runtimes
    // (runwasi, crun's wasm handler) recognise.
    let reg = ws2i_tests::registry::Registry::start().unwrap();
    let dest = format!("docker://{}/sites/hello-site:v1", reg.host());
    run_ok(w.ws2i().args(["push", "hello-site", &dest]));
    let skopeo_json = |args: &[&str]| -> serde_json::Value {
        let out = run_ok(
            Command::new("skopeo")
                .args(["inspect", "--tls-verify=false"])
                .args(args)
                .arg(&dest),
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let raw = skopeo_json(&["--raw"]);
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{raw}");
    assert_eq!(raw["annotations"]["module.wasm.image/variant"], "compat-smart", "{raw}");
    let cfg = skopeo_json(&["--config"]);
    assert_eq!(
        (cfg["os"].as_str(), cfg["architecture"].as_str()),
        (Some("wasip2"), Some("wasm")),
        "{cfg}"
    );
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/usr/libexec/s2i/run.wasm"]),
        "{cfg}"
    );
}

/// A site of 1000 small pages with distinct content.
fn generate_site(dir: &Path, n: usize) {
    for i in 0..n {
        let p = dir.join(format!("section-{:02}/page-{i:04}.html", i % 20));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let para =
            format!("<p>Page {i} of the generated site: some text that compresses well. </p>\n");
        fs::write(
            &p,
            format!(
                "<!DOCTYPE html><title>Page {i}</title>\n{}",
                para.repeat(20)
            ),
        )
        .unwrap();
    }
}

#[test]
fn incremental_build_recompresses_only_the_changed_file() {
    let w = World::new();
    let src = w.dir.path().join("site");
    generate_site(&src, 1000);

    let clean = w.build(&src, "big-site", &["--incremental"]);
    assert!(
        clean.contains("---> Summary: 1000 files")
            && clean.contains("1000 precompressed (1000 compressed, 0 reused)"),
        "{clean}"
    );

    let changed = src.join("section-07/page-0007.html");
    let new_content = format!(
        "<!DOCTYPE html><title>Changed</title>\n{}",
        "<p>new words, rebuilt</p>\n".repeat(30)
    );
    fs::write(&changed, &new_content).unwrap();
    let again = w.build(&src, "big-site", &["--incremental"]);
    assert!(
        again.contains("1000 precompressed (1 compressed, 999 reused)"),
        "{again}"
    );
    assert!(
        again.contains("Reused 999 precompressed file(s) from the previous build, compressed 1"),
        "{again}"
    );

    let server = Server::start(&w, "big-site");
    let r = server.get("/section-07/page-0007.html", &[]);
    assert_eq!(r.text(), new_content);
    let r = server.get("/section-07/page-0007.html", &[("Accept-Encoding", "gzip")]);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&r.body), new_content.as_bytes());
    let r = server.get("/section-08/page-0008.html", &[("Accept-Encoding", "gzip")]);
    assert!(String::from_utf8(gunzip(&r.body))
        .unwrap()
        .contains("Page 8 of the generated site"));
    assert!(server.stop().success());
}
