//! A minimal HTTP/1.1 keep-alive client: one TCP connection, one request at a time, answers
//! framed by `Content-Length`. The bench measures the server, so the client does as little as
//! it can: one `write` per request (no Nagle delay: `TCP_NODELAY`), buffered reads, buffers
//! reused between requests. It is not a general client (no chunked answers, no redirects).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};

/// How long one exchange may take before the bench gives up.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer body read (a bench answer is a few hundred bytes).
const ANSWER_BYTES_MAX: usize = 16 << 20;

pub struct HttpConnection {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// `Host` and `Authorization` lines, ready to copy into each request.
    fixed_headers: String,
    request: Vec<u8>,
    line: String,
    body: Vec<u8>,
}

impl HttpConnection {
    pub fn connect(addr: SocketAddr, authorization: Option<&str>) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(EXCHANGE_TIMEOUT))?;
        stream.set_write_timeout(Some(EXCHANGE_TIMEOUT))?;
        let mut fixed_headers = format!("Host: {addr}\r\n");
        if let Some(value) = authorization {
            fixed_headers.push_str(&format!("Authorization: {value}\r\n"));
        }
        Ok(HttpConnection {
            reader: BufReader::with_capacity(64 << 10, stream.try_clone()?),
            stream,
            fixed_headers,
            request: Vec::with_capacity(64 << 10),
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// `POST path` with a JSON body; the status and the answer's body.
    pub fn post_json(&mut self, path: &str, json: &[u8]) -> anyhow::Result<(u16, &[u8])> {
        self.request.clear();
        write!(
            self.request,
            "POST {path} HTTP/1.1\r\n{}",
            self.fixed_headers
        )?;
        write!(self.request, "Content-Type: application/json\r\n")?;
        write!(self.request, "Content-Length: {}\r\n\r\n", json.len())?;
        self.request.extend_from_slice(json);
        self.exchange()
    }

    /// `GET path`; the status and the answer's body.
    pub fn get(&mut self, path: &str) -> anyhow::Result<(u16, &[u8])> {
        self.request.clear();
        write!(
            self.request,
            "GET {path} HTTP/1.1\r\n{}\r\n",
            self.fixed_headers
        )?;
        self.exchange()
    }

    /// Sends the request built in `self.request`; the status and the answer's body.
    fn exchange(&mut self) -> anyhow::Result<(u16, &[u8])> {
        self.stream
            .write_all(&self.request)
            .context("send request")?;
        let (status, length) = self.read_head()?;
        self.body.resize(length, 0);
        self.reader
            .read_exact(&mut self.body)
            .context("read answer body")?;
        Ok((status, &self.body))
    }

    /// Status line and headers; the status and the body length.
    fn read_head(&mut self) -> anyhow::Result<(u16, usize)> {
        self.line.clear();
        self.reader
            .read_line(&mut self.line)
            .context("read status line")?;
        let status: u16 = match self.line.split(' ').nth(1).map(str::parse) {
            Some(Ok(status)) => status,
            _ => bail!("not an HTTP status line: {:?}", self.line),
        };
        let mut length = None;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                bail!("connection closed inside the answer's headers");
            }
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                bail!("malformed header {header:?}");
            };
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>()?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("chunked answers are not supported by the bench client");
            }
        }
        match length {
            Some(length) if length <= ANSWER_BYTES_MAX => Ok((status, length)),
            Some(length) => bail!("answer of {length} bytes is larger than the bench reads"),
            None => bail!("answer without Content-Length"),
        }
    }
}
