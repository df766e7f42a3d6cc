//! The HTTP/1.1 client both benches load servers with: raw `TcpStream`, a
//! request is one `write`, a response is parsed in place from the
//! connection's buffer (no allocation per response beyond its body, and
//! its head when the connection keeps heads). Each bench includes it
//! (`#[path = "../shared/http1.rs"] mod http1;` in its `client.rs`) and adds what
//! only it reads (chunked bodies drained or scanned, SSE). Not every bench
//! uses every item.

#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Hang guard for any one response the harness waits for.
pub(crate) const GUARD: Duration = Duration::from_secs(60);

pub(crate) async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A parsed response: status, head (if the connection keeps heads) and
/// body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    head: String,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// The value of header `name` (case-insensitive); `None` also when the
    /// connection did not keep heads.
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
pub(crate) fn head(buf: &[u8]) -> Option<(u16, usize, Option<usize>)> {
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

/// A chunk size line (`1a;ext`), hexadecimal.
pub(crate) fn chunk_size(line: &[u8]) -> io::Result<usize> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
        .ok_or_else(|| io::Error::other("bad chunk size"))
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
        let size = chunk_size(&buf[at..at + eol])?;
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
    /// Read and not yet parsed.
    pub(crate) buf: Vec<u8>,
    /// Whether answers keep their head (for [`Answer::header`]).
    keep_heads: bool,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self::new(connect(addr).await?))
    }

    pub(crate) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::with_capacity(512),
            keep_heads: false,
        }
    }

    /// Answers keep their head from now on (one allocation more each).
    pub(crate) fn keep_heads(mut self) -> Self {
        self.keep_heads = true;
        self
    }

    pub(crate) async fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request).await
    }

    pub(crate) async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads one complete response (`Content-Length`, none, or chunked).
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
                    let head = if self.keep_heads {
                        String::from_utf8_lossy(&self.buf[..end]).into_owned()
                    } else {
                        String::new()
                    };
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
}

pub(crate) fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes()
}
