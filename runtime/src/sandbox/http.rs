//! Serving a `wasi:http/proxy` component (what `wasmtime serve` and runwasi's wasmtime shim do):
//! a hyper HTTP/1 server on loopback, one fresh store and instance per request, each with the
//! memory budget and a wall-clock deadline of its own. A request that traps or runs out of time
//! gets a 500/503 and the server keeps serving; the guest may not make outbound requests.
//!
//! Per request, the costs are kept to what isolation needs (docs/run.md, "Speed"): instances
//! come from a pooling allocator (a slot reset instead of mmap/munmap), WASI file calls run on
//! the worker thread instead of a blocking-pool round trip each, and sockets are TCP_NODELAY
//! so a head written before its body does not wait out a delayed ACK.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::detect::{detect, WasmKind};
use super::engine::{Compiled, Engines, EPOCH_TICK};
use super::error::{BudgetKind, SandboxError};
use super::host::normalize;
use super::{Budget, Sandbox};

/// The export that makes a component an HTTP handler (any 0.2.x version).
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2";
/// The export that makes a component a command.
const CLI_RUN: &str = "wasi:cli/run@0.2";

/// How a WebAssembly program is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    /// A WASI preview 1 core module (`_start`).
    CoreModule,
    /// A component exporting `wasi:cli/run`.
    Command,
    /// A component exporting `wasi:http/incoming-handler`: it is served, not run.
    HttpProxy,
    /// A component exporting neither.
    OtherComponent,
}

impl ProgramKind {
    pub fn wasm_kind(self) -> WasmKind {
        match self {
            ProgramKind::CoreModule => WasmKind::Core,
            _ => WasmKind::Component,
        }
    }
}

/// One server: which proxy component, what it sees, and where it listens.
#[derive(Debug, Clone)]
pub struct HttpServe {
    /// Host directory each request's instance sees as `/`, read-only: no request can change
    /// what a later one sees, and nothing a request does takes disk.
    pub rootfs: PathBuf,
    /// Absolute guest path of the component.
    pub program: String,
    /// argv after argv[0].
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    /// `memory` caps each request's linear memory, `timeout` each request's wall time.
    pub budget: Budget,
    pub listen: SocketAddr,
    /// Requests handled at once; more wait for a slot. Fewer when `limits.memory` says so.
    pub max_concurrent: usize,
    /// How long in-flight requests may take to finish after shutdown was asked for.
    pub drain: Duration,
    pub limits: ServeLimits,
}

/// What keeps slow, idle or greedy clients from taking the server away from the others.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// A request's head must arrive within this (slowloris); the connection is closed otherwise.
    pub header_timeout: Duration,
    /// Each piece of a request body must arrive within this of the previous one; the guest then
    /// reads an error and its slot is freed, instead of waiting out the request's time budget.
    pub body_idle_timeout: Duration,
    /// Open connections at most. At the cap, idle keep-alive connections are closed to make
    /// room; when none is idle, the new connection is refused.
    pub max_connections: usize,
    /// The memory of all requests at once: slots × `budget.memory` stays within it.
    pub memory: crate::Size,
}

impl Default for ServeLimits {
    fn default() -> Self {
        // nginx's client_header_timeout and client_body_timeout are 60 s; a sandbox serving
        // many tenants on one machine can afford less patience.
        ServeLimits {
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            max_connections: 1024,
            memory: crate::Size::gib(8),
        }
    }
}

impl HttpServe {
    /// Slots the memory bound allows: `max_concurrent`, or fewer so that slots × the memory
    /// budget of a request fit in `limits.memory`. An error when not even one fits.
    pub fn slots(&self) -> Result<usize, SandboxError> {
        let per = self.budget.memory.bytes().max(1);
        let fit = self.limits.memory.bytes() / per;
        if fit == 0 {
            return Err(SandboxError::Setup(format!(
                "a request's memory budget ({}) is larger than the server's memory bound ({})",
                self.budget.memory, self.limits.memory
            )));
        }
        Ok(self.max_concurrent.max(1).min(usize::try_from(fit).unwrap_or(usize::MAX)))
    }
}

/// What a server did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeStats {
    pub requests: u64,
    /// Requests answered with a 5xx by ws2i because the guest trapped or ran out of time.
    pub failed: u64,
}

