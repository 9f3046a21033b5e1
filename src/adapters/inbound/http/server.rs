//! The connection-level server: accepts TCP connections under a cap, cuts off clients that are
//! too slow or too idle, and shuts down gracefully within a deadline (docs/src/http.md,
//! docs/src/configuration.md).
//!
//! `axum::serve` has no timeouts and no connection limit, so a client that trickles its
//! headers, or 20,000 idle connections, hold the process's file handles forever. Here:
//! - at most `max_connections` sockets are open at once (WebSockets included: the place is
//!   held by the socket itself, so it is freed exactly when the socket closes), lowered to
//!   leave file handles to spare under the process's open-file limit; while the cap is
//!   reached, new connections wait in the kernel's backlog until an idle one is reaped;
//! - a request's headers must arrive within `header_timeout` of its first byte (or of the
//!   connection's opening);
//! - a keep-alive connection with no request in flight is closed after `idle_timeout`, and
//!   one whose client stops reading an answer for that long is dropped;
//! - the body's own deadline is the route's (`POST /graphql`), the operation's the schema's;
//! - after an error answer to a request with a body (a 413 sent before the body was read),
//!   the connection lingers before it closes: its write side is shut, and what the client
//!   still sends is read and dropped for up to [`LINGER_TIME`] and [`LINGER_BYTES`], so a
//!   client that writes its whole body before reading gets the answer, not a reset;
//! - an upgrade request is given the client's address ([`ClientAddress`]) and a
//!   [`FrameWatch`] that sees every byte the WebSocket then sends.
//!
//! On shutdown the listener closes, idle connections close, in-flight requests finish, open
//! WebSockets are told to close; whatever is still open after `shutdown_timeout` is dropped.
//! Acknowledged writes are durable before they are acknowledged, so dropping loses none.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use super::websocket_frames::FrameWatch;

/// The most a request's line and headers may take (hyper's own default is about 400 KiB, so a
/// thousand connections could hold 400 MiB of headers); more is refused with 431.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The longest a connection lingers after an error answer, reading what the client still
/// sends.
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// The most a lingering connection reads and drops before it closes anyway.
pub const LINGER_BYTES: usize = 8 * 1024 * 1024;

/// The address a request came from, given to upgrade requests (the WebSocket cap per client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// File handles kept free beside the connections: the data file, its lock, the watcher,
/// temporary files while writing, logs.
pub const SPARE_FILE_HANDLES: u64 = 64;

/// The connection limits and timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The connection cap actually used: `configured`, lowered so that the connections and
/// [`SPARE_FILE_HANDLES`] fit under the process's open-file limit.
pub fn connection_cap(configured: usize) -> usize {
    match open_file_limit() {
        Some(limit) => {
            let room = usize::try_from(limit.saturating_sub(SPARE_FILE_HANDLES)).unwrap_or(usize::MAX);
            configured.min(room).max(1)
        }
        None => configured.max(1),
    }
}

/// The soft limit on open files, where the system says (Linux's `/proc/self/limits`).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` until `shutdown` completes, then drains as described in the
/// module documentation. `closing` is set to true when shutdown begins (the WebSockets watch
/// it too).
///
/// # Errors
/// Never in practice: accept errors are logged and retried. The signature leaves room.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServerSettings,
    closing: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let cap = connection_cap(settings.max_connections);
    if cap < settings.max_connections {
        tracing::warn!(
            configured = settings.max_connections,
            cap,
            "the connection cap is lowered to fit under the open-file limit"
        );
    }
    let slots = Arc::new(Semaphore::new(cap));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, client) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, ClientAddress(peer.ip())),
                Err(err) => {
                    accept_failed(&err).await;
                    continue;
                }
            },
        };
        connections.spawn(connection(
            stream,
            client,
            slot,
            router.clone(),
            settings,
            closing.subscribe(),
        ));
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closing.send(true);
    let every_slot = u32::try_from(cap).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(settings.shutdown_timeout, slots.acquire_many(every_slot)).await;
    if drained.is_err() {
        tracing::warn!(
            open = cap.saturating_sub(slots.available_permits()),
            deadline_s = settings.shutdown_timeout.as_secs_f64(),
            "dropping the connections still open at the shutdown deadline"
        );
    }
    connections.shutdown().await;
    Ok(())
}

