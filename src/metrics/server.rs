//! The HTTP/1.1 server of `/metrics`: a thread per client, at most
//! [`MAX_CLIENTS`] at once, each bounded in time ([`REQUEST_TIMEOUT`]) and
//! size ([`MAX_REQUEST`]).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Metrics;
use super::exposition::CONTENT_TYPE;
use crate::Error;

/// The largest request head (request line and headers) the server reads; a
/// longer one is answered with `431` and the connection closed.
pub const MAX_REQUEST: usize = 8 * 1024;

/// How long a client has to send its whole request head, and to take the
/// response; a slower one is answered with `408` (or dropped) and the server
/// moves on to the next connection.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the idle server looks for a new connection. A stop request does
/// not wait for it: it wakes the server at once.
pub(super) const ACCEPT_POLL: Duration = Duration::from_millis(100);

/// The handle of a running metrics server. Dropping it stops the server.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    /// Dropping the sender is the stop request.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// The address the server listens on (with the port the system chose if
    /// it was bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the server thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the server and returns once its accepting thread has ended;
    /// the port is closed on return. A client being answered is answered on
    /// its own thread, which ends within [`REQUEST_TIMEOUT`] (twice, reading
    /// then writing).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!(addr = %self.addr, "the metrics server thread panicked");
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Limits of the server, shortened by the tests.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_request: usize,
    pub(super) timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_request: MAX_REQUEST, timeout: REQUEST_TIMEOUT }
    }
}

/// Serves `metrics` over HTTP on `addr` (e.g. `127.0.0.1:9477`, `[::]:9477`,
/// or port 0 for any free port): one new thread accepts, and each connection
/// is answered on a thread of its own (at most [`MAX_CLIENTS`] at once, one
/// more is told `503`), so a slow client holds up no other.
///
/// - `GET /metrics`: `200` with [`Metrics::render`], `Content-Type`
///   [`CONTENT_TYPE`];
/// - `GET /`: `200`, a short HTML page that points to `/metrics`;
/// - any other path: `404`; any method but `GET` and `HEAD`: `405`;
/// - a request head longer than [`MAX_REQUEST`]: `431`; one not received
///   within [`REQUEST_TIMEOUT`]: `408`; neither holds up the next client.
///
/// Every response closes the connection (`Connection: close`). A failed
/// connection is logged at debug level and never ends the server.
///
/// # Errors
///
/// [`Error::MetricsListen`] if the address cannot be bound (in use, not an
/// address of this host, not an address at all), [`Error::MetricsThread`] if
/// the thread cannot be started.
pub fn serve(metrics: Arc<Metrics>, addr: &str) -> Result<MetricsServer, Error> {
    serve_with(metrics, addr, Limits::default())
}

pub(super) fn serve_with(metrics: Arc<Metrics>, addr: &str, limits: Limits) -> Result<MetricsServer, Error> {
    let listen_error = |source| Error::MetricsListen { addr: addr.to_owned(), source };
    let listener = TcpListener::bind(addr).map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    // Non-blocking, so that the thread can wait on the stop channel instead.
    listener.set_nonblocking(true).map_err(listen_error)?;
    let (stop, stopped) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("fdir-metrics".into())
        .spawn(move || run(&listener, &metrics, &stopped, limits))
        .map_err(|source| Error::MetricsThread { addr: local.to_string(), source })?;
    Ok(MetricsServer { addr: local, stop: Some(stop), thread: Some(thread) })
}

/// The server loop: accept, answer, close; between connections, wait on the
/// stop channel (which wakes at once when the handle is dropped).
pub(super) fn run(listener: &TcpListener, metrics: &Arc<Metrics>, stopped: &Receiver<()>, limits: Limits) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let wait = match listener.accept() {
            Ok((stream, peer)) => {
                answer(stream, peer, metrics, &active, limits);
                Duration::ZERO
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ACCEPT_POLL,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Duration::ZERO,
            Err(e) => {
                // Out of file descriptors, a connection reset before accept ...:
                // wait a little rather than spin, and go on.
                tracing::warn!("metrics server cannot accept a connection: {e}");
                ACCEPT_POLL
            }
        };
        let stop = if wait.is_zero() {
            !matches!(stopped.try_recv(), Err(TryRecvError::Empty))
        } else {
            !matches!(stopped.recv_timeout(wait), Err(RecvTimeoutError::Timeout))
        };
        if stop {
            return;
        }
    }
}

/// The most connections answered at once; one more is told `503` at once.
pub const MAX_CLIENTS: usize = 16;

