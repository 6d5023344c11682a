//! The machine and the software versions a benchmark ran with.

use std::path::Path;
use std::process::Command;

/// Prints the machine, the versions and the broker, one `name: value` line each.
pub fn print(repository: &Path, bootstrap: &str) {
    println!("machine:");
    println!("  nproc: {}", command_output("nproc", &[]));
    println!("  cpu: {}", cpu_model());
    println!("  kernel: {}", read_trimmed("/proc/sys/kernel/osrelease"));
    println!("  load average at start: {}", read_trimmed("/proc/loadavg"));
    println!("  rustc: {}", command_output("rustc", &["--version"]));
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    println!("  librdkafka: {librdkafka}");
    println!("  smsfold: {} (git revision {})", env!("CARGO_PKG_VERSION"), git_revision(repository));
    let script = repository.join("scripts/kafka-broker.sh");
    println!("  broker at {bootstrap}: {}", command_output(&script.to_string_lossy(), &["status"]));
}

fn cpu_model() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| "unknown".to_owned(), |text| text.trim().to_owned())
}

fn git_revision(repository: &Path) -> String {
    let directory = repository.to_string_lossy();
    let revision = match Command::new("git").args(["-C", &directory, "rev-parse", "--short", "HEAD"]).output() {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        _ => return "unknown, not a git checkout".to_owned(),
    };
    let status = Command::new("git").args(["-C", &directory, "status", "--porcelain", "--untracked-files=no"]).output();
    match status {
        Ok(output) if !output.stdout.is_empty() => format!("{revision}, with uncommitted changes"),
        _ => revision,
    }
}

/// Returns a command's first output line, or why there is none.
fn command_output(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(output) => {
            let text = if output.stdout.is_empty() { output.stderr } else { output.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("(no output)").trim().to_owned()
        }
        Err(error) => format!("unknown ({program} failed: {error})"),
    }
}
