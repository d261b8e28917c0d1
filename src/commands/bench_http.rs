//! `authtrail bench http`: the webhook-ingest benchmark. Starts `authtrail
//! serve` as a child process on a fresh log, and from this process (the
//! load generator, over loopback, on keep-alive HTTP/1.1 connections) posts demo
//! OCSF events: NDJSON batches, then one event per request over many
//! keep-alive connections. Reports durable events/s, request latency
//! percentiles, and the CPU time per event of the server and of the load
//! generator, and the server's peak memory (read from `/proc`, so on Linux
//! only).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use authtrail_ingest::demo::{DemoConfig, DemoReader};

use super::thousands;
use crate::cli::{BenchAuth, BenchHttpArgs};

/// Webhook secret of the benchmark server under `--auth hmac`.
const SECRET: &str = "bench-secret";

struct ServerProcess {
    child: Child,
    base: String,
    credential: Credential,
}

/// What every request of a run carries.
#[derive(Clone)]
enum Credential {
    /// A signature of its body with [`SECRET`].
    Hmac,
    /// This bearer token.
    Bearer(String),
}

impl ServerProcess {
    /// CPU time (user and system) the server has used so far, from
    /// `/proc`; `None` where there is no `/proc`.
    fn cpu_seconds(&self) -> Option<f64> {
        process_cpu_seconds(self.child.id())
    }

    /// The server's peak resident memory so far, in MiB, from `/proc`.
    fn peak_memory_mib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024)
    }

    /// The figures of a phase, as table cells: the server's CPU time per
    /// stored event and peak memory, and the load generator's CPU time
    /// per event.
    fn usage_cells(&self, cpu_before: Option<f64>, load: &Load) -> String {
        let server_cpu = self
            .cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        let cpu = cpu_per_event("server", server_cpu, load.stored);
        let memory = match self.peak_memory_mib() {
            Some(mib) => format!("server peak RSS {mib} MiB"),
            None => "server peak RSS n/a".to_owned(),
        };
        let generator = cpu_per_event("load generator", load.generator_cpu_seconds, load.stored);
        format!("{cpu} | {memory} | {generator}")
    }
}

/// CPU time (user and system) process `pid` has used so far, from
/// `/proc`; `None` where there is no `/proc`.
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / CLOCK_TICKS_PER_SECOND)
}

/// `/proc` counts CPU time in clock ticks of 1/100 s (`USER_HZ`), on every
/// Linux architecture.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// A process's CPU time over a phase, per stored event, as a table cell.
fn cpu_per_event(who: &str, cpu_seconds: Option<f64>, events: u64) -> String {
    match cpu_seconds {
        Some(seconds) if events > 0 => {
            format!("{who} CPU {:.1} µs/event", seconds * 1e6 / events as f64)
        }
        _ => format!("{who} CPU n/a"),
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start_server(exe: &Path, dir: &Path, auth: BenchAuth) -> anyhow::Result<ServerProcess> {
    let data = dir.join("http-log");
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("removing {}", data.display()))?;
    }
    let config = dir.join("bench-http.toml");
    let webhook = match auth {
        BenchAuth::Hmac => format!("[webhook.ocsf]\nhmac_secret = \"{SECRET}\"\n\n"),
        // No webhook table: the source takes bearer tokens only.
        BenchAuth::Jwt => String::new(),
    };
    std::fs::write(
        &config,
        format!("{webhook}[server]\nmax_concurrent_requests = 4096\n"),
    )?;
    let mut child = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting authtrail serve")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .with_context(|| format!("the server did not start: {line:?}"))?
        .to_owned();
    let credential = match auth {
        BenchAuth::Hmac => Credential::Hmac,
        BenchAuth::Jwt => {
            // The server made its local signing key in the data directory.
            let minted = Command::new(exe)
                .args([
                    "token",
                    "--role",
                    "ingest",
                    "--ttl",
                    "1h",
                    "--subject",
                    "bench",
                ])
                .arg("--data")
                .arg(&data)
                .arg("--config")
                .arg(&config)
                .output()
                .context("running authtrail token")?;
            if !minted.status.success() {
                bail!(
                    "authtrail token failed: {}",
                    String::from_utf8_lossy(&minted.stderr)
                );
            }
            Credential::Bearer(String::from_utf8(minted.stdout)?.trim().to_owned())
        }
    };
    Ok(ServerProcess {
        child,
        base,
        credential,
    })
}

fn demo_lines(users: usize, days: u32) -> anyhow::Result<Vec<String>> {
    let mut reader = DemoReader::new(DemoConfig::new(
        users,
        days,
        7,
        Some("2026-10-01".parse().context("date")?),
    ));
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .context("generating demo events")?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// Writes out every delivery's whole HTTP/1.1 request, credential and all,
/// before the clock starts, as a replaying load generator (wrk, say)
/// prepares its requests: the figures are then the server's, not the
/// generator's. The server still checks every signature (or the token),
/// and the replay window of signatures (5 minutes) is far longer than a
/// phase.
fn prepare_requests(
    bodies: Vec<String>,
    credential: &Credential,
    authority: &str,
    path: &str,
) -> Vec<bytes::Bytes> {
    let now = chrono::Utc::now().timestamp();
    bodies
        .into_iter()
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
            bytes::Bytes::from(request)
        })
        .collect()
}

