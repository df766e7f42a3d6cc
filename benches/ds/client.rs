//! The load client: raw HTTP/1.1 over `TcpStream`. A request is one
//! `write`; a response is parsed in place from the connection's buffer.
//! SSE bodies are de-chunked as they arrive and scanned for a marker.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

#[path = "../shared/http1.rs"]
mod http1;

use http1::{chunk_size, find};
pub(crate) use http1::{get, Answer, GUARD};

/// The string every appended payload holds exactly once: a subscriber
/// counts it to know that an append reached it.
pub(crate) const MARK: &[u8] = b"bench-mark";

/// A keep-alive connection whose answers keep their head (the Durable
/// Streams figures read `Stream-Next-Offset`).
pub(crate) struct Conn(http1::Conn);

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self(http1::Conn::open(addr).await?.keep_heads()))
    }
}

impl std::ops::Deref for Conn {
    type Target = http1::Conn;
    fn deref(&self) -> &http1::Conn {
        &self.0
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut http1::Conn {
        &mut self.0
    }
}

impl Conn {
    /// Turns the connection, positioned after a chunked response's head,
    /// into a reader of the de-chunked body.
    pub(crate) fn into_sse(self) -> Sse {
        Sse {
            stream: self.0.stream,
            raw: self.0.buf,
            state: ChunkState::Size,
            size_line: Vec::new(),
            tail: Vec::new(),
        }
    }
}

#[derive(Clone, Copy)]
enum ChunkState {
    /// Reading a size line.
    Size,
    /// So many data bytes left in this chunk.
    Data(usize),
    /// The CRLF after a chunk's data: so many bytes left.
    Crlf(usize),
    /// The last chunk was read.
    End,
}

/// An SSE response body being read: chunked decoding with no allocation
/// per chunk, and a search for a string across chunk boundaries.
pub(crate) struct Sse {
    stream: TcpStream,
    /// Raw bytes read but not decoded yet.
    raw: Vec<u8>,
    state: ChunkState,
    size_line: Vec<u8>,
    /// The last decoded bytes, kept so that a needle split across reads is
    /// found.
    tail: Vec<u8>,
}

impl Sse {
    /// Decodes `raw`, counting `needle` in the body; returns the count.
    fn decode(&mut self, needle: &[u8]) -> io::Result<usize> {
        let mut found = 0;
        let raw = std::mem::take(&mut self.raw);
        let mut at = 0;
        while at < raw.len() {
            match self.state {
                ChunkState::Size => {
                    let rest = &raw[at..];
                    match rest.iter().position(|&b| b == b'\n') {
                        Some(nl) => {
                            self.size_line.extend_from_slice(&rest[..nl]);
                            at += nl + 1;
                            let size = chunk_size(&self.size_line)?;
                            self.size_line.clear();
                            self.state = if size == 0 {
                                ChunkState::End
                            } else {
                                ChunkState::Data(size)
                            };
                        }
                        None => {
                            self.size_line.extend_from_slice(rest);
                            at = raw.len();
                        }
                    }
                }
                ChunkState::Data(left) => {
                    let take = left.min(raw.len() - at);
                    let data = &raw[at..at + take];
                    // Search the kept tail and this data together.
                    self.tail.extend_from_slice(data);
                    let mut from = 0;
                    while let Some(p) = find(&self.tail[from..], needle) {
                        found += 1;
                        from += p + needle.len();
                    }
                    let keep = (needle.len() - 1).min(self.tail.len() - from);
                    let cut = self.tail.len() - keep;
                    self.tail.drain(..cut);
                    at += take;
                    self.state = if take == left {
                        ChunkState::Crlf(2)
                    } else {
                        ChunkState::Data(left - take)
                    };
                }
                ChunkState::Crlf(left) => {
                    let take = left.min(raw.len() - at);
                    at += take;
                    self.state = if take == left {
                        ChunkState::Size
                    } else {
                        ChunkState::Crlf(left - take)
                    };
                }
                ChunkState::End => {
                    at = raw.len();
                }
            }
        }
        self.raw = raw;
        self.raw.clear();
        Ok(found)
    }

    /// Waits until the body has shown `needle`; returns how many times it
    /// did in what was read. `Ok(0)` never: the end of the body is an error.
    pub(crate) async fn wait_for(&mut self, needle: &[u8]) -> io::Result<usize> {
        let mut found = self.decode(needle)?;
        let mut chunk = [0u8; 2048];
        while found == 0 {
            if matches!(self.state, ChunkState::End) {
                return Err(io::Error::other("the SSE response ended"));
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.raw.extend_from_slice(&chunk[..n]);
            found = self.decode(needle)?;
        }
        Ok(found)
    }
}

pub(crate) fn put_json(path: &str) -> Vec<u8> {
    format!(
        "PUT {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

pub(crate) fn post_json(path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// A JSON object of exactly `len` bytes holding [`MARK`] once.
pub(crate) fn payload(len: usize) -> Vec<u8> {
    let start = br#"{"m":"bench-mark","pad":""#;
    let end = br#""}"#;
    let pad = len.saturating_sub(start.len() + end.len());
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(start);
    body.extend(std::iter::repeat_n(b'x', pad));
    body.extend_from_slice(end);
    body
}

/// A keep-alive connection for the harness's own requests (create,
/// append), opened anew when it has been idle for a second: the Node
/// server closes idle keep-alive connections after 5 s.
pub(crate) struct Ctl {
    addr: SocketAddr,
    conn: Option<Conn>,
    used: Instant,
}

impl Ctl {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            conn: None,
            used: Instant::now(),
        }
    }

    /// Makes sure the connection is open and fresh, so that the next call
    /// does not connect (call it before timing one).
    pub(crate) async fn fresh(&mut self) -> io::Result<()> {
        if self.conn.is_none() || self.used.elapsed() > Duration::from_secs(1) {
            self.conn = Some(Conn::open(self.addr).await?);
        }
        self.used = Instant::now();
        Ok(())
    }

    pub(crate) async fn call(&mut self, request: &[u8]) -> io::Result<Answer> {
        self.fresh().await?;
        let conn = self.conn.as_mut().expect("just opened");
        let answer = conn.call(request).await;
        self.used = Instant::now();
        if answer.is_err() {
            self.conn = None;
        }
        answer
    }
}