fn read_program(rootfs: &Path, program: &str) -> Result<Vec<u8>, SandboxError> {
    let not_found = || SandboxError::NotFound { path: program.into() };
    if !program.starts_with('/') {
        return Err(SandboxError::Setup(format!("program path {program} must be absolute (a path inside the rootfs)")));
    }
    let dir = Dir::open_ambient_dir(rootfs, ambient_authority())
        .map_err(|e| SandboxError::io(format!("cannot open rootfs {}", rootfs.display()), e))?;
    let rel: PathBuf = normalize(program).iter().collect();
    // cap-std refuses symlinks leading outside the rootfs: to the guest such a file does not exist.
    match dir.metadata(&rel) {
        Ok(md) if md.is_file() => {}
        _ => return Err(not_found()),
    }
    dir.read(&rel).map_err(|e| SandboxError::io(format!("cannot read {program}"), e))
}

impl Sandbox {
    /// Read, compile (or fetch compiled) and classify the program at guest path `program`.
    /// Anything but WebAssembly is [`SandboxError::NotWasm`], whose `found` names it.
    pub fn classify(&self, rootfs: &Path, program: &str) -> Result<ProgramKind, SandboxError> {
        let bytes = read_program(rootfs, program)?;
        let kind = detect(&bytes).map_err(|found| SandboxError::NotWasm { path: program.into(), found })?;
        let (compiled, _) = self.engines.load(program, kind, &bytes)?;
        Ok(match compiled {
            Compiled::Core(_) => ProgramKind::CoreModule,
            Compiled::Component(c) => component_kind(&self.engines, &c),
        })
    }

    /// Serve `serve.program` until `shutdown` resolves; `ready` is told the bound address once
    /// connections are accepted. Then no new connection is accepted, in-flight requests get
    /// `serve.drain` to finish, and everything the server started has ended when this returns.
    pub fn serve_http(
        &self,
        serve: HttpServe,
        ready: impl FnOnce(SocketAddr),
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<ServeStats, SandboxError> {
        let bytes = read_program(&serve.rootfs, &serve.program)?;
        let kind = detect(&bytes).map_err(|found| SandboxError::NotWasm { path: serve.program.clone(), found })?;
        match self.engines.load(&serve.program, kind, &bytes)?.0 {
            Compiled::Component(c) if component_kind(&self.engines, &c) == ProgramKind::HttpProxy => {}
            _ => {
                return Err(SandboxError::Setup(format!(
                    "{} does not export wasi:http/incoming-handler, so it cannot be served over HTTP",
                    serve.program
                )))
            }
        }

        // A pool slot per request being handled (a slot is held until the body is sent).
        let slots = serve.slots()?;
        let engines = match self.engines.pooled(u32::try_from(slots).unwrap_or(u32::MAX).saturating_add(2), serve.budget.memory.bytes()) {
            Some(pooled) => pooled,
            None => self.engines.clone(),
        };
        let component = match engines.load(&serve.program, kind, &bytes)?.0 {
            Compiled::Component(c) => c,
            Compiled::Core(_) => return Err(SandboxError::Setup(format!("{} changed while it was being loaded", serve.program))),
        };
        let setup = |what: &str, e: wasmtime::Error| SandboxError::Setup(format!("{what}: {e:#}"));
        let mut linker = wasmtime::component::Linker::<RequestState>::new(&engines.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| setup("linking WASI", e))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| setup("linking wasi:http", e))?;
        let pre = linker.instantiate_pre(&component).map_err(|e| setup(&format!("cannot link {}", serve.program), e))?;
        let pre = ProxyPre::new(pre).map_err(|e| setup(&format!("{} is not a wasi:http proxy", serve.program), e))?;

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ws2i-http")
            .enable_all()
            .build()
            .map_err(|e| SandboxError::io("cannot start the HTTP runtime", e))?;
        let server = Arc::new(Server { pre, serve: serve.clone(), engines, slots });
        let result = rt.block_on(async move {
            let listener = TcpListener::bind(serve.listen)
                .await
                .map_err(|e| SandboxError::io(format!("cannot listen on {}", serve.listen), e))?;
            let addr = listener.local_addr().map_err(|e| SandboxError::io("cannot read the bound address", e))?;
            // Poll `shutdown` once before announcing the address, so signal handlers it installs
            // exist by the time a client (or a test) can see the server.
            let mut shutdown = Box::pin(shutdown);
            let stopped = tokio::select! { biased; _ = &mut shutdown => true, _ = std::future::ready(()) => false };
            if stopped {
                return Ok(ServeStats::default());
            }
            ready(addr);
            Ok::<_, SandboxError>(server.run(listener, shutdown).await)
        });
        // Tasks still running past the drain (a guest blocked in a host call) are dropped here.
        rt.shutdown_timeout(Duration::from_secs(1));
        result
    }
}

