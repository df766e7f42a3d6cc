use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::FutureExt as _;
use http::header::CONTENT_LENGTH;
use http::request::Parts;
use http::StatusCode;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::rejection::LongPollRejection;
use super::timeout;
use super::wait::Outcome;
use super::LongPollConfig;
use crate::disconnect::{MissingDisconnectLayer, RequestContext};
use crate::response::{no_store, retry_later, Overloaded};
use crate::stats::{LongPollEnd, Mode, Phase, Tracked};

/// Status of the (never seen) answer to a client that is already gone, as
/// nginx logs it: "499 Client Closed Request". Useful in access logs.
pub(crate) const CLIENT_CLOSED_REQUEST: u16 = 499;

/// The request body must arrive within the wait, or within this much time
/// when the wait is shorter.
const MIN_BODY_WAIT: Duration = Duration::from_secs(5);

/// Extractor for a long-poll request: the wait the client asked for, the
/// server's shutdown and the client's disconnect, ready to `select!` over.
///
/// See the [module docs](crate::long_poll). Requires
/// [`DisconnectLayer`](crate::DisconnectLayer).
///
/// It implements [`FromRequest`] (it reads the request body; see
/// [`LongPollConfig::max_body`]), so it must be the last argument of a
/// handler. The body is available through [`body`](Self::body).
#[derive(Debug)]
pub struct LongPoll {
    // In the stats from the request head on; its place is free again once
    // the poll is dropped.
    tracked: Tracked,
    ctx: RequestContext,
    answers: Answers,
    wait: Duration,
    deadline: Instant,
    body: Bytes,
}

/// What the answers need of [`LongPollConfig`] (kept small: it is part of
/// every parked poll).
#[derive(Clone, Copy, Debug)]
struct Answers {
    timeout_status: StatusCode,
    shutdown_status: StatusCode,
    retry_after: Duration,
}

impl<S: Send + Sync> FromRequest<S> for LongPoll {
    type Rejection = LongPollRejection;

    // A plain `fn` returning the future, not an `async fn`: the request head
    // is read here, at once, so the future keeps neither the `Request` nor
    // its head, only what it needs. It stays inside every parked handler's
    // future, so its size is memory per parked poll.
    fn from_request(
        req: Request,
        _state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let (parts, body) = req.into_parts();
        let head = Head::new(&parts);
        drop(parts);
        async move {
            let Head {
                tracked,
                ctx,
                answers,
                max_body,
                wait,
                deadline,
            } = head?;
            // Most long-polls have no body: then nothing is awaited. A body
            // is read in a boxed future, which keeps the reading state out of
            // the handler future that stays parked afterwards.
            let body = if http_body::Body::is_end_stream(&body) {
                Bytes::new()
            } else {
                let body_deadline = crate::deadline::after(Instant::now(), wait.max(MIN_BODY_WAIT));
                tracked.enter(Phase::ReadingBody as u8);
                // Dropped while reading: hyper saw the client go.
                tracked.set(LongPollEnd::Disconnected);
                let read = Box::pin(read_body(body, max_body, body_deadline)).await;
                tracked.enter(Phase::Handling as u8);
                tracked.set(LongPollEnd::Answered);
                match read {
                    Ok(body) => body,
                    Err(err) => {
                        tracked.set(match &err {
                            LongPollRejection::BodyTooLarge { .. } => LongPollEnd::TooLarge,
                            LongPollRejection::BodyTimeout => LongPollEnd::StalledBody,
                            _ => LongPollEnd::Disconnected,
                        });
                        if let LongPollRejection::BodyRead(_) = err {
                            // The body broke off: the client is gone (the
                            // answer below normally reaches nobody). Say so,
                            // even though hyper will go on to "complete"
                            // that answer.
                            ctx.token.cancel();
                        }
                        return Err(err);
                    }
                }
            };
            Ok(Self {
                tracked,
                ctx,
                answers,
                wait,
                deadline,
                body,
            })
        }
    }
}

/// What [`LongPoll`] takes from the request head.
struct Head {
    tracked: Tracked,
    ctx: RequestContext,
    answers: Answers,
    max_body: usize,
    wait: Duration,
    deadline: Instant,
}

