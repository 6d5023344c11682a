//! `smsfold run` as a child process: start, SIGKILL, SIGTERM, `/readyz`,
//! `/campaigns` and the restore lines of its JSON log.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use smsfold_worker::{GroupProtocol, Topics};

/// The pause before a supervisor starts an exited worker again.
const RESTART_DELAY: Duration = Duration::from_millis(100);

/// Builds `target/release/smsfold` with cargo and returns its path. Cargo
/// does not hold the build directory lock while it runs a benchmark, so
/// the build does not wait for this process.
pub fn build_binary(repository: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(["build", "--release", "-p", "smsfold"])
        .current_dir(repository)
        .status()
        .with_context(|| format!("could not run {cargo}"))?;
    if !status.success() {
        bail!("`cargo build --release -p smsfold` failed ({status})");
    }
    // The benchmark runs from <target>/release/deps.
    let exe = std::env::current_exe().context("could not find the benchmark executable")?;
    let binary = exe.parent().and_then(Path::parent).context("the benchmark is not in <target>/release/deps")?.join("smsfold");
    if !binary.exists() {
        bail!("{} is missing after `cargo build --release -p smsfold`", binary.display());
    }
    Ok(binary)
}

/// Returns a loopback port no socket is bound to at the moment.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("could not bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Settings shared by every start of the worker process.
pub struct Launch {
    pub binary: PathBuf,
    pub bootstrap: String,
    pub group: String,
    pub instance: String,
    pub group_protocol: GroupProtocol,
    /// Passed as `--kafka-property KEY=VALUE`.
    pub kafka_properties: Vec<(String, String)>,
    pub topics: Topics,
    pub log_dir: PathBuf,
    /// More `smsfold run` arguments, after the others.
    pub extra_args: Vec<String>,
}

/// The outcome of one start of the worker process.
pub enum Readiness {
    /// `GET /readyz` returned 200 at this instant.
    Ready(Instant),
    /// The process exited first, with the last line of its log.
    Exited(String),
}

/// Starts the worker process and, like a supervisor, starts it again
/// 100 ms after it exits (systemd's default `RestartSec`), until
/// `GET /readyz` returns 200. Returns the process, when it became ready,
/// and why each earlier start exited.
pub fn start_until_ready(launch: &Launch, name: &str, timeout: Duration) -> anyhow::Result<(WorkerProcess, Instant, Vec<String>)> {
    let deadline = Instant::now() + timeout;
    let mut exits = Vec::new();
    loop {
        let mut process = WorkerProcess::start(launch, &format!("{name}-{}", exits.len() + 1))?;
        match process.wait_ready(deadline)? {
            Readiness::Ready(at) => return Ok((process, at, exits)),
            Readiness::Exited(reason) => {
                if Instant::now() > deadline {
                    bail!("smsfold was not ready within {} s of {} starts; the last exited with: {reason}", timeout.as_secs(), exits.len() + 1);
                }
                exits.push(reason);
                std::thread::sleep(RESTART_DELAY);
            }
        }
    }
}

/// A running `smsfold run`. Dropping it sends SIGKILL.
pub struct WorkerProcess {
    child: Option<Child>,
    /// Address of its HTTP endpoints, a fresh port on every start.
    pub http: SocketAddr,
    pub log: PathBuf,
}

