//! The three compared systems as child processes: how each starts on a set
//! of input topics, which topics its group consumes, where its output goes,
//! and its CPU time and memory read from `/proc`.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use smsfold_worker::{GroupProtocol, Topics};

use crate::support::child::{self, Launch, WorkerProcess};
use crate::support::kafka::{Consumed, Kafka};

/// Partitions of the message events topic and of every output and internal
/// topic; the campaign events topic has half as many.
pub const PARTITIONS: i32 = 6;
/// The instance id of each smsfold worker.
const INSTANCE_ID: &str = "compare";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// `smsfold-pipe`: the transactional consume-and-produce ceiling.
    Pipe,
    /// `smsfold run`, exactly-once, protobuf output.
    Smsfold,
    /// The Kafka Streams application under bench/kafka-streams.
    KafkaStreams,
}

impl System {
    pub const ALL: [System; 3] = [System::Pipe, System::Smsfold, System::KafkaStreams];

    pub fn name(self) -> &'static str {
        match self {
            System::Pipe => "pipe",
            System::Smsfold => "smsfold",
            System::KafkaStreams => "kafka-streams",
        }
    }

    pub fn parse(name: &str) -> Option<System> {
        System::ALL.into_iter().find(|system| system.name() == name)
    }
}

/// The input topics every system of one measurement reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub message_events: String,
    pub campaign_events: String,
}

impl Inputs {
    pub fn create(kafka: &Kafka, prefix: &str) -> anyhow::Result<Inputs> {
        let inputs = Inputs { message_events: format!("{prefix}-message-events"), campaign_events: format!("{prefix}-campaign-events") };
        kafka.create_topics(&[(&inputs.message_events, PARTITIONS, false), (&inputs.campaign_events, PARTITIONS / 2, false)])?;
        Ok(inputs)
    }

    pub fn names(&self) -> Vec<String> {
        vec![self.message_events.clone(), self.campaign_events.clone()]
    }
}

/// The programs and settings that start the systems.
pub struct Programs {
    pub smsfold: PathBuf,
    pub pipe: PathBuf,
    pub jar: PathBuf,
    /// The `-Xmx` of the Kafka Streams JVM, e.g. `1g`.
    pub java_heap: String,
    pub streams_threads: usize,
    /// smsfold's and the pipe's `--pipelines`.
    pub pipelines: usize,
    /// smsfold's and the pipe's `batch_max_wait`, and Kafka Streams'
    /// `commit.interval.ms`: how long a transaction stays open.
    pub commit_interval_ms: u64,
    pub bootstrap: String,
    pub log_dir: PathBuf,
}

/// Builds `smsfold` and `smsfold-pipe` in release mode and returns their
/// paths; checks that the Kafka Streams jar exists.
pub fn build(repository: &Path, jar: PathBuf, bootstrap: String, log_dir: PathBuf) -> anyhow::Result<Programs> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(["build", "--release", "-p", "smsfold", "-p", "smsfold-pipe"])
        .current_dir(repository)
        .status()
        .with_context(|| format!("could not run {cargo}"))?;
    if !status.success() {
        bail!("`cargo build --release -p smsfold -p smsfold-pipe` failed ({status})");
    }
    // The benchmark runs from <target>/release/deps.
    let exe = std::env::current_exe().context("could not find the benchmark executable")?;
    let release = exe.parent().and_then(Path::parent).context("the benchmark is not in <target>/release/deps")?;
    if !jar.exists() {
        bail!("{} is missing; build it with `mvn -q -f bench/kafka-streams/pom.xml package` or run scripts/compare.sh", jar.display());
    }
    // Another build of smsfold, such as scripts/heap-profile.sh's wrapper.
    let smsfold = std::env::var_os("SMSFOLD_COMPARE_SMSFOLD").map_or_else(|| release.join("smsfold"), PathBuf::from);
    Ok(Programs {
        smsfold,
        pipe: release.join("smsfold-pipe"),
        jar,
        java_heap: std::env::var("SMSFOLD_COMPARE_JAVA_HEAP").unwrap_or_else(|_| "1g".to_owned()),
        streams_threads: crate::env_number("SMSFOLD_COMPARE_STREAMS_THREADS", 2)? as usize,
        pipelines: crate::env_number("SMSFOLD_COMPARE_PIPELINES", 2)? as usize,
        commit_interval_ms: crate::env_number("SMSFOLD_COMPARE_COMMIT_INTERVAL_MS", 100)?,
        bootstrap,
        log_dir,
    })
}

/// One started system.
pub struct Running {
    pub system: System,
    process: Process,
    pub pid: u32,
    /// The consumer group, or the Kafka Streams application id.
    pub group: String,
    /// Every topic the group consumes, for its progress.
    pub consumed: Vec<Consumed>,
    /// The topic whose records carry event times: the message status
    /// changes, or the pipe's copies.
    pub latency_topic: String,
    /// The campaign status changes (none for the pipe).
    pub campaign_changes: Option<String>,
    /// `GET /campaigns` and `/readyz` (none for the pipe).
    pub http: Option<SocketAddr>,
    pub log: PathBuf,
    /// Topics this run created or made the system create, to delete at the end.
    pub topics: Vec<String>,
}