fn component_kind(engines: &Engines, c: &Component) -> ProgramKind {
    let ty = c.component_type();
    let names: Vec<&str> = ty.exports(&engines.engine).map(|(n, _)| n).collect();
    if names.iter().any(|n| n.starts_with(INCOMING_HANDLER)) {
        ProgramKind::HttpProxy
    } else if names.iter().any(|n| n.starts_with(CLI_RUN)) {
        ProgramKind::Command
    } else {
        ProgramKind::OtherComponent
    }
}

struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
    hooks: DenyOutbound,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// The served guest gets no network: outgoing requests are refused.
struct DenyOutbound;

impl WasiHttpHooks for DenyOutbound {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

struct Server {
    pre: ProxyPre<RequestState>,
    serve: HttpServe,
    engines: Arc<Engines>,
    slots: usize,
}

/// The open connections, so that the accept loop can close idle ones at the cap.
#[derive(Default)]
struct Connections {
    next: u64,
    /// By age (ids grow): whether a request is in flight, and how to ask it to close.
    open: std::collections::BTreeMap<u64, (Arc<std::sync::atomic::AtomicUsize>, Arc<tokio::sync::Notify>)>,
}

impl Connections {
    /// Asks the oldest idle connection to close; false when all are busy.
    fn shed_idle(&mut self) -> bool {
        use std::sync::atomic::Ordering;
        let idle = self.open.iter().find(|(_, (busy, _))| busy.load(Ordering::Acquire) == 0).map(|(id, _)| *id);
        match idle.and_then(|id| self.open.remove(&id)) {
            Some((_, close)) => {
                close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Counts a request in flight on its connection while it lives.
struct Busy(Arc<std::sync::atomic::AtomicUsize>);

impl Busy {
    fn new(count: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Why ws2i, not the guest, answered a request.
enum Failure {
    Timeout,
    Trap(String),
}

impl Server {
    async fn run(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) -> ServeStats {
        let (stop_tx, stop_rx) = watch::channel(false);
        let slots = Arc::new(Semaphore::new(self.slots));
        let stats = Arc::new(std::sync::Mutex::new(ServeStats::default()));
        let registry = Arc::new(std::sync::Mutex::new(Connections::default()));
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let (id, busy, close) = {
                        let mut reg = registry.lock().unwrap_or_else(|e| e.into_inner());
                        // At the cap: make room by closing an idle keep-alive connection, or
                        // refuse this one (dropping it) when every connection is busy.
                        if reg.open.len() >= self.serve.limits.max_connections.max(1) && !reg.shed_idle() {
                            continue;
                        }
                        let id = reg.next;
                        reg.next += 1;
                        let entry = (Arc::new(std::sync::atomic::AtomicUsize::new(0)), Arc::new(tokio::sync::Notify::new()));
                        reg.open.insert(id, entry.clone());
                        (id, entry.0, entry.1)
                    };
                    // Without it a body written after its head waits for the client's delayed
                    // ACK (40 ms on Linux) whenever the two leave as separate segments.
                    let _ = stream.set_nodelay(true);
                    let (me, slots, stats, mut stop, registry) = (self.clone(), slots.clone(), stats.clone(), stop_rx.clone(), registry.clone());
                    conns.spawn(async move {
                        let header_timeout = me.serve.limits.header_timeout;
                        let service = hyper::service::service_fn(move |req| {
                            let (me, slots, stats, busy) = (me.clone(), slots.clone(), stats.clone(), Busy::new(&busy));
                            async move {
                                let resp = me.handle(req, slots, &stats).await;
                                drop(busy);
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(header_timeout)
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service);
                        tokio::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            _ = stop.changed() => { conn.as_mut().graceful_shutdown(); let _ = conn.await; }
                            _ = close.notified() => { conn.as_mut().graceful_shutdown(); let _ = conn.await; }
                        }
                        registry.lock().unwrap_or_else(|e| e.into_inner()).open.remove(&id);
                    });
                }
                // Reap finished connections so the set does not grow with the server's age.
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(self.serve.drain, async { while conns.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            conns.abort_all();
            while conns.join_next().await.is_some() {}
        }
        let s = stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        s
    }

    async fn handle(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        slots: Arc<Semaphore>,
        stats: &std::sync::Mutex<ServeStats>,
    ) -> hyper::Response<HyperOutgoingBody> {
        let result = match slots.acquire_owned().await {
            Ok(slot) => self.call(req, slot).await,
            Err(_closed) => Err(Failure::Trap("the server is stopping".into())),
        };
        let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
        s.requests += 1;
        match result {
            Ok(resp) => resp,
            Err(failure) => {
                s.failed += 1;
                match failure {
                    Failure::Timeout => {
                        let limit = self.serve.budget.exceeded(BudgetKind::Time).limit;
                        eprintln!("ws2i: request stopped: it exceeded its time budget ({limit})");
                        plain(503, format!("request exceeded its time budget ({limit})\n"))
                    }
                    Failure::Trap(message) => {
                        eprintln!("ws2i: request failed: {message}");
                        plain(500, "the request handler failed\n".into())
                    }
                }
            }
        }
    }

    /// `slot` is held by the instance's task, so it counts until the body has been sent and the
    /// store dropped: the pool never has more live instances than slots.
    async fn call(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        slot: OwnedSemaphorePermit,
    ) -> Result<hyper::Response<HyperOutgoingBody>, Failure> {
        let serve = &self.serve;
        let trap = |e: wasmtime::Error| Failure::Trap(format!("{e:#}"));
        let mut store = Store::new(&self.engines.engine, self.state().map_err(|e| Failure::Trap(e.to_string()))?);
        store.limiter(|s| &mut s.limits);
        let ticks = (serve.budget.timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = req.map(|body| IdleTimeoutBody::new(body, serve.limits.body_idle_timeout));
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(trap)?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(trap)?;
        let pre = self.pre.clone();
        // The handler may keep running after it sent the head (streaming the body), so it runs
        // in its own task; epoch interruption bounds compute, the timeout bounds a guest blocked
        // in a host call.
        let deadline = serve.budget.timeout + Duration::from_secs(1);
        let task = tokio::task::spawn(tokio::time::timeout(deadline, async move {
            let _slot = slot;
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
        }));
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(Failure::Trap(format!("the handler answered with error {code:?}"))),
            Err(_) => match task.await {
                Ok(Ok(Ok(()))) => Err(Failure::Trap("the handler returned without setting a response".into())),
                Ok(Ok(Err(e))) if is_interrupt(&e) => Err(Failure::Timeout),
                Ok(Ok(Err(e))) => Err(trap(e)),
                Ok(Err(_elapsed)) => Err(Failure::Timeout),
                Err(join) => Err(Failure::Trap(format!("the request task failed: {join}"))),
            },
        }
    }

    fn state(&self) -> Result<RequestState, SandboxError> {
        let serve = &self.serve;
        let mut b = WasiCtxBuilder::new();
        // File calls run on the worker thread, not as a spawn_blocking round trip each. Set
        // first: a preopen copies the flag when it is made. A file call can block a worker
        // only on a FIFO or device, and a served rootfs has none: layers are unpacked without
        // them and WASI cannot make one.
        b.allow_blocking_current_thread(true);
        b.preopened_dir(&serve.rootfs, "/", FsPerms::ReadOnly)
            .map_err(|e| SandboxError::Setup(format!("cannot open rootfs {}: {e:#}", serve.rootfs.display())))?;
        let mut args = vec![serve.program.clone()];
        args.extend(serve.args.iter().cloned());
        b.args(&args);
        let cwd = if serve.cwd.is_empty() { "/".to_string() } else { serve.cwd.clone() };
        let mut env = serve.env.clone();
        if !env.iter().any(|(k, _)| k == "PWD") {
            env.push(("PWD".into(), cwd.clone()));
        }
        b.envs(&env);
        b.initial_cwd(&cwd);
        b.inherit_stdout();
        b.inherit_stderr();
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(serve.budget.memory.bytes()).unwrap_or(usize::MAX))
            .instances(100)
            .table_elements(10_000_000)
            .build();
        Ok(RequestState {
            wasi: b.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits,
            hooks: DenyOutbound,
        })
    }
}

/// A request body each of whose frames must arrive within `idle` of the previous one (or of
/// the head): a client that stops sending mid-body gets its request failed and frees its slot.
struct IdleTimeoutBody {
    inner: hyper::body::Incoming,
    idle: Duration,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimeoutBody {
    fn new(inner: hyper::body::Incoming, idle: Duration) -> Self {
        IdleTimeoutBody { inner, idle, timer: Box::pin(tokio::time::sleep(idle)) }
    }
}

impl hyper::body::Body for IdleTimeoutBody {
    type Data = Bytes;
    type Error = ErrorCode;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, ErrorCode>>> {
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(ErrorCode::from)))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(ErrorCode::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

fn is_interrupt(e: &wasmtime::Error) -> bool {
    matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt))
}

fn plain(status: u16, body: String) -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(body)).map_err(|never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} }).boxed_unsync();
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}
