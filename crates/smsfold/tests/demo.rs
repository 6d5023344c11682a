//! `smsfold demo` with no broker configured: it runs on the in-process mock
//! cluster and must print every status change of its campaign and summary.

use std::process::Command;

#[test]
fn demo_runs_on_mock_cluster() {
    let output = Command::new(env!("CARGO_BIN_EXE_smsfold"))
        .arg("demo")
        .env_remove("SMSFOLD_DEMO_BOOTSTRAP_SERVERS")
        .output()
        .expect("smsfold runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");

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