impl Head {
    fn new(parts: &Parts) -> Result<Self, LongPollRejection> {
        let ctx = MissingDisconnectLayer::check(parts)
            .map_err(LongPollRejection::MissingLayer)?
            .clone();
        let config: LongPollConfig = ctx.config(parts);
        let counters = ctx.shared.stats.counters_arc();

        let requested =
            match timeout::requested(parts.uri.query(), &parts.headers, config.max_timeout) {
                Ok(requested) => requested,
                Err(err) => {
                    Tracked::refuse(&counters, Mode::LongPoll, LongPollEnd::BadRequest);
                    return Err(err);
                }
            };
        let tracked = Tracked::start(
            counters,
            Mode::LongPoll,
            config.max_in_flight,
            LongPollEnd::Rejected,
            Some(Phase::Handling as u8),
        )
        .ok_or(LongPollRejection::Overloaded(Overloaded {
            what: "long-polls are in flight",
            setting: "LongPollConfig::max_in_flight",
            limit: config.max_in_flight,
            retry_after: config.retry_after,
        }))?;
        let mut wait = requested
            .unwrap_or(config.default_timeout)
            .min(config.max_timeout);
        if config.jitter && !wait.is_zero() {
            wait -= wait.mul_f64(fastrand::f64() / 16.0);
        }
        let deadline = crate::deadline::after(Instant::now(), wait);

        let announced = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|n| n > config.max_body as u64) {
            tracked.set(LongPollEnd::TooLarge);
            return Err(LongPollRejection::BodyTooLarge {
                limit: config.max_body,
            });
        }
        Ok(Self {
            tracked,
            ctx,
            answers: Answers {
                timeout_status: config.timeout_status,
                shutdown_status: config.shutdown_status,
                retry_after: config.retry_after,
            },
            max_body: config.max_body,
            wait,
            deadline,
        })
    }
}

