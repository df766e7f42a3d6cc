use std::fmt;

use axum::extract::ws::{CloseFrame, Utf8Bytes};

use crate::event_log::CursorGone;
use crate::stats::WsEnd;

/// The close codes this crate sends, besides the standard ones of
/// RFC 6455 (`1000`, `1001`, `1002`, `1007`, `1009`).
///
/// Codes `4000`–`4999` are for applications (RFC 6455 §7.4.2); a browser
/// shows them in `CloseEvent.code`.
pub mod close_code {
    /// `1000`: the server's outgoing source ended.
    pub const NORMAL: u16 = 1000;
    /// `1001 Going Away`: the server is shutting down. Reconnect (with the
    /// last cursor) after a short delay.
    pub const GOING_AWAY: u16 = 1001;
    /// `1006`: never sent; reported for a connection that ended without a
    /// close frame.
    pub const ABNORMAL: u16 = 1006;
    /// `1013 Try Again Later`: the event log cannot be read now (Redis
    /// unreachable). Reconnect with the last cursor after a delay.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// `4008`: the client did not read; outgoing data could not be written
    /// for [`send_timeout`](crate::ws::WsConfig::send_timeout). Reconnect with
    /// the last cursor: nothing is lost while it is retained.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// `4408`: no frame from the client within
    /// [`pong_timeout`](crate::ws::WsConfig::pong_timeout) of a ping.
    pub const HEARTBEAT_TIMEOUT: u16 = 4408;
    /// `4410`: the cursor cannot be served (the `410 Gone` of the HTTP
    /// modes). The close reason is `{"reason":"evicted"|"epoch"|"ahead",
    /// "cursor":"<restart>"}`; resynchronise, then continue from `cursor`.
    pub const CURSOR_GONE: u16 = 4410;
}

/// Why a WebSocket connection ended.
///
/// Returned by [`Connection::run`](super::Connection::run) and
/// [`Connection::serve`](super::Connection::serve); the connection's
/// [token](super::Connection::token) is cancelled as soon as it is known.
/// An outgoing source or a message callback can also return one to end the
/// socket with it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent a close frame (the server answered it). `code` is
    /// `1005` when the frame carried none (a browser's `ws.close()`).
    ClientClose {
        /// The client's close code.
        code: u16,
        /// The client's close reason.
        reason: String,
    },
    /// The connection ended without a close frame (code `1006`): the client
    /// closed TCP (FIN) or reset it (RST), or a write failed.
    Abnormal {
        /// What the WebSocket implementation reported.
        error: String,
    },
    /// The client broke the protocol: a malformed frame (`1002`), invalid
    /// UTF-8 in a text message (`1007`), a message larger than
    /// [`max_message_size`](super::WsConfig::max_message_size) (`1009`). The
    /// server sent that close code.
    ProtocolError {
        /// The close code sent.
        code: u16,
        /// What was wrong.
        error: String,
    },
    /// Nothing arrived within [`pong_timeout`](crate::ws::WsConfig::pong_timeout)
    /// of a ping (code [`HEARTBEAT_TIMEOUT`](close_code::HEARTBEAT_TIMEOUT)).
    HeartbeatTimeout,
    /// The server is shutting down (code `1001 Going Away`).
    Shutdown,
    /// The client did not read for
    /// [`send_timeout`](crate::ws::WsConfig::send_timeout) (code
    /// [`SLOW_CONSUMER`](close_code::SLOW_CONSUMER)), or a write stalled
    /// past `DeadPeer::write_stall` (under `serve`, or a `DeadPeer`
    /// listener).
    SlowConsumer,
    /// The client's cursor cannot be served (code
    /// [`CURSOR_GONE`](close_code::CURSOR_GONE)).
    CursorGone(CursorGone),
    /// The server closed: the outgoing source ended (`1000`), or the
    /// application ended the socket with this code.
    Server {
        /// The close code sent.
        code: u16,
        /// The close reason sent (at most 123 bytes of it).
        reason: String,
    },
}

