//! run: a wasi:http proxy component serving /opt/app-root/web. Each request
//! gets a fresh instance, so all it does is: read the request, look up one
//! metadata record, answer (the decisions are static_web::serve's).
//!
//! Built for wasm32-wasip2; for wasip1 (the workspace's default target) it
//! is an empty program.

#[cfg(target_env = "p2")]
mod server {
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::path::Path;

    use static_web::layout;
    use static_web::serve::{self, Body, Request, Response};
    use static_web::site::{self, FsSite};
    use wasip2::exports::http::incoming_handler::Guest;
    use wasip2::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};

    struct Server;

    impl Guest for Server {
        fn handle(req: IncomingRequest, out: ResponseOutparam) {
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
                    values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect::<Vec<_>>().join(", ")
                })
            };
            let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("WEB_")).collect();
            let (cfg, _) = site::load_config(Path::new(layout::CONFIG), &env);
            let site = FsSite { meta: layout::META_DIR.into() };
            let resp = serve::respond(&Request { method: &method, target: &target, headers: &lookup }, &site, &cfg);
            send(resp, out, method == "HEAD");
        }
    }

    fn send(resp: Response, out: ResponseOutparam, head: bool) {
        let mut file = None;
        if let Body::File { rel, encoding, start, len } = &resp.body {
            let path = format!("{}/{rel}{}", layout::WEB_ROOT, encoding.file_suffix());
            match File::open(&path).and_then(|mut f| f.seek(SeekFrom::Start(*start)).map(|_| f)) {
                Ok(f) => file = Some(f.take(*len)),
                Err(e) => {
                    eprintln!("static-web: {path}: {e}");
                    return send_error(out);
                }
            }
        }
        // A HEAD response carries no body, and the host checks a body against
        // Content-Length: leave the header out rather than lie with it.
        let fields: Vec<(String, Vec<u8>)> = resp
            .headers
            .iter()
            .filter(|(n, _)| !(head && *n == "content-length"))
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
            (Body::File { .. }, Some(mut f)) => copy(&mut f, &mut stream),
            _ => Ok(()),
        };
        let result = result.and_then(|_| Write::flush(&mut stream));
        drop(stream);
        match result {
            Ok(()) => {
                let _ = OutgoingBody::finish(body, None);
            }
            // The client went away, or the file changed under us: the host
            // sees a short body and drops the connection.
            Err(e) => eprintln!("static-web: sending the body: {e}"),
        }
    }

    fn copy(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = from.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            to.write_all(&buf[..n])?;
        }
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