impl WorkerProcess {
    /// Starts the worker, logging to `<log_dir>/<name>.log` at the level of
    /// [`worker_log_filter`].
    pub fn start(launch: &Launch, name: &str) -> anyhow::Result<Self> {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let log = launch.log_dir.join(format!("{name}.log"));
        let file = File::create(&log).with_context(|| format!("could not create {}", log.display()))?;
        let topics = &launch.topics;
        let mut command = Command::new(&launch.binary);
        command
            .args(["run", "--bootstrap-servers", &launch.bootstrap])
            .args(["--group-id", &launch.group, "--instance-id", &launch.instance])
            .args(["--group-protocol", protocol_name(launch.group_protocol)])
            .args(["--message-events-topic", &topics.message_events])
            .args(["--campaign-events-topic", &topics.campaign_events])
            .args(["--message-changes-topic", &topics.message_changes])
            .args(["--campaign-changes-topic", &topics.campaign_changes])
            .args(["--dead-letter-topic", &topics.dead_letter])
            .args(["--campaign-stage-topic", &topics.campaign_stage])
            .args(["--message-commands-topic", &topics.message_commands])
            .args(["--carrier-join-topic", &topics.carrier_join])
            .args(["--output-format", "protobuf", "--log-format", "json"])
            .args(["--http-addr", &http.to_string()]);
        for (key, value) in &launch.kafka_properties {
            command.args(["--kafka-property", &format!("{key}={value}")]);
        }
        command.args(&launch.extra_args);
        let child = command
            .env("RUST_LOG", worker_log_filter())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("could not start {}", launch.binary.display()))?;
        Ok(WorkerProcess { child: Some(child), http, log })
    }

    /// Returns the process id, or `None` once the process has been reaped.
    // The end-to-end benchmark does not use it; the comparison does.
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGKILL (what `Child::kill` sends on Unix) and reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM, so the worker commits its open batch and stops, and
    /// waits for it. Sends SIGKILL after `grace`.
    pub fn terminate(&mut self, grace: Duration) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else { return Ok(()) };
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        if !status.is_ok_and(|status| status.success()) {
            self.kill();
            return Ok(());
        }
        let started = Instant::now();
        while started.elapsed() < grace {
            if child.try_wait()?.is_some() {
                self.child = None;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        bail!("smsfold did not stop within {} s of SIGTERM; it was killed (log: {})", grace.as_secs(), self.log.display())
    }

    /// Fails when the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                bail!("smsfold exited ({status}); its log is {}", self.log.display());
            }
        }
        Ok(())
    }

    /// Polls `/readyz` every 50 ms until it returns 200 or the process exits.
    pub fn wait_ready(&mut self, deadline: Instant) -> anyhow::Result<Readiness> {
        loop {
            if let Some(child) = self.child.as_mut() {
                if child.try_wait()?.is_some() {
                    self.child = None;
                    return Ok(Readiness::Exited(last_line(&self.log)));
                }
            }
            if let Ok((200, _)) = http_get(self.http, "/readyz") {
                return Ok(Readiness::Ready(Instant::now()));
            }
            if Instant::now() > deadline {
                bail!("GET /readyz did not return 200 before the deadline; the log is {}", self.log.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Returns the command-line value of a group protocol.
pub fn protocol_name(protocol: GroupProtocol) -> &'static str {
    match protocol {
        GroupProtocol::Consumer => "consumer",
        GroupProtocol::Classic => "classic",
    }
}

fn last_line(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("(empty log)").to_owned()
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `GET path` over HTTP/1.0, so the body comes whole rather than in
/// chunks, and returns the status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("GET {path} returned no HTTP status line: {response:?}"))?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned();
    Ok((status, body))
}

/// Sums the `messages` counts of the campaigns `GET /campaigns` lists.
pub fn campaign_messages(addr: SocketAddr) -> anyhow::Result<u64> {
    let (status, body) = http_get(addr, "/campaigns")?;
    if status != 200 {
        bail!("GET /campaigns returned {status}: {body}");
    }
    let value: serde_json::Value = serde_json::from_str(&body).context("GET /campaigns returned invalid JSON")?;
    let campaigns = value["campaigns"].as_array().context("GET /campaigns returned no campaigns array")?;
    Ok(campaigns.iter().filter_map(|campaign| campaign["messages"].as_u64()).sum())
}

/// One "restored state from the changelogs" line of the worker's log.
#[derive(Debug, Clone, Copy)]
pub struct RestoreLine {
    pub records: u64,
    pub seconds: f64,
}

/// Returns the restore lines of a JSON log, in order.
pub fn restore_lines(log: &Path) -> anyhow::Result<Vec<RestoreLine>> {
    let text = std::fs::read_to_string(log).with_context(|| format!("could not read {}", log.display()))?;
    let mut lines = Vec::new();
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let fields = &value["fields"];
        if fields["message"] == "restored state from the changelogs" {
            if let (Some(records), Some(seconds)) = (fields["records"].as_u64(), fields["seconds"].as_f64()) {
                lines.push(RestoreLine { records, seconds });
            }
        }
    }
    Ok(lines)
}

/// Returns the worker's `RUST_LOG`: `SMSFOLD_BENCH_WORKER_LOG` when set,
/// else warnings and the worker's info lines. With `debug` there, and
/// librdkafka's `debug` property set through `SMSFOLD_KAFKA_PROPERTY_DEBUG`,
/// the worker logs librdkafka's protocol steps.
fn worker_log_filter() -> String {
    std::env::var("SMSFOLD_BENCH_WORKER_LOG").unwrap_or_else(|_| "warn,smsfold_worker=info".to_owned())
}
