//! run: a wasi:http proxy component serving /opt/app-root/web. Each request
//! gets a fresh instance, so all it does is: read the request, the config and
//! one metadata record, answer (the decisions are static_web::serve's).
//!
//! File access goes straight to wasi:filesystem (open-at, then one positional
//! read) rather than through std: every host file operation is a thread hop
//! in the host, and std's open/stat/read-until-EOF takes about twice as many.
//! A body is spliced by the host from the file's stream into the response
//! (measured on a 100 KB file: about 3x the requests/s of reading it into the
//! guest and writing it out).
//!
//! Built for wasm32-wasip2; for wasip1 (the workspace's default target) it
//! is an empty program.

#[cfg(target_env = "p2")]
mod server {
    use std::io::Write;

    use static_web::layout;
    use static_web::meta::FileMeta;
    use static_web::path::WebPath;
    use static_web::serve::{self, Body, Entry, Request, Response, Site};
    use static_web::site::{config_from, MAX_RECORD};
    use wasip2::exports::http::incoming_handler::Guest;
    use wasip2::filesystem::preopens::get_directories;
    use wasip2::filesystem::types::{
        Descriptor, DescriptorFlags, DescriptorType, ErrorCode, OpenFlags, PathFlags,
    };
    use wasip2::http::types::{
        Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
    };
    use wasip2::io::streams::{OutputStream, StreamError};

    /// The image's root, as ws2i preopens it.
    struct Root(Descriptor);

    impl Root {
        fn get() -> Option<Root> {
            get_directories()
                .into_iter()
                .find(|(_, p)| p == "/")
                .map(|(d, _)| Root(d))
        }

        /// Opens a file for reading; symlinks are not followed (PathFlags
        /// without SYMLINK_FOLLOW), and the host keeps `..` inside the root.
        fn open(&self, abs: &str) -> Result<Descriptor, ErrorCode> {
            let rel = abs.trim_start_matches('/').trim_end_matches('/');
            self.0.open_at(
                PathFlags::empty(),
                rel,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
        }

        /// A small file in one read: `IsDirectory` for a directory,
        /// `FileTooLarge` past `max`.
        fn read_small(&self, abs: &str, max: u64) -> Result<Vec<u8>, ErrorCode> {
            let d = self.open(abs)?;
            match d.read(max, 0) {
                Ok((bytes, _)) if (bytes.len() as u64) < max => Ok(bytes),
                Ok(_) => Err(ErrorCode::FileTooLarge),
                Err(e) => match d.get_type() {
                    Ok(DescriptorType::Directory) => Err(ErrorCode::IsDirectory),
                    _ => Err(e),
                },
            }
        }
    }

    impl Site for Root {
        fn lookup(&self, path: &WebPath) -> Entry {
            match self.read_small(
                &format!("{}/{}", layout::META_DIR, path.rel()),
                serve_max_record(),
            ) {
                Ok(bytes) => String::from_utf8(bytes)
                    .ok()
                    .and_then(|t| FileMeta::decode(&t))
                    .map_or(Entry::Missing, Entry::File),
                Err(ErrorCode::IsDirectory) => Entry::Dir,
                Err(_) => Entry::Missing,
            }
        }
    }

    fn serve_max_record() -> u64 {
        MAX_RECORD + 1
    }

    struct Server;