enum Process {
    Smsfold(WorkerProcess),
    Child(Option<Child>),
}

impl Running {
    /// Creates the system's output topics and starts it on `inputs` under
    /// the name `prefix`.
    pub fn start(system: System, programs: &Programs, kafka: &Kafka, inputs: &Inputs, prefix: &str) -> anyhow::Result<Running> {
        let group = format!("{prefix}-{}", system.name());
        let log = programs.log_dir.join(format!("{group}.log"));
        let input_consumed = || {
            vec![
                Consumed { topic: inputs.message_events.clone(), transactional: false },
                Consumed { topic: inputs.campaign_events.clone(), transactional: false },
            ]
        };
        match system {
            System::Pipe => {
                let output = format!("{group}-copies");
                kafka.create_topics(&[(&output, PARTITIONS, false)])?;
                let file = File::create(&log).with_context(|| format!("could not create {}", log.display()))?;
                let child = Command::new(&programs.pipe)
                    .args(["--bootstrap-servers", &programs.bootstrap, "--group-id", &group])
                    .args(["--input-topic", &inputs.message_events, "--input-topic", &inputs.campaign_events])
                    .args(["--output-topic", &output])
                    .args(["--batch-max-wait-ms", &programs.commit_interval_ms.to_string()])
                    .args(["--pipelines", &programs.pipelines.to_string()])
                    .stdin(Stdio::null())
                    .stdout(file.try_clone()?)
                    .stderr(file)
                    .spawn()
                    .with_context(|| format!("could not start {}", programs.pipe.display()))?;
                Ok(Running {
                    system,
                    pid: child.id(),
                    process: Process::Child(Some(child)),
                    group,
                    consumed: input_consumed(),
                    latency_topic: output.clone(),
                    campaign_changes: None,
                    http: None,
                    log,
                    topics: vec![output],
                })
            }
            System::Smsfold => {
                let mut topics = Topics::with_prefix(&format!("{group}-"));
                topics.message_events = inputs.message_events.clone();
                topics.campaign_events = inputs.campaign_events.clone();
                let message_changelog = format!("{group}-message-changelog");
                let campaign_changelog = format!("{group}-campaign-changelog");
                let carrier_changelog = format!("{group}-carrier-changelog");
                // Created beforehand, as the worker would create them, so
                // the broker serves every partition before the worker starts.
                kafka.create_topics(&[
                    (&topics.message_commands, PARTITIONS, false),
                    (&topics.campaign_stage, PARTITIONS, false),
                    (&topics.carrier_join, PARTITIONS, false),
                    (&topics.message_changes, PARTITIONS, false),
                    (&topics.campaign_changes, PARTITIONS, false),
                    (&topics.dead_letter, PARTITIONS, false),
                    (&message_changelog, PARTITIONS, true),
                    (&campaign_changelog, PARTITIONS, true),
                    (&carrier_changelog, PARTITIONS, true),
                ])?;
                let launch = Launch {
                    binary: programs.smsfold.clone(),
                    bootstrap: programs.bootstrap.clone(),
                    group: group.clone(),
                    instance: INSTANCE_ID.to_owned(),
                    group_protocol: GroupProtocol::Consumer,
                    kafka_properties: Vec::new(),
                    topics: topics.clone(),
                    log_dir: programs.log_dir.clone(),
                    extra_args: vec![
                        "--batch-max-wait-ms".to_owned(),
                        programs.commit_interval_ms.to_string(),
                        "--pipelines".to_owned(),
                        programs.pipelines.to_string(),
                    ],
                };
                let process = WorkerProcess::start(&launch, &group)?;
                let pid = process.pid().context("smsfold exited at once")?;
                let mut consumed = input_consumed();
                consumed.push(Consumed { topic: topics.campaign_stage.clone(), transactional: true });
                consumed.push(Consumed { topic: topics.message_commands.clone(), transactional: true });
                consumed.push(Consumed { topic: topics.carrier_join.clone(), transactional: true });
                let owned = vec![
                    topics.message_commands.clone(),
                    topics.campaign_stage.clone(),
                    topics.carrier_join.clone(),
                    topics.message_changes.clone(),
                    topics.campaign_changes.clone(),
                    topics.dead_letter.clone(),
                    message_changelog,
                    campaign_changelog,
                    carrier_changelog,
                ];
                Ok(Running {
                    system,
                    pid,
                    http: Some(process.http),
                    log: process.log.clone(),
                    process: Process::Smsfold(process),
                    group,
                    consumed,
                    latency_topic: topics.message_changes.clone(),
                    campaign_changes: Some(topics.campaign_changes.clone()),
                    topics: owned,
                })
            }
            System::KafkaStreams => {
                let message_changes = format!("{group}-message-status-changes");
                let campaign_changes = format!("{group}-campaign-status-changes");
                kafka.create_topics(&[(&message_changes, PARTITIONS, false), (&campaign_changes, PARTITIONS, false)])?;
                let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
                let state_dir = programs.log_dir.join(format!("{group}-state"));
                let file = File::create(&log).with_context(|| format!("could not create {}", log.display()))?;
                let child = Command::new("java")
                    .arg(format!("-Xmx{}", programs.java_heap))
                    .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
                    .arg("-jar")
                    .arg(&programs.jar)
                    .args(["--bootstrap-servers", &programs.bootstrap, "--application-id", &group])
                    .args(["--message-events-topic", &inputs.message_events, "--campaign-events-topic", &inputs.campaign_events])
                    .args(["--message-changes-topic", &message_changes, "--campaign-changes-topic", &campaign_changes])
                    .args(["--state-dir", &state_dir.to_string_lossy(), "--http-port", &http.port().to_string()])
                    .args(["--threads", &programs.streams_threads.to_string(), "--stage-partitions", &PARTITIONS.to_string()])
                    .args(["--commit-interval-ms", &programs.commit_interval_ms.to_string()])
                    .stdin(Stdio::null())
                    .stdout(file.try_clone()?)
                    .stderr(file)
                    .spawn()
                    .context("could not start java")?;
                // Kafka Streams names its internal topics after the
                // application id and the names given in the topology.
                let stage = format!("{group}-campaign-stage-repartition");
                let mut consumed = input_consumed();
                consumed.push(Consumed { topic: stage.clone(), transactional: true });
                let mut owned = vec![message_changes.clone(), campaign_changes.clone(), stage];
                for store in ["messages", "campaigns", "campaign-messages"] {
                    owned.push(format!("{group}-{store}-changelog"));
                }
                Ok(Running {
                    system,
                    pid: child.id(),
                    process: Process::Child(Some(child)),
                    group,
                    consumed,
                    latency_topic: message_changes,
                    campaign_changes: Some(campaign_changes),
                    http: Some(http),
                    log,
                    topics: owned,
                })
            }
        }
    }