/// How a report row names the credential.
fn auth_label(auth: BenchAuth) -> &'static str {
    match auth {
        BenchAuth::Hmac => "HMAC-signed",
        BenchAuth::Jwt => "bearer JWT",
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub fn run(args: BenchHttpArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)?;
    let exe = match &args.server {
        Some(server) => server.clone(),
        None => std::env::current_exe().context("locating the authtrail binary")?,
    };
    eprintln!("generating demo events ...");
    let lines = Arc::new(demo_lines(args.users, args.days)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    // 1. NDJSON batches of `batch` events, `batch_connections` at a time.
    let server = start_server(&exe, &args.dir, args.auth)?;
    let url = format!("{}/v1/ingest/ocsf", server.base);
    let batches: Vec<String> = lines
        .chunks(args.batch)
        .map(|chunk| chunk.join("\n") + "\n")
        .collect();
    let total_events: usize = lines.len();
    let cpu_before = server.cpu_seconds();
    let batch_load = runtime.block_on(load(
        url.clone(),
        server.credential.clone(),
        batches,
        args.batch_connections,
    ))?;
    let usage = server.usage_cells(cpu_before, &batch_load);
    let Load {
        seconds, stored, ..
    } = batch_load;
    drop(server);
    let mut out = String::new();
    out.push_str(&format!(
        "| NDJSON batches of {} events, {} connections, {} | {} events | {:.2} s | {} events/s durable | {usage} |\n",
        args.batch,
        args.batch_connections,
        auth_label(args.auth),
        thousands(stored),
        seconds,
        thousands((stored as f64 / seconds) as u64)
    ));
    if stored as usize != total_events {
        bail!("stored {stored} of {total_events} events");
    }

    // 2. One event per request, keep-alive, `single_connections` at a time.
    let server = start_server(&exe, &args.dir, args.auth)?;
    let url = format!("{}/v1/ingest/ocsf", server.base);
    let singles: Vec<String> = lines
        .iter()
        .take(args.single_requests)
        .map(|l| format!("{l}\n"))
        .collect();
    let count = singles.len();
    let cpu_before = server.cpu_seconds();
    let single_load = runtime.block_on(load(
        url,
        server.credential.clone(),
        singles,
        args.single_connections,
    ))?;
    let usage = server.usage_cells(cpu_before, &single_load);
    let Load {
        seconds,
        stored,
        mut latencies,
        ..
    } = single_load;
    drop(server);
    latencies.sort_unstable();
    out.push_str(&format!(
        "| 1 event per POST, {} keep-alive connections, {} | {} events | {:.2} s | {} events/s durable | p50 {:.2} ms | p99 {:.2} ms | {usage} |\n",
        args.single_connections,
        auth_label(args.auth),
        thousands(stored),
        seconds,
        thousands((stored as f64 / seconds) as u64),
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
    ));
    if stored as usize != count {
        bail!("stored {stored} of {count} single events");
    }
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What one phase of load measured.
struct Load {
    /// Wall time from the first request to the last answer.
    seconds: f64,
    /// Events the server reported stored.
    stored: u64,
    /// Every request's latency.
    latencies: Vec<Duration>,
    /// CPU time this process (the load generator) used meanwhile.
    generator_cpu_seconds: Option<f64>,
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

/// Posts every body, `connections` at a time, each connection a keep-alive
/// HTTP/1.1 connection. The load generator shares the server's two cores,
/// so it costs as little as it can, as wrk does: each request is one
/// buffer prepared before the clock started, written at once (a single
/// `write` for a single event), and each answer is read with `httparse`
/// (status and `content-length`) and its receipt checked.
async fn load(
    url: String,
    credential: Credential,
    bodies: Vec<String>,
    connections: usize,
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
        bodies,
        &credential,
        authority,
        path,
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
            let mut stored = 0u64;
            let mut latencies = Vec::new();
            loop {
                let request = queue.lock().map_err(|_| anyhow::anyhow!("queue"))?.pop();
                let Some(request) = request else { break };
                loop {
                    let sent = Instant::now();
                    stream.write_all(&request).await?;
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
                    let receipt: Receipt = serde_json::from_slice(&body)?;
                    stored += receipt.stored;
                    break;
                }
            }
            Ok::<_, anyhow::Error>((stored, latencies))
        }));
    }
    let mut stored = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let (s, l) = task.await??;
        stored += s;
        latencies.extend(l);
    }
    let seconds = started.elapsed().as_secs_f64();
    let generator_cpu_seconds = process_cpu_seconds(std::process::id())
        .zip(generator_cpu_before)
        .map(|(after, before)| after - before);
    Ok(Load {
        seconds,
        stored,
        latencies,
        generator_cpu_seconds,
    })
}