    impl Guest for Server {
        fn handle(req: IncomingRequest, out: ResponseOutparam) {
            let Some(root) = Root::get() else {
                eprintln!("static-web: no root directory was preopened");
                return send_error(out);
            };
            let method = match req.method() {
                Method::Get => "GET".to_string(),
                Method::Head => "HEAD".to_string(),
                Method::Post => "POST".to_string(),
                Method::Put => "PUT".to_string(),
                Method::Delete => "DELETE".to_string(),
                Method::Options => "OPTIONS".to_string(),
                Method::Patch => "PATCH".to_string(),
                Method::Connect => "CONNECT".to_string(),
                Method::Trace => "TRACE".to_string(),
                Method::Other(m) => m,
            };
            let target = req.path_with_query().unwrap_or_else(|| "/".into());
            let headers = req.headers();
            let lookup = |name: &str| {
                let values = headers.get(name);
                (!values.is_empty()).then(|| {
                    values
                        .iter()
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            };
            let env: Vec<(String, String)> = std::env::vars()
                .filter(|(k, _)| k.starts_with("WEB_"))
                .collect();
            let text = root
                .read_small(layout::CONFIG, 64 * 1024)
                .unwrap_or_default();
            let (cfg, _) = config_from(&String::from_utf8_lossy(&text), &env);
            let resp = serve::respond(
                &Request {
                    method: &method,
                    target: &target,
                    headers: &lookup,
                },
                &root,
                &cfg,
            );
            send(&root, resp, out);
        }
    }

    fn send(root: &Root, resp: Response, out: ResponseOutparam) {
        let mut file = None;
        if let Body::File { rel, encoding, .. } = &resp.body {
            let path = format!("{}/{rel}{}", layout::WEB_ROOT, encoding.file_suffix());
            match root.open(&path) {
                Ok(d) => file = Some(d),
                Err(e) => {
                    eprintln!("static-web: {path}: {e}");
                    return send_error(out);
                }
            }
        }
        let fields: Vec<(String, Vec<u8>)> = resp
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone().into_bytes()))
            .collect();
        let Ok(headers) = Fields::from_list(&fields) else {
            return send_error(out);
        };
        let response = OutgoingResponse::new(headers);
        let _ = response.set_status_code(resp.status);
        let Ok(body) = response.body() else { return };
        ResponseOutparam::set(out, Ok(response));
        let Ok(mut stream) = body.write() else { return };
        let result = match (resp.body, file) {
            (Body::Text(t), _) => stream.write_all(t.as_bytes()),
            (Body::File { start, len, .. }, Some(d)) => copy(&d, start, len, &mut stream),
            _ => Ok(()),
        };
        let result = result.and_then(|_| Write::flush(&mut stream));
        drop(stream);
        match result {
            // For HEAD, Content-Length is GET's and no body follows: the host
            // reports a size mismatch here, but HTTP never reads a HEAD
            // response's body, so the client gets exactly the headers.
            Ok(()) => {
                let _ = OutgoingBody::finish(body, None);
            }
            // The client went away, or the file changed under us: the host
            // sees a short body and drops the connection.
            Err(e) => eprintln!("static-web: sending the body: {e}"),
        }
    }

    /// `len` bytes from `start`, spliced by the host from the file's stream
    /// into the body (no copy through the guest's memory).
    fn copy(d: &Descriptor, start: u64, len: u64, to: &mut OutputStream) -> std::io::Result<()> {
        let err = |e: String| std::io::Error::other(e);
        let from = d.read_via_stream(start).map_err(|e| err(e.to_string()))?;
        let mut left = len;
        while left > 0 {
            match to.blocking_splice(&from, left) {
                Ok(0) => return Err(err("the file is shorter than its record".into())),
                Ok(n) => left -= n.min(left),
                Err(StreamError::Closed) => {
                    return Err(err("the file is shorter than its record".into()))
                }
                Err(StreamError::LastOperationFailed(e)) => return Err(err(e.to_debug_string())),
            }
        }
        Ok(())
    }

    fn send_error(out: ResponseOutparam) {
        let response = OutgoingResponse::new(Fields::new());
        let _ = response.set_status_code(500);
        let body = response.body().ok();
        ResponseOutparam::set(out, Ok(response));
        if let Some(b) = body {
            let _ = OutgoingBody::finish(b, None);
        }
    }

    wasip2::http::proxy::export!(Server with_types_in wasip2);
}

/// The component's command entry: unused (`ws2i run` calls the exported
/// wasi:http/incoming-handler), but a bin needs one.
fn main() {
    eprintln!("static-web run: this is a wasi:http component; serve it with `ws2i run IMAGE -p PORT:8080`");
}
