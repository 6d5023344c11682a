//! `smsfold demo` with no broker configured: it runs on the in-process mock
//! cluster and must print every status change of its campaign and summary.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The demo gives up by itself after 60 s without its last record. A run
/// still alive long after that is hung, so it is killed and the test fails
/// instead of blocking the whole test run.
const DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn demo_runs_on_mock_cluster() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smsfold"))
        .arg("demo")
        .env_remove("SMSFOLD_DEMO_BOOTSTRAP_SERVERS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smsfold runs");
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let status = wait_or_kill(&mut child, DEADLINE);
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let status = status.unwrap_or_else(|| panic!("demo still running after {DEADLINE:?}; killed:\n{stdout}\n{stderr}"));
    assert!(status.success(), "demo failed:\n{stdout}\n{stderr}");

    assert!(stdout.contains("campaign spring-sale     sending -> completed"), "{stdout}");
    assert!(stdout.contains("message  msg-5             sent -> undelivered"), "{stdout}");
    assert!(stdout.contains("message  msg-7         accepted -> failed"), "{stdout}");
    assert!(stdout.contains("message  inbound-1    receiving -> received"), "{stdout}");
    assert!(stdout.contains("dead letter  key \"msg-9\" reason invalid_json"), "{stdout}");
    // The late sent events of msg-1 change nothing after its receipt.
    assert!(!stdout.contains("message  msg-1        delivered -> sent"), "{stdout}");

    let summary: serde_json::Value =
        serde_json::from_str(stdout.split("campaign summary").nth(1).expect("a summary")).expect("JSON summary");
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["messages"], 8);
    assert_eq!(summary["delivered"], 6);
    assert_eq!(summary["by_status"]["undelivered"], 1);
    assert_eq!(summary["by_status"]["failed"], 1);
    assert_eq!(summary["segments"], 9);
    assert_eq!(summary["billable_segments"], 8);
    assert_eq!(summary["delivery_rate"], 0.75);
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// Waits for `child` up to `deadline`; kills it and returns `None` when it
/// is still running then.
fn wait_or_kill(child: &mut Child, deadline: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < deadline {
        if let Some(status) = child.try_wait().expect("wait for the demo") {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