/// Answers a connection on a thread of its own, so that a slow client holds
/// up no other (each is bounded by [`REQUEST_TIMEOUT`]); beyond
/// [`MAX_CLIENTS`] at once, a `503`. Without a thread to be had, answered
/// here.
pub(super) fn answer(
    stream: TcpStream,
    peer: SocketAddr,
    metrics: &Arc<Metrics>,
    active: &Arc<AtomicUsize>,
    limits: Limits,
) {
    /// Counts a connection being answered, until dropped.
    struct Slot(Arc<AtomicUsize>);
    impl Drop for Slot {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    if active.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
        drop(Slot(Arc::clone(active)));
        let busy = Response::text(503, "Service Unavailable", "too many clients at once\n").to_bytes();
        let mut stream = stream;
        // A fresh socket's send buffer takes a short response without
        // waiting; what has arrived is read, not waited for (a request that
        // arrives after the close may reset the connection: refused either way).
        let _ = stream.set_nonblocking(true).and_then(|()| stream.write_all(&busy));
        let _ = stream.shutdown(Shutdown::Write);
        drain(&mut stream, Instant::now());
        tracing::debug!(%peer, "metrics: {MAX_CLIENTS} clients already, answered 503");
        return;
    }
    let slot = Slot(Arc::clone(active));
    let m = Arc::clone(metrics);
    let (tx, rx) = mpsc::channel::<TcpStream>();
    let spawned = std::thread::Builder::new().name("fdir-metrics-client".into()).spawn(move || {
        let _slot = slot;
        if let Ok(stream) = rx.recv()
            && let Err(e) = handle(stream, &m, limits)
        {
            tracing::debug!(%peer, "metrics request failed: {e}");
        }
    });
    let stream = match spawned {
        Ok(_) => match tx.send(stream) {
            Ok(()) => return,
            Err(mpsc::SendError(stream)) => stream,
        },
        Err(e) => {
            tracing::debug!("metrics: no thread for a client ({e}); answered in turn");
            stream
        }
    };
    if let Err(e) = handle(stream, metrics, limits) {
        tracing::debug!(%peer, "metrics request failed: {e}");
    }
}

/// What reading a request head came to.
pub(super) enum Head {
    /// The head, up to and including the blank line.
    Complete(Vec<u8>),
    /// Longer than the limit.
    TooLarge,
    /// The client closed the connection first.
    Closed,
    /// The client did not send it in time.
    TimedOut,
}

/// Answers one connection.
pub(super) fn handle(mut stream: TcpStream, metrics: &Metrics, limits: Limits) -> io::Result<()> {
    // Linux does not pass the listener's O_NONBLOCK on, other systems may.
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(limits.timeout))?;
    let deadline = Instant::now() + limits.timeout;
    let (response, more_to_come) = match read_head(&mut stream, deadline, limits.max_request)? {
        Head::Complete(head) => (route(&head, metrics), false),
        Head::TooLarge => (Response::text(431, "Request Header Fields Too Large", "request too large\n"), true),
        Head::TimedOut => (Response::text(408, "Request Timeout", "request not received in time\n"), false),
        Head::Closed => return Ok(()),
    };
    stream.write_all(&response.to_bytes())?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)?;
    // Closing a socket with unread input resets the connection, which can
    // destroy the response before the client has read it. So read what has
    // arrived (a request body) and, after an oversized head, what the client
    // is still sending, until it closes or the deadline.
    drain(&mut stream, if more_to_come { deadline } else { Instant::now() });
    Ok(())
}

/// Reads the request head: until a blank line, the size limit, the deadline
/// or the end of the stream, whichever comes first.
pub(super) fn read_head(stream: &mut TcpStream, deadline: Instant, max: usize) -> io::Result<Head> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Head::TimedOut);
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(Head::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Ok(Head::TimedOut);
            }
            Err(e) => return Err(e),
        };
        // The search restarts a few bytes back, in case the blank line
        // straddles two reads.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(end) = head_end(head.get(from..).unwrap_or_default()) {
            head.truncate(from + end);
            return Ok(Head::Complete(head));
        }
        if head.len() > max {
            return Ok(Head::TooLarge);
        }
    }
}

/// The length of the head in `bytes`, blank line included, if it is complete
/// (`\r\n\r\n`, or `\n\n` from a lax client).
pub(super) fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).enumerate().find_map(|(i, w)| match w {
        b"\n\n" => Some(i + 2),
        b"\n\r" if bytes.get(i + 2) == Some(&b'\n') => Some(i + 3),
        _ => None,
    })
}

/// Reads and discards up to 64 KiB: what has already arrived, then what
/// arrives until `deadline` or the client closes.
pub(super) fn drain(stream: &mut TcpStream, deadline: Instant) {
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while total < 64 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        let set = if left.is_zero() { stream.set_nonblocking(true) } else { stream.set_read_timeout(Some(left)) };
        if set.is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// A response to write.
pub(super) struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    extra_headers: &'static str,
    body: String,
    /// A `HEAD` request: headers only.
    head_only: bool,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: &str) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            extra_headers: "",
            body: body.to_owned(),
            head_only: false,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n{}\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len(),
            self.extra_headers,
        )
        .into_bytes();
        if !self.head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

pub(super) const INDEX: &str = "<!DOCTYPE html>\n<html><head><title>fdir</title></head><body>\n<h1>fdir</h1>\n\
<p>Integrity monitor for Linux kernel isolation structures.</p>\n\
<p>Prometheus metrics: <a href=\"/metrics\">/metrics</a></p>\n</body></html>\n";

/// Chooses the response to a complete request head.
pub(super) fn route(head: &[u8], metrics: &Metrics) -> Response {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Response::text(400, "Bad Request", "bad request line\n");
    };
    if !version.starts_with("HTTP/1.") {
        return Response::text(400, "Bad Request", "only HTTP/1.x is served\n");
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let mut r = Response::text(405, "Method Not Allowed", "only GET and HEAD are allowed\n");
            r.extra_headers = "Allow: GET, HEAD\r\n";
            return r;
        }
    };
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let mut response = match path {
        "/metrics" => Response {
            status: 200,
            reason: "OK",
            content_type: CONTENT_TYPE,
            extra_headers: "",
            body: metrics.render(),
            head_only: false,
        },
        "/" => Response {
            status: 200,
            reason: "OK",
            content_type: "text/html; charset=utf-8",
            extra_headers: "",
            body: INDEX.to_owned(),
            head_only: false,
        },
        _ => Response::text(404, "Not Found", "not found: metrics are at /metrics\n"),
    };
    response.head_only = head_only;
    response
}
