//! The load generator of `bench http`: keep-alive HTTP/1.1 connections over
//! loopback, each sending prepared requests one after the other and reading
//! each answer before the next, as cheaply as it can (it shares the
//! server's two cores).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::servers::{SECRET, process_cpu_seconds};

/// What every request of a run carries.
#[derive(Clone)]
pub enum Credential {
    /// A signature of its body with [`SECRET`].
    Hmac,
    /// This bearer token.
    Bearer(String),
}

/// What the load generator makes of a 2xx answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// authtrail's receipt: its `stored` count is added up, and the run
    /// fails unless every event sent was stored.
    Receipts,
    /// Any body (the baseline's fixed answer): the request's events count
    /// as answered, not stored.
    Any,
}

/// One request ready to send, and the events its body holds.
struct Prepared {
    bytes: bytes::Bytes,
    events: u64,
}

/// Writes out every delivery's whole HTTP/1.1 request, credential and all,
/// before the clock starts, as a replaying load generator (wrk, say)
/// prepares its requests: the figures are then the server's, not the
/// generator's. The server still checks every signature (or the token),
/// and the replay window of signatures (5 minutes) is far longer than a
/// phase.
fn prepare_requests(
    bodies: &[String],
    credential: &Credential,
    authority: &str,
    path: &str,
) -> Vec<Prepared> {
    let now = chrono::Utc::now().timestamp();
    bodies
        .iter()
        .map(|body| {
            let credential = match credential {
                Credential::Hmac => format!(
                    "x-authtrail-signature: {}",
                    authtrail_api::auth::webhook::sign(SECRET.as_bytes(), now, body.as_bytes())
                ),
                Credential::Bearer(token) => format!("authorization: Bearer {token}"),
            };
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: {authority}\r\n{credential}\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let mut request = Vec::with_capacity(head.len() + body.len());
            request.extend_from_slice(head.as_bytes());
            request.extend_from_slice(body.as_bytes());
            Prepared {
                bytes: bytes::Bytes::from(request),
                events: body.lines().filter(|line| !line.trim().is_empty()).count() as u64,
            }
        })
        .collect()
}

/// The `p` quantile (0 to 1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// What one phase of load measured.
pub struct Load {
    /// Wall time from the first request to the last answer.
    pub seconds: f64,
    /// Events in the requests that were answered 2xx.
    pub answered: u64,
    /// Events the server reported stored (under [`Answers::Receipts`]).
    pub stored: u64,
    /// Every request's latency, sorted.
    pub latencies: Vec<Duration>,
    /// CPU time this process (the load generator) used meanwhile.
    pub generator_cpu_seconds: Option<f64>,
}

impl Load {
    /// Answered events per second.
    pub fn rate(&self) -> f64 {
        self.answered as f64 / self.seconds
    }
}

/// Room for a few answers at once; receipts are a few hundred bytes.
const RESPONSE_BUFFER: usize = 16 * 1024;

/// Reads one HTTP/1.1 response from `stream` (the server answers with a
/// `content-length`), leaving whatever follows it in `buffer`: its status
/// and body.
async fn read_response(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut bytes::BytesMut,
) -> anyhow::Result<(u16, bytes::Bytes)> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = response.parse(buffer)? {
            let status = response.code.context("a response without a status")?;
            let length = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .context("a response without content-length")?;
            let length: usize = std::str::from_utf8(length.value)?.trim().parse()?;
            while buffer.len() < head_len + length {
                if stream.read_buf(buffer).await? == 0 {
                    bail!("the server closed the connection mid-response");
                }
            }
            let mut response = buffer.split_to(head_len + length);
            return Ok((status, response.split_off(head_len).freeze()));
        }
        if stream.read_buf(buffer).await? == 0 {
            bail!("the server closed the connection");
        }
    }
}

/// The part of a receipt the load generator checks.
#[derive(serde::Deserialize)]
struct Receipt {
    stored: u64,
}

/// Posts every body to `url`, `connections` at a time, each connection a
/// keep-alive HTTP/1.1 connection. The load generator shares the server's
/// two cores, so it costs as little as it can, as wrk does: each request
/// is one buffer prepared before the clock started, written at once (a
/// single `write` for a single event), and each answer is read with
/// `httparse` (status and `content-length`), and its receipt checked under
/// [`Answers::Receipts`].
pub async fn load(
    url: &str,
    credential: &Credential,
    bodies: &[String],
    connections: usize,
    answers: Answers,
) -> anyhow::Result<Load> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("not an http:// URL: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let address: std::net::SocketAddr = authority
        .parse()
        .with_context(|| format!("the server's address {authority}"))?;
    let queue = Arc::new(std::sync::Mutex::new(prepare_requests(
        bodies, credential, authority, path,
    )));
    let generator_cpu_before = process_cpu_seconds(std::process::id());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let queue = Arc::clone(&queue);
        tasks.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let mut buffer = bytes::BytesMut::with_capacity(RESPONSE_BUFFER);
            let mut answered = 0u64;
            let mut stored = 0u64;
            let mut latencies = Vec::new();
            loop {
                let request = queue.lock().map_err(|_| anyhow::anyhow!("queue"))?.pop();
                let Some(request) = request else { break };
                loop {
                    let sent = Instant::now();
                    stream.write_all(&request.bytes).await?;
                    let (status, body) = read_response(&mut stream, &mut buffer).await?;
                    if status == 503 {
                        // Overloaded: back off as a real sender would.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    latencies.push(sent.elapsed());
                    if !(200..300).contains(&status) {
                        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
                    }
                    answered += request.events;
                    if answers == Answers::Receipts {
                        let receipt: Receipt = serde_json::from_slice(&body)?;
                        stored += receipt.stored;
                    }
                    break;
                }
            }
            Ok::<_, anyhow::Error>((answered, stored, latencies))
        }));
    }
    let mut answered = 0;
    let mut stored = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let (a, s, l) = task.await??;
        answered += a;
        stored += s;
        latencies.extend(l);
    }
    let seconds = started.elapsed().as_secs_f64();
    let generator_cpu_seconds = process_cpu_seconds(std::process::id())
        .zip(generator_cpu_before)
        .map(|(after, before)| after - before);
    latencies.sort_unstable();
    Ok(Load {
        seconds,
        answered,
        stored,
        latencies,
        generator_cpu_seconds,
    })
}
