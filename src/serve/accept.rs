//! Accepting connections: the connection cap, and what happens when the
//! process is out of file descriptors. Both refuse a new connection at once
//! with `503` and say so on the log, at most once a second.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The listener, with a spare file descriptor to refuse with when the
/// process has none left.
#[derive(Debug)]
pub(crate) struct Acceptor {
    listener: TcpListener,
    /// Closed to make room for one `accept` when the process is out of
    /// descriptors, and opened again (Unix: `/dev/null`).
    spare: Option<std::fs::File>,
    refusal: Vec<u8>,
    log: RateLimited,
    /// Connections refused since serving started.
    pub(crate) refused: u64,
}

/// Whether an accept error is about one connection only (the client gave
/// up before it was accepted): nothing to report, accept the next.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

fn open_spare() -> Option<std::fs::File> {
    if cfg!(unix) {
        std::fs::File::open("/dev/null").ok()
    } else {
        None
    }
}

impl Acceptor {
    pub(crate) fn new(listener: TcpListener, retry_after: Duration) -> Self {
        let secs = (retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)).max(1);
        let text = "server busy: no connection free; retry after the time in `Retry-After`\n";
        let refusal = format!(
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: {secs}\r\nconnection: close\r\n\
             cache-control: no-store\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\n\r\n{text}",
            text.len()
        );
        Self {
            listener,
            spare: open_spare(),
            refusal: refusal.into_bytes(),
            log: RateLimited::new(),
            refused: 0,
        }
    }

    /// The next connection. Errors are reported (rate limited) and never
    /// returned: a full descriptor table is answered by refusing the
    /// waiting connections one by one, so none waits unanswered in the
    /// kernel's backlog.
    ///
    /// Cancel safe: a connection accepted is returned from the same poll.
    pub(crate) async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let err = match self.listener.accept().await {
                Ok(accepted) => return accepted,
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => err,
            };
            let spare = self.spare.is_some();
            let refused = self.refuse_one_without_descriptor();
            self.log.note(format_args!(
                "accept failed: {err}; {}",
                if spare {
                    "answering each waiting client 503 until descriptors are free"
                } else {
                    "no spare descriptor to answer with: retrying every 10 ms"
                }
            ));
            if !refused {
                // Nothing was waiting (the listener's readiness is cleared:
                // the next accept waits), or no spare descriptor: do not
                // spin on an error that persists.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Answers `503` on `stream` and closes it: a connection over the cap.
    pub(crate) fn refuse(&mut self, stream: &TcpStream, open: usize, max: usize) {
        self.refused += 1;
        self.log.note(format_args!(
            "{open} connections open, the most allowed (`ServeConfig::max_connections` {max}); \
             refusing new ones with 503"
        ));
        write_refusal(stream, &self.refusal);
    }

    /// Frees the spare descriptor, accepts one waiting connection with it,
    /// answers it `503` and closes it, then takes the spare again. Returns
    /// whether a connection was refused.
    fn refuse_one_without_descriptor(&mut self) -> bool {
        let Some(spare) = self.spare.take() else {
            self.spare = open_spare();
            return false;
        };
        drop(spare);
        // Polled once: a connection waiting is accepted now, else the
        // listener's readiness is cleared and the next `accept` waits.
        let refused = match tokio::task::unconstrained(self.listener.accept()).now_or_never() {
            Some(Ok((stream, _))) => {
                write_refusal(&stream, &self.refusal);
                self.refused += 1;
                true
            }
            _ => false,
        };
        self.spare = open_spare();
        refused
    }
}

/// Writes the `503` without waiting (a fresh socket's buffer takes it) and
/// drops the connection.
fn write_refusal(stream: &TcpStream, refusal: &[u8]) {
    let _ = stream.try_write(refusal);
}

/// The process's soft open-file limit, if it has one.
pub(crate) fn file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
        match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok((soft, _)) if soft != RLIM_INFINITY => Some(soft),
            _ => None,
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The default connection cap: 90 % of the open-file limit, leaving the
/// rest to the files, clients and pipes of the application.
pub(crate) fn default_max_connections() -> Option<usize> {
    file_limit().map(|limit| usize::try_from(limit / 10 * 9).unwrap_or(usize::MAX))
}

/// A report line at most once a second, with how many were suppressed in
/// between: through `tracing` (feature `tracing`, when a subscriber is
/// installed), else on stderr.
#[derive(Debug)]
pub(crate) struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    pub(crate) fn new() -> Self {
        Self {
            last: None,
            suppressed: 0,
        }
    }

    /// Reports `what`, unless a report went out less than a second ago.
    /// Returns whether it did.
    pub(crate) fn note(&mut self, what: fmt::Arguments<'_>) -> bool {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return false;
        }
        let suppressed = std::mem::take(&mut self.suppressed);
        self.last = Some(now);
        emit(what, suppressed);
        true
    }

    #[cfg(test)]
    fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

fn emit(what: fmt::Arguments<'_>, suppressed: u64) {
    #[cfg(feature = "tracing")]
    {
        if tracing::dispatcher::has_been_set() {
            tracing::warn!(suppressed, "axum-longpoll serve: {what}");
            return;
        }
    }
    if suppressed > 0 {
        eprintln!("axum-longpoll serve: {what} ({suppressed} more like it in the last second)");
    } else {
        eprintln!("axum-longpoll serve: {what}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_most_one_report_a_second_with_the_count_of_the_others() {
        let mut log = RateLimited::new();
        assert!(log.note(format_args!("first")));
        for _ in 0..5 {
            assert!(!log.note(format_args!("again")));
        }
        assert_eq!(log.suppressed(), 5);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!log.note(format_args!("again")));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(log.note(format_args!("a second later")));
        assert_eq!(log.suppressed(), 0);
    }

    #[test]
    fn the_default_cap_leaves_a_tenth_of_the_descriptors() {
        if let (Some(limit), Some(max)) = (file_limit(), default_max_connections()) {
            assert_eq!(max as u64, limit / 10 * 9);
        }
    }
}
