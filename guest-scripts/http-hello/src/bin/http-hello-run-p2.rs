//! A wasi:http handler with paths that misbehave on purpose:
//!   /trap      traps (the host must answer 500 and keep serving)
//!   /loop      spins forever (the host's per-request time budget must stop it)
//!   /env/NAME  answers the value of environment variable NAME
//!   /file/P    answers the contents of file /P in its rootfs
//!   /write/P   writes "written" to /P (a served rootfs is read-only: the host must refuse it)
//!   /echo      reads the whole request body and answers its length (408 if reading it fails)
//!   anything else: "hello from wasi:http" and the path

#[cfg(target_env = "p2")]
mod server {
    use wasip2::exports::http::incoming_handler::Guest;
    use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

    struct Server;

    impl Guest for Server {
        fn handle(req: IncomingRequest, out: ResponseOutparam) {
            let path = req.path_with_query().unwrap_or_else(|| "/".into());
            let (status, body) = if path == "/trap" {
                core::arch::wasm32::unreachable()
            } else if path == "/loop" {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            } else if let Some(name) = path.strip_prefix("/env/") {
                match std::env::var(name) {
                    Ok(v) => (200, v),
                    Err(_) => (404, format!("no {name}\n")),
                }
            } else if let Some(p) = path.strip_prefix("/file/") {
                match std::fs::read_to_string(format!("/{p}")) {
                    Ok(v) => (200, v),
                    Err(e) => (404, format!("{e}\n")),
                }
            } else if path == "/echo" {
                match read_body(&req) {
                    Ok(b) => (200, format!("{} bytes\n", b.len())),
                    Err(e) => (408, format!("reading the body failed: {e}\n")),
                }
            } else if let Some(p) = path.strip_prefix("/write/") {
                match std::fs::write(format!("/{p}"), "written") {
                    Ok(()) => (200, "ok\n".to_string()),
                    Err(e) => (500, format!("{e}\n")),
                }
            } else {
                (200, format!("hello from wasi:http\npath: {path}\n"))
            };
            let headers = Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())]).expect("a valid header");
            let resp = OutgoingResponse::new(headers);
            let _ = resp.set_status_code(status);
            let Ok(outgoing) = resp.body() else { return };
            ResponseOutparam::set(out, Ok(resp));
            if let Ok(stream) = outgoing.write() {
                // blocking_write_and_flush takes at most 4096 bytes a call.
                for chunk in body.as_bytes().chunks(4096) {
                    if stream.blocking_write_and_flush(chunk).is_err() {
                        break;
                    }
                }
            }
            let _ = OutgoingBody::finish(outgoing, None);
        }
    }

    fn read_body(req: &IncomingRequest) -> Result<Vec<u8>, String> {
        use wasip2::io::streams::StreamError;
        let body = req.consume().map_err(|()| "the body was taken".to_string())?;
        let stream = body.stream().map_err(|()| "the body has no stream".to_string())?;
        let mut out = Vec::new();
        loop {
            match stream.blocking_read(65536) {
                Ok(chunk) => out.extend(chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
            }
        }
        Ok(out)
    }

    wasip2::http::proxy::export!(Server with_types_in wasip2);
}

/// The component's command entry: unused (`ws2i run -p` calls the exported handler).
fn main() {}