/// Reads the whole body (so that hyper goes back to watching the connection)
/// within `limit` bytes and before `deadline`.
async fn read_body(
    body: Body,
    limit: usize,
    deadline: Instant,
) -> Result<Bytes, LongPollRejection> {
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout_at(deadline, collect).await {
        Err(_) => Err(LongPollRejection::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.is::<LengthLimitError>() => {
            Err(LongPollRejection::BodyTooLarge { limit })
        }
        Ok(Err(err)) => Err(LongPollRejection::BodyRead(axum::Error::new(err))),
    }
}

impl LongPoll {
    /// How long this poll waits: the client's request (or the default),
    /// clamped to the maximum, less jitter.
    #[must_use]
    pub fn wait_duration(&self) -> Duration {
        self.wait
    }

    /// When the wait ends.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The request body (empty for most long-polls).
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The client-disconnect token (see [`crate::disconnect`]): cancelled
    /// when the client is gone. While the handler itself is running it
    /// rarely fires (hyper drops the handler when it sees the client go); it
    /// matters for tasks the handler spawned and for work after the wait.
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.ctx.token
    }

    /// The server's shutdown token.
    #[must_use]
    pub fn shutdown(&self) -> &CancellationToken {
        &self.ctx.shared.shutdown
    }

    /// Completes when the wait has run out.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: it only watches a timer.
    pub fn timeout(&self) -> Sleep {
        tokio::time::sleep_until(self.deadline)
    }

    /// Waits for `event`, the timeout, shutdown or disconnect, whichever
    /// comes first, and counts the outcome in [`Stats`](crate::Stats).
    ///
    /// # Priority
    ///
    /// When several are ready at once: [`Disconnected`](Outcome::Disconnected),
    /// then [`Shutdown`](Outcome::Shutdown), then [`Ready`](Outcome::Ready),
    /// then [`Timeout`](Outcome::Timeout). `event` is not polled once the
    /// client is gone or the server is stopping, so an event is never taken
    /// for a client that cannot receive it; an event that is ready when the
    /// time runs out is still delivered.
    ///
    /// # Cancellation safety
    ///
    /// As cancel safe as `event`: dropping the returned future drops `event`.
    /// Take events from a source that loses nothing when a read is dropped (a
    /// cursor into an [`EventLog`](crate::EventLog) is the recommended one;
    /// `broadcast::Receiver::recv` and `watch::Receiver::changed` are also
    /// cancel safe; `mpsc` is, but an event taken just before the client
    /// left is lost with the response).
    pub async fn wait<F: Future>(&self, event: F) -> Outcome<F::Output> {
        self.tracked.enter(Phase::Waiting as u8);
        // Dropped while waiting: hyper saw the client go.
        self.tracked.set(LongPollEnd::Disconnected);
        let mut event = std::pin::pin!(event);
        // Decided at once (most often: events already there), in the same
        // priority, without registering on the two tokens: each
        // registration takes a token's lock twice, and the shutdown token
        // is shared by every request.
        let now = if self.ctx.token.is_cancelled() {
            Some(Outcome::Disconnected)
        } else if self.ctx.shared.shutdown.is_cancelled() {
            Some(Outcome::Shutdown)
        } else {
            event.as_mut().now_or_never().map(Outcome::Ready)
        };
        let outcome = match now {
            Some(outcome) => outcome,
            None => tokio::select! {
                biased;
                () = self.ctx.token.cancelled() => Outcome::Disconnected,
                () = self.ctx.shared.shutdown.cancelled() => Outcome::Shutdown,
                value = event => Outcome::Ready(value),
                () = self.timeout() => Outcome::Timeout,
            },
        };
        self.tracked.enter(Phase::Handling as u8);
        let end = outcome.end();
        self.tracked.set(end);
        #[cfg(feature = "metrics")]
        {
            // The wait started at `deadline - wait`: no clock read for it.
            let left = self.deadline.saturating_duration_since(Instant::now());
            crate::observe::waited(end.as_str(), self.wait.saturating_sub(left));
        }
        outcome
    }

    /// Counts this poll as ended by `end` (unless another is counted
    /// later): for answers made outside [`wait`](Self::wait).
    pub(crate) fn count_as(&self, end: LongPollEnd) {
        self.tracked.set(end);
    }

    /// The keepalive answer for a wait that timed out:
    /// [`timeout_status`](LongPollConfig::timeout_status) (default `204`)
    /// with `Cache-Control: no-store`.
    fn timeout_response(&self) -> Response {
        no_store((self.answers.timeout_status, Body::empty()).into_response())
    }

    /// The answer for a server that is shutting down:
    /// [`shutdown_status`](LongPollConfig::shutdown_status) (default `503`)
    /// with `Retry-After` and `Cache-Control: no-store`.
    fn shutdown_response(&self) -> Response {
        retry_later(
            self.answers.shutdown_status,
            "server is shutting down; retry".to_owned(),
            self.answers.retry_after,
        )
    }

    /// Turns an [`Outcome`] into the usual answer: `Ready(v)` → `v` with
    /// `Cache-Control: no-store`; `Timeout` →
    /// [`timeout_status`](LongPollConfig::timeout_status) (default `204`);
    /// `Shutdown` → [`shutdown_status`](LongPollConfig::shutdown_status)
    /// (default `503`) with `Retry-After`; `Disconnected` → `499` (never
    /// seen by the client; useful in logs). All with
    /// `Cache-Control: no-store`.
    #[must_use]
    pub fn respond<T: IntoResponse>(&self, outcome: Outcome<T>) -> Response {
        match outcome {
            Outcome::Ready(v) => no_store(v.into_response()),
            Outcome::Timeout => self.timeout_response(),
            Outcome::Shutdown => self.shutdown_response(),
            Outcome::Disconnected => {
                let status =
                    StatusCode::from_u16(CLIENT_CLOSED_REQUEST).unwrap_or(StatusCode::BAD_REQUEST);
                status.into_response()
            }
        }
    }
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        // The handler's future dropped with the client gone, whatever it
        // was doing: also after its wait ended, since the answer was not
        // made. (The token is cancelled only when the request's future or
        // body is dropped unfinished, so a handler that returns normally
        // keeps its outcome.)
        if self.ctx.token.is_cancelled() {
            self.tracked.set(LongPollEnd::Disconnected);
        }
    }
}
