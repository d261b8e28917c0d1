//! The servers `bench http` posts to, each a child process on a free
//! loopback port: `authtrail serve` on a fresh log, and the baseline, nginx
//! answering every request at once with a fixed body (it reads and drops
//! what it is sent, and stores nothing). Also reads their CPU time and peak
//! memory from `/proc`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::load::Credential;
use crate::cli::BenchAuth;

/// Webhook secret of the benchmark server under `--auth hmac`.
pub const SECRET: &str = "bench-secret";

/// A server under load, stopped (SIGTERM, then waited for) when dropped.
pub struct ServerProcess {
    child: Child,
    /// How report rows name it: `authtrail`, or nginx's version.
    pub name: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What every request carries.
    pub credential: Credential,
}

impl ServerProcess {
    /// CPU time (user and system) the server and its child processes
    /// (nginx's workers) have used so far; `None` where there is no
    /// `/proc`.
    pub fn cpu_seconds(&self) -> Option<f64> {
        process_tree(self.child.id())
            .into_iter()
            .map(process_cpu_seconds)
            .sum()
    }

    /// Peak resident memory so far of the server and its child processes,
    /// in MiB, from `/proc`.
    fn peak_memory_mib(&self) -> Option<u64> {
        let kib: Option<u64> = process_tree(self.child.id())
            .into_iter()
            .map(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .sum();
        Some(kib? / 1024)
    }

    /// The figures of a phase, as table cells: the server's CPU time per
    /// event and peak memory, and the load generator's CPU time per event.
    pub fn usage_cells(
        &self,
        cpu_before: Option<f64>,
        events: u64,
        generator_cpu_seconds: Option<f64>,
    ) -> String {
        let server_cpu = self
            .cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        let cpu = cpu_per_event("server", server_cpu, events);
        let memory = match self.peak_memory_mib() {
            Some(mib) => format!("server peak RSS {mib} MiB"),
            None => "server peak RSS n/a".to_owned(),
        };
        let generator = cpu_per_event("load generator", generator_cpu_seconds, events);
        format!("{cpu} | {memory} | {generator}")
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

/// `pid` and its child processes, as `/proc` lists them (Linux only; just
/// `pid` elsewhere).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        pids.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    pids
}

/// CPU time (user and system) process `pid` has used so far, from
/// `/proc`; `None` where there is no `/proc`.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / CLOCK_TICKS_PER_SECOND)
}

/// `/proc` counts CPU time in clock ticks of 1/100 s (`USER_HZ`), on every
/// Linux architecture.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// A process's CPU time over a phase, per event, as a table cell.
fn cpu_per_event(who: &str, cpu_seconds: Option<f64>, events: u64) -> String {
    match cpu_seconds {
        Some(seconds) if events > 0 => {
            format!("{who} CPU {:.1} µs/event", seconds * 1e6 / events as f64)
        }
        _ => format!("{who} CPU n/a"),
    }
}

/// Starts `authtrail serve` (the binary `exe`) on a fresh log in `dir`.
pub fn start_authtrail(exe: &Path, dir: &Path, auth: BenchAuth) -> anyhow::Result<ServerProcess> {
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
        name: "authtrail".to_owned(),
        base,
        credential,
    })
}

/// The nginx binary of the baseline, with its version.
pub struct Nginx {
    path: PathBuf,
    /// E.g. `nginx/1.22.1`.
    pub version: String,
}

/// Where nginx is looked for when it is not on `PATH` (root's `sbin`
/// directories often are not on a user's).
const NGINX_PLACES: &[&str] = &[
    "/usr/sbin/nginx",
    "/usr/local/sbin/nginx",
    "/usr/local/bin/nginx",
    "/opt/homebrew/bin/nginx",
];

impl Nginx {
    /// Finds nginx on `PATH` or in the usual places, and asks its version.
    pub fn locate() -> anyhow::Result<Nginx> {
        let on_path = std::env::var_os("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("nginx"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let path = on_path
            .into_iter()
            .chain(NGINX_PLACES.iter().map(PathBuf::from))
            .find(|candidate| candidate.is_file())
            .context(
                "nginx, the HTTP baseline, is not installed: apt-get install nginx-light \
                 (or brew install nginx), or pass --no-nginx to measure authtrail alone",
            )?;
        let output = Command::new(&path)
            .arg("-v")
            .output()
            .with_context(|| format!("running {} -v", path.display()))?;
        // nginx prints its version on standard error.
        let printed = String::from_utf8_lossy(&output.stderr);
        let version = printed
            .split_whitespace()
            .find(|word| word.starts_with("nginx/"))
            .with_context(|| format!("{} -v printed no version: {printed:?}", path.display()))?
            .to_owned();
        Ok(Nginx { path, version })
    }

    /// Starts nginx on a free loopback port with a configuration in `dir`:
    /// two workers (one a core), keep-alive without a request limit, and a
    /// fixed JSON answer to every request, sent once the body is read and
    /// dropped. Requests carry `credential`, which nginx does not check.
    pub fn start(&self, dir: &Path, credential: Credential) -> anyhow::Result<ServerProcess> {
        let root = dir.join("nginx");
        std::fs::create_dir_all(root.join("body"))
            .with_context(|| format!("creating {}", root.display()))?;
        let root = std::fs::canonicalize(&root)?;
        let port = free_port()?;
        let config = root.join("nginx.conf");
        let root_text = root.display();
        std::fs::write(
            &config,
            format!(
                "worker_processes 2;\n\
                 daemon off;\n\
                 pid {root_text}/nginx.pid;\n\
                 error_log {root_text}/error.log warn;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n\
                 \x20   access_log off;\n\
                 \x20   client_body_temp_path {root_text}/body;\n\
                 \x20   client_max_body_size 64m;\n\
                 \x20   client_body_buffer_size 4m;\n\
                 \x20   keepalive_requests 1000000000;\n\
                 \x20   keepalive_timeout 300s;\n\
                 \x20   server {{\n\
                 \x20       listen 127.0.0.1:{port};\n\
                 \x20       location / {{\n\
                 \x20           default_type application/json;\n\
                 \x20           return 200 '{{\"answered\":true}}';\n\
                 \x20       }}\n\
                 \x20   }}\n\
                 }}\n"
            ),
        )?;
        let child = Command::new(&self.path)
            .arg("-p")
            .arg(&root)
            .arg("-e")
            .arg(root.join("error.log"))
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", self.path.display()))?;
        let mut server = ServerProcess {
            child,
            name: self.version.clone(),
            base: format!("http://127.0.0.1:{port}"),
            credential,
        };
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(address).is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                let log = std::fs::read_to_string(root.join("error.log")).unwrap_or_default();
                bail!("nginx exited ({status}) before it listened:\n{log}");
            }
            if Instant::now() > deadline {
                bail!("nginx did not listen on {address} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A loopback port nobody listens on now (the kernel's pick, released for
/// nginx to take).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}