/// Errors of one connection (reset, refused) are the client's; anything else (out of file
/// handles) is logged and retried after a pause rather than spun on.
async fn accept_failed(err: &io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn connection(
    stream: TcpStream,
    client: ClientAddress,
    slot: OwnedSemaphorePermit,
    router: Router,
    settings: ServerSettings,
    mut closing: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::default());
    let io = TimedIo::new(stream, slot, Arc::clone(&activity), settings);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
        let activity = Arc::clone(&activity);
        async move {
            let _busy = activity.begin();
            let mut request = request.map(Body::new);
            activity.prepare_upgrade(&mut request, client);
            let has_body = has_body(&request);
            let mut response = router.oneshot(request).await;
            if let Ok(response) = &mut response {
                activity.answered(response, has_body);
                closes_if_body_unread(response, has_body);
            }
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header deadline is kept by `TimedIo`, which knows idle time from header time.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_header_size(MAX_HEADER_BYTES);
    let served = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        () = async { let _ = closing.wait_for(|closing| *closing).await; } => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

/// What the service tells the socket about the requests on it.
#[derive(Default)]
struct Activity {
    /// Requests being served right now.
    busy: AtomicUsize,
    /// Requests finished so far: a change starts a new idle period.
    finished: AtomicU64,
    /// The connection became a WebSocket; its own rules apply from then on.
    upgraded: AtomicBool,
    /// The last answer refused a request with a body, which may still be arriving.
    linger: AtomicBool,
    /// The frames of the WebSocket this connection may become.
    frames: OnceLock<Arc<FrameWatch>>,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
    }

    /// Gives an upgrade request the client's address and the watch over its frames.
    fn prepare_upgrade(&self, request: &mut Request<Body>, client: ClientAddress) {
        if !request.headers().contains_key(header::UPGRADE) {
            return;
        }
        let frames = Arc::clone(self.frames.get_or_init(Default::default));
        request.extensions_mut().insert(client);
        request.extensions_mut().insert(frames);
    }

    /// Notes what an answer means for the connection: a WebSocket from now on, or a
    /// lingering close if it refused a request whose body may still be on its way.
    fn answered<B>(&self, response: &Response<B>, has_body: bool) {
        let status = response.status();
        if status == StatusCode::SWITCHING_PROTOCOLS {
            self.upgraded.store(true, Ordering::Relaxed);
        }
        let refused = status.is_client_error() || status.is_server_error();
        self.linger.store(has_body && refused, Ordering::Relaxed);
    }
}

/// A refusal that leaves the body unread (too large, too slow) ends the connection: it says
/// so, or a client that pools connections would send its next request down this one while
/// it lingers closed.
fn closes_if_body_unread<B>(response: &mut Response<B>, has_body: bool) {
    let status = response.status();
    if has_body && (status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT) {
        response
            .headers_mut()
            .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    }
}

/// Whether a request says it has a body.
fn has_body<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// Marks a request in flight until dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the read deadline is waiting for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Nothing: a request is being served, or the socket is a WebSocket.
    Nothing,
    /// The first byte of the next request (idle keep-alive, or a fresh connection).
    NextRequest,
    /// The rest of a request's headers.
    Headers,
}

/// A TCP stream that fails its reads when the client is too slow or idle too long, and its
/// writes when the client stops reading; it holds the connection's place under the cap.
struct TimedIo {
    stream: TcpStream,
    activity: Arc<Activity>,
    settings: ServerSettings,
    waiting: Waiting,
    /// When what is awaited must have arrived.
    deadline: Instant,
    /// Fires no later than `deadline`; re-armed lazily (see `poll_read`), so a busy
    /// keep-alive connection does not touch the timer wheel on every request.
    read_deadline: Pin<Box<Sleep>>,
    seen_finished: u64,
    /// Armed while a write makes no progress.
    write_stall: Option<Pin<Box<Sleep>>>,
    /// Set once the connection closes lingering.
    linger: Option<Linger>,
    _slot: OwnedSemaphorePermit,
}

impl TimedIo {
    fn new(
        stream: TcpStream,
        slot: OwnedSemaphorePermit,
        activity: Arc<Activity>,
        settings: ServerSettings,
    ) -> Self {
        Self {
            stream,
            activity,
            settings,
            waiting: Waiting::NextRequest,
            deadline: Instant::now() + settings.header_timeout,
            read_deadline: Box::pin(tokio::time::sleep(settings.header_timeout)),
            seen_finished: 0,
            write_stall: None,
            linger: None,
            _slot: slot,
        }
    }

