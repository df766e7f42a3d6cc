//! The load client: raw HTTP/1.1 over `TcpStream`. A request is one
//! `write`; a response is parsed in place from the connection's buffer.
//! SSE bodies are de-chunked as they arrive and scanned for a marker.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Hang guard for any one response the harness waits for.
pub(crate) const GUARD: Duration = Duration::from_secs(60);

/// The string every appended payload holds exactly once: a subscriber
/// counts it to know that an append reached it.
pub(crate) const MARK: &[u8] = b"bench-mark";

pub(crate) async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A parsed response.
pub(crate) struct Answer {
    pub(crate) status: u16,
    head: String,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// The value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Status, header length and the body length (`None`: chunked).
fn head(buf: &[u8]) -> Option<(u16, usize, Option<usize>)> {
    let end = find(buf, b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut length = Some(0);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            length = None;
        }
    }
    // 1xx, 204 and 304 have no body whatever the headers say.
    if status == 204 || status == 304 || status < 200 {
        length = Some(0);
    }
    Some((status, end, length))
}

/// A complete chunked body at the start of `buf`: the body and the bytes
/// it took; `None` while incomplete.
fn dechunk(buf: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let size = std::str::from_utf8(&buf[at..at + eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .ok_or_else(|| io::Error::other("bad chunk size"))?;
        at += eol + 2;
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
        if size == 0 {
            return Ok(Some((body, at)));
        }
    }
}

/// One HTTP/1.1 keep-alive connection with its read buffer.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            stream: connect(addr).await?,
            buf: Vec::with_capacity(512),
        })
    }

    pub(crate) async fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request).await
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads one complete response.
    pub(crate) async fn answer(&mut self) -> io::Result<Answer> {
        loop {
            if let Some((status, end, length)) = head(&self.buf) {
                let done = match length {
                    Some(length) if self.buf.len() >= end + length => {
                        Some((self.buf[end..end + length].to_vec(), length))
                    }
                    Some(_) => None,
                    None => dechunk(&self.buf[end..])?,
                };
                if let Some((body, used)) = done {
                    let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    self.buf.drain(..end + used);
                    return Ok(Answer { status, head, body });
                }
            }
            self.fill().await?;
        }
    }

    /// One request/response round trip, with the hang guard.
    pub(crate) async fn call(&mut self, request: &[u8]) -> io::Result<Answer> {
        self.send(request).await?;
        tokio::time::timeout(GUARD, self.answer())
            .await
            .map_err(|_| io::Error::other("no answer within the guard"))?
    }

    /// Reads the head of a streaming response: its status and head; the
    /// body bytes already read stay in the buffer.
    pub(crate) async fn stream_head(&mut self) -> io::Result<(u16, String)> {
        loop {
            if let Some((status, end, _)) = head(&self.buf) {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end);
                return Ok((status, head));
            }
            self.fill().await?;
        }
    }

    /// Turns the connection, positioned after a chunked response's head,
    /// into a reader of the de-chunked body.
    pub(crate) fn into_sse(self) -> Sse {
        Sse {
            stream: self.stream,
            raw: self.buf,
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
                            let line = std::str::from_utf8(&self.size_line)
                                .map_err(|_| io::Error::other("bad chunk size"))?;
                            let size = usize::from_str_radix(
                                line.trim().split(';').next().unwrap_or("").trim(),
                                16,
                            )
                            .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
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

pub(crate) fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes()
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