/// The reason of the `1000` that follows the `closed` frame of a closed
/// log.
pub(crate) const STREAM_CLOSED: &str = "closed: the stream has ended";

/// Longest close reason RFC 6455 allows (125 bytes of payload less the code).
const MAX_REASON: usize = 123;

fn truncate(mut text: String) -> String {
    if text.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl CloseReason {
    /// The server ends the socket with `code` and `reason` (cut to 123
    /// bytes).
    pub fn server(code: u16, reason: impl Into<String>) -> Self {
        Self::Server {
            code,
            reason: truncate(reason.into()),
        }
    }

    /// What it counts as in [`Stats`](crate::Stats).
    pub(crate) fn end(&self) -> WsEnd {
        match self {
            Self::ClientClose { .. } | Self::Abnormal { .. } => WsEnd::ClientLeft,
            Self::ProtocolError { .. } => WsEnd::Error,
            Self::HeartbeatTimeout => WsEnd::HeartbeatTimeout,
            Self::Shutdown => WsEnd::Shutdown,
            Self::SlowConsumer => WsEnd::SlowReader,
            Self::CursorGone(_) => WsEnd::Gone,
            Self::Server { code, reason } if *code == close_code::NORMAL => {
                if reason == STREAM_CLOSED {
                    WsEnd::Closed
                } else {
                    WsEnd::End
                }
            }
            Self::Server { .. } => WsEnd::Error,
        }
    }

    /// The close code: the one the client sent, the one the server sent, or
    /// `1006` when there was no close frame.
    #[must_use]
    pub fn code(&self) -> u16 {
        match self {
            Self::ClientClose { code, .. }
            | Self::ProtocolError { code, .. }
            | Self::Server { code, .. } => *code,
            Self::Abnormal { .. } => close_code::ABNORMAL,
            Self::HeartbeatTimeout => close_code::HEARTBEAT_TIMEOUT,
            Self::Shutdown => close_code::GOING_AWAY,
            Self::SlowConsumer => close_code::SLOW_CONSUMER,
            Self::CursorGone(_) => close_code::CURSOR_GONE,
        }
    }

    /// Whether this is not an ordinary end: anything but a client's close
    /// with `1000`, `1001` or no code (`1005`), a shutdown, or the server's
    /// own `1000`. The counterpart of gorilla/websocket's
    /// `IsUnexpectedCloseError(err, 1000, 1001)`.
    #[must_use]
    pub fn is_unexpected(&self) -> bool {
        match self {
            Self::ClientClose { code, .. } => !matches!(code, 1000 | 1001 | 1005),
            Self::Shutdown => false,
            Self::Server { code, .. } => *code != close_code::NORMAL,
            _ => true,
        }
    }

    /// The close frame the server sends for this reason; `None` when it
    /// sends none (the client's close is answered by tungstenite itself; an
    /// abnormal end has nobody to send to).
    pub(crate) fn frame(&self) -> Option<CloseFrame> {
        let reason = match self {
            Self::ClientClose { .. } | Self::Abnormal { .. } => return None,
            Self::ProtocolError { error, .. } => truncate(error.clone()),
            Self::HeartbeatTimeout => "no pong within the heartbeat timeout".to_owned(),
            Self::Shutdown => "server shutting down; reconnect with your cursor".to_owned(),
            Self::SlowConsumer => "slow consumer; reconnect with your cursor".to_owned(),
            Self::CursorGone(gone) => serde_json::json!({
                "reason": gone.reason(),
                "cursor": gone.restart(),
            })
            .to_string(),
            Self::Server { reason, .. } => reason.clone(),
        };
        Some(CloseFrame {
            code: self.code(),
            reason: Utf8Bytes::from(reason),
        })
    }

    /// What tungstenite reported, as a reason.
    pub(crate) fn from_error(err: axum::Error) -> Self {
        use tungstenite::error::{Error, ProtocolError};
        let err = match err.into_inner().downcast::<Error>() {
            Ok(err) => *err,
            // Another tungstenite than axum's (see Cargo.toml): no detail.
            Err(other) => {
                return Self::Abnormal {
                    error: other.to_string(),
                }
            }
        };
        let protocol = |code, err: &dyn fmt::Display| Self::ProtocolError {
            code,
            error: truncate(err.to_string()),
        };
        match err {
            // `serve`'s write-stall bound (`DeadPeer::write_stall`) cut a
            // client that stopped reading.
            Error::Io(ref io) if write_stalled(io) => Self::SlowConsumer,
            Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) | Error::Io(_) => {
                Self::Abnormal {
                    error: err.to_string(),
                }
            }
            Error::Capacity(ref e) => protocol(1009, e),
            Error::Utf8(ref e) => protocol(1007, e),
            Error::Protocol(ref e) => protocol(1002, e),
            other => Self::Abnormal {
                error: other.to_string(),
            },
        }
    }
}

