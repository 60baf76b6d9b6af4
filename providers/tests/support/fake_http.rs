//! The HTTP/1.1 server under the in-process fakes (`kms_servers.rs`, `gcs_server.rs`): one
//! request per connection (`Connection: close`) on 127.0.0.1, bodies by `Content-Length` or
//! chunked. Only tokio and serde_json are used, so that host tests can include the fakes too.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as a fake sees it; the path is still percent-encoded, the query decoded.
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn bearer(&self) -> Option<&str> {
        self.headers.get("authorization")?.strip_prefix("Bearer ")
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Whether the query has exactly the parameters `names` (in any order).
    pub fn has_params(&self, names: &[&str]) -> bool {
        self.query.len() == names.len() && names.iter().all(|n| self.param(n).is_some())
    }

    /// The body as JSON (`null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// The body as an `application/x-www-form-urlencoded` form.
    pub fn form(&self) -> HashMap<String, String> {
        form_pairs(&String::from_utf8_lossy(&self.body)).into_iter().collect()
    }
}

/// An answer: status, headers and body (for `HEAD`, `Content-Length` is the body's, which is
/// not sent).
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    pub fn json(status: u16, value: Value) -> Self {
        Self::new(status)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(value.to_string())
    }

    pub fn xml(status: u16, xml: String) -> Self {
        let body = format!("<?xml version='1.0' encoding='UTF-8'?>{xml}").into_bytes();
        Self::new(status).header("Content-Type", "application/xml; charset=UTF-8").body(body)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

/// Serves `handle` on a fresh port of 127.0.0.1 until the runtime ends; answers the base URL.
pub async fn serve<H>(handle: H) -> String
where
    H: Fn(Request) -> Answer + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let _ = connection(stream, handle.as_ref()).await;
            });
        }
    });
    url
}

async fn connection<H: Fn(Request) -> Answer>(
    mut stream: TcpStream,
    handle: &H,
) -> std::io::Result<()> {
    let request = read_request(&mut stream).await?;
    let head_only = request.method == "HEAD";
    let answer = handle(request);
    let mut head = format!("HTTP/1.1 {} {}\r\n", answer.status, reason(answer.status));
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", answer.body.len()));
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(&answer.body).await?;
    }
    stream.shutdown().await
}

/// A minimal HTTP/1.1 request reader: head up to the blank line, then `Content-Length` bytes
/// or a chunked body.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Request> {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or_default().split(' ');
    let method = start.next().unwrap_or_default().to_owned();
    let target = start.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buffer[head_end + 4..].to_vec();
    let chunked = headers.get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    if chunked {
        while !body.windows(5).any(|w| w == b"0\r\n\r\n") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body = dechunk(&body);
    } else {
        let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        body.reserve(length.saturating_sub(body.len()));
        while body.len() < length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(Request { method, path: path.to_owned(), query: form_pairs(query), headers, body })
}

/// A chunked body's data.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&raw[..end]);
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16);
        let Ok(size @ 1..) = size else { break };
        let data = end + 2;
        out.extend_from_slice(&raw[data..(data + size).min(raw.len())]);
        raw = &raw[(data + size + 2).min(raw.len())..];
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        412 => "Precondition Failed",
        416 => "Requested Range Not Satisfiable",
        _ => "Error",
    }
}

/// `a=1&b=x+y` (a query or a form body), decoded, in order.
pub fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

/// `%xx` escapes decoded; anything else kept.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