    fn wait_for(&mut self, waiting: Waiting, within: Duration) {
        let now = Instant::now();
        self.waiting = waiting;
        self.deadline = now + within;
        // The timer is moved only when it could fire too late (after the header deadline,
        // the shortest); firing early is handled when it fires. On a busy keep-alive
        // connection it so moves once per header timeout, not once per request.
        let latest = now + within.min(self.settings.header_timeout);
        if self.read_deadline.deadline() > latest {
            self.read_deadline.as_mut().reset(latest);
        }
    }

    /// Whether the deadline has passed; when only the timer fired early, re-arms it.
    fn deadline_passed(&mut self, cx: &mut Context<'_>) -> bool {
        while self.read_deadline.as_mut().poll(cx).is_ready() {
            if Instant::now() >= self.deadline {
                return true;
            }
            let deadline = self.deadline;
            self.read_deadline.as_mut().reset(deadline);
        }
        false
    }

    fn timed_out(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.activity.upgraded.load(Ordering::Relaxed) || this.activity.busy.load(Ordering::Relaxed) > 0 {
            this.waiting = Waiting::Nothing;
        } else {
            let finished = this.activity.finished.load(Ordering::Relaxed);
            if finished != this.seen_finished {
                this.seen_finished = finished;
                let idle = this.settings.idle_timeout;
                this.wait_for(Waiting::NextRequest, idle);
            }
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if this.waiting == Waiting::Nothing => {
                if this.activity.upgraded.load(Ordering::Relaxed)
                    && let Some(frames) = this.activity.frames.get()
                {
                    frames.observe(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && this.waiting == Waiting::NextRequest {
                    let header = this.settings.header_timeout;
                    this.wait_for(Waiting::Headers, header);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.waiting == Waiting::Nothing || !this.deadline_passed(cx) {
                    return Poll::Pending;
                }
                let what = if this.waiting == Waiting::Headers {
                    "the request headers did not arrive in time"
                } else {
                    "the connection was idle too long"
                };
                Poll::Ready(Err(Self::timed_out(what)))
            }
            other => other,
        }
    }
}

impl TimedIo {
    /// Arms the stall timer while a write makes no progress; fails the write when it fires.
    fn after_write<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.write_stall = None;
            return result;
        }
        let idle = self.settings.idle_timeout;
        let stall = self
            .write_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        if stall.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(Self::timed_out("the client stopped reading")));
        }
        Poll::Pending
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.stream).poll_write(cx, data);
        this.after_write(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.after_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.linger.is_none()
            && this.activity.linger.load(Ordering::Relaxed)
            && !this.activity.upgraded.load(Ordering::Relaxed)
        {
            this.linger = Some(Linger::new());
        }
        match this.linger.as_mut() {
            Some(linger) => linger.poll_close(&mut this.stream, cx),
            None => Pin::new(&mut this.stream).poll_shutdown(cx),
        }
    }
}

/// A lingering close (as web servers do it): the write side is shut, so the client has the
/// whole answer and an end; then what it still sends is read and dropped until it stops, or
/// for at most [`LINGER_TIME`] and [`LINGER_BYTES`]. Closing with unread bytes would send a
/// reset instead, and a client still writing its body would get a broken pipe, not the answer.
struct Linger {
    write_shut: bool,
    until: Pin<Box<Sleep>>,
    dropped: usize,
    buffer: Box<[u8]>,
}

impl Linger {
    fn new() -> Self {
        Self {
            write_shut: false,
            until: Box::pin(tokio::time::sleep(LINGER_TIME)),
            dropped: 0,
            buffer: vec![0; 16 * 1024].into_boxed_slice(),
        }
    }

    fn poll_close(&mut self, stream: &mut TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.write_shut {
            if let Err(err) = std::task::ready!(Pin::new(&mut *stream).poll_shutdown(cx)) {
                return Poll::Ready(Err(err));
            }
            self.write_shut = true;
        }
        loop {
            if self.until.as_mut().poll(cx).is_ready() || self.dropped >= LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut self.buffer);
            match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => self.dropped += buf.filled().len(),
                // The client's end, or its reset: nothing more will come.
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_file_handles_to_spare() {
        let cap = connection_cap(usize::MAX);
        if let Some(limit) = open_file_limit() {
            assert!((cap as u64) <= limit.saturating_sub(SPARE_FILE_HANDLES).max(1));
        }
        assert_eq!(connection_cap(10), 10.min(cap));
    }
}
