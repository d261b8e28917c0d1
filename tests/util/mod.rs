//! Helpers for the end-to-end tests: run the real `authtrail` binary
//! against a temporary data directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the run succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "authtrail failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A temporary workspace with a data directory.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_authtrail"));
        command
            .args(args)
            .env("AUTHTRAIL_DATA", self.data())
            .env_remove("AUTHTRAIL_LOG");
        command
    }

    /// Runs `authtrail ARGS` with `--data` from the environment.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }

    /// Runs `authtrail ARGS` with `input` on standard input.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        Run::from(child.wait_with_output().unwrap())
    }

    /// Runs `authtrail ingest file --source ocsf PATH`.
    pub fn ingest_ocsf(&self, path: &Path) -> Run {
        self.run(&["ingest", "file", "--source", "ocsf", path.to_str().unwrap()])
    }

    /// Writes `lines` to a file of the workspace and ingests it as OCSF.
    pub fn ingest_lines(&self, name: &str, lines: &[String]) -> Run {
        let path = self.path(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        self.ingest_ocsf(&path).ok()
    }

    /// Runs a query and returns its CSV output's data rows.
    pub fn query_csv(&self, sql: &str) -> Vec<String> {
        let run = self.run(&["query", "--format", "csv", sql]).ok();
        run.stdout.lines().skip(1).map(str::to_owned).collect()
    }

    /// A single number from a query.
    pub fn query_number(&self, sql: &str) -> u64 {
        let rows = self.query_csv(sql);
        assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
        rows[0]
            .parse()
            .unwrap_or_else(|_| panic!("{sql}: not a number: {}", rows[0]))
    }

    /// Writes a small demo as OCSF NDJSON and returns its lines.
    pub fn demo_lines(&self, users: usize, days: u32) -> Vec<String> {
        let file = self.path("demo.ndjson");
        self.run(&[
            "demo",
            "--users",
            &users.to_string(),
            "--days",
            &days.to_string(),
            "--start",
            "2026-03-02",
            "--ndjson",
            file.to_str().unwrap(),
        ])
        .ok();
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Every sealed Parquet file under `dir`, sorted.
pub fn sealed_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A running `authtrail serve`, stopped (SIGTERM, then waited for) on drop.
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    /// Starts `authtrail serve` on a free port of 127.0.0.1 over the
    /// workspace's data directory, with `config` (TOML) as its
    /// configuration file.
    pub fn start(workspace: &Workspace, config: &str) -> Server {
        Server::start_with_env(workspace, config, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_with_env(workspace: &Workspace, config: &str, env: &[(&str, &str)]) -> Server {
        use std::io::BufRead;
        let config_path = workspace.path("authtrail.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut command = workspace.command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config_path.to_str().unwrap(),
        ]);
        command.envs(env.iter().copied());
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("authtrail serve did not print its address: {line:?}"))
            .to_owned();
        Server { child, base }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it.
    pub fn stop(mut self) -> i32 {
        self.terminate()
    }

    fn terminate(&mut self) -> i32 {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child
            .wait()
            .map(|s| s.code().unwrap_or(-1))
            .unwrap_or(-1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}