/// Whether a write failed because the client took no bytes for
/// `DeadPeer::write_stall`.
#[cfg(feature = "net")]
fn write_stalled(err: &std::io::Error) -> bool {
    crate::net::is_write_stall(err)
}

#[cfg(not(feature = "net"))]
fn write_stalled(_: &std::io::Error) -> bool {
    false
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientClose { code, reason } => {
                write!(f, "closed by client ({code}")?;
                if !reason.is_empty() {
                    write!(f, ", {reason:?}")?;
                }
                f.write_str(")")
            }
            Self::Abnormal { error } => {
                write!(f, "connection lost without a close frame (1006): {error}")
            }
            Self::ProtocolError { code, error } => write!(f, "protocol error ({code}): {error}"),
            Self::HeartbeatTimeout => f.write_str("heartbeat timeout: no pong from the client"),
            Self::Shutdown => f.write_str("server shutdown (1001)"),
            Self::SlowConsumer => f.write_str("slow consumer: the client did not read"),
            Self::CursorGone(gone) => write!(f, "{gone}"),
            Self::Server { code, reason } => write!(f, "closed by server ({code}, {reason:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_reason_is_cut_to_123_bytes_on_a_char_boundary() {
        // 'é' is two bytes: 62 of them are 124 bytes.
        let reason = CloseReason::server(4000, "é".repeat(62));
        let CloseReason::Server { reason, .. } = &reason else {
            unreachable!()
        };
        assert_eq!(reason.len(), 122);
        assert!(reason.chars().all(|c| c == 'é'));
    }

    #[test]
    fn codes_and_what_is_unexpected() {
        let client = |code| CloseReason::ClientClose {
            code,
            reason: String::new(),
        };
        for (reason, code, unexpected) in [
            (client(1000), 1000, false),
            (client(1001), 1001, false),
            (client(1005), 1005, false),
            (client(4000), 4000, true),
            (
                CloseReason::Abnormal {
                    error: String::new(),
                },
                1006,
                true,
            ),
            (CloseReason::HeartbeatTimeout, 4408, true),
            (CloseReason::Shutdown, 1001, false),
            (CloseReason::SlowConsumer, 4008, true),
            (CloseReason::server(1000, "done"), 1000, false),
            (CloseReason::server(1003, "text only"), 1003, true),
        ] {
            assert_eq!(reason.code(), code, "{reason:?}");
            assert_eq!(reason.is_unexpected(), unexpected, "{reason:?}");
        }
    }

    #[test]
    fn the_server_sends_a_frame_only_when_it_closes() {
        let client = CloseReason::ClientClose {
            code: 1000,
            reason: String::new(),
        };
        assert_eq!(client.frame(), None);
        let abnormal = CloseReason::Abnormal {
            error: String::new(),
        };
        assert_eq!(abnormal.frame(), None);
        let frame = CloseReason::Shutdown
            .frame()
            .expect("shutdown sends a frame");
        assert_eq!(frame.code, 1001);
        let frame = CloseReason::SlowConsumer
            .frame()
            .expect("slow consumer sends a frame");
        assert_eq!(frame.code, close_code::SLOW_CONSUMER);
    }
}