    /// Fails when the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match &mut self.process {
            Process::Smsfold(process) => process.check_running(),
            Process::Child(child) => {
                if let Some(running) = child.as_mut() {
                    if let Some(status) = running.try_wait()? {
                        *child = None;
                        bail!("{} exited ({status}); its log is {}", self.system.name(), self.log.display());
                    }
                }
                Ok(())
            }
        }
    }

    /// Waits until `GET /readyz` returns 200, for the systems that serve it.
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let Some(http) = self.http else { return Ok(()) };
        let deadline = Instant::now() + timeout;
        loop {
            self.check_running()?;
            if let Ok((200, _)) = child::http_get(http, "/readyz") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} was not ready within {} s; its log is {}", self.system.name(), timeout.as_secs(), self.log.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Reads the process's CPU time and memory.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        Usage::read(self.pid)
    }

    /// Sends SIGTERM and waits up to `grace` for the process to stop, then
    /// sends SIGKILL.
    pub fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        match &mut self.process {
            Process::Smsfold(process) => process.terminate(grace),
            Process::Child(child) => {
                let Some(mut running) = child.take() else { return Ok(()) };
                let _ = Command::new("kill").args(["-TERM", &running.id().to_string()]).status();
                let started = Instant::now();
                while started.elapsed() < grace {
                    if running.try_wait()?.is_some() {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = running.kill();
                let _ = running.wait();
                bail!("{} did not stop within {} s of SIGTERM and was killed; its log is {}", self.system.name(), grace.as_secs(), self.log.display())
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Process::Child(Some(child)) = &mut self.process {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A process's CPU time and memory, from `/proc/<pid>/stat` and `status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User plus system CPU time of all its threads, in seconds.
    pub cpu_seconds: f64,
    /// The highest resident set size so far (VmHWM), in bytes.
    pub peak_rss_bytes: u64,
}

impl Usage {
    pub fn read(pid: u32) -> anyhow::Result<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("could not read /proc/{pid}/stat"))?;
        // The command name, field 2, is in parentheses and may contain
        // spaces; utime and stime are fields 14 and 15.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<u64>().ok()).unwrap_or(0);
        let cpu_seconds = (ticks(11) + ticks(12)) as f64 / clock_ticks_per_second();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("could not read /proc/{pid}/status"))?;
        let kilobytes = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(Usage { cpu_seconds, peak_rss_bytes: kilobytes("VmHWM:") * 1024 })
    }
}

/// Returns the kernel's clock ticks per second (`getconf CLK_TCK`), 100 when
/// it cannot be read.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Returns a loopback port no socket is bound to at the moment.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("could not bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}
