//! Progress of long work on stderr: a live bar on a terminal, and a line
//! every few seconds otherwise (for logs of scripted runs).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a line is written when stderr is not a terminal.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Counts records and shows the count, the rate and, when known, the total.
pub struct Progress {
    /// The past-tense verb of the work, e.g. "sent" or "read".
    verb: &'static str,
    total: Option<u64>,
    count: u64,
    started: Instant,
    last_line: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts counting. `total` is the expected count, if known.
    pub fn new(verb: &'static str, total: Option<u64>) -> Self {
        let now = Instant::now();
        let bar = std::io::stderr().is_terminal().then(|| bar(verb, total));
        Progress { verb, total, count: 0, started: now, last_line: now, bar }
    }

    /// Adds `records` to the count.
    pub fn inc(&mut self, records: u64) {
        self.count += records;
        if let Some(bar) = &self.bar {
            bar.inc(records);
        } else if self.last_line.elapsed() >= LINE_INTERVAL {
            self.last_line = Instant::now();
            let of_total = self.total.map(|total| format!(" of {total}")).unwrap_or_default();
            eprintln!("{} {}{of_total} records ({:.0} records/s)", self.verb, self.count, self.rate());
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Returns records per second since the start.
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.started.elapsed().as_secs_f64().max(0.001)
    }

    /// Removes the bar, leaving stderr for the final message.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn bar(verb: &str, total: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = match total {
        Some(_) => format!("{{bar:30}} {verb} {{human_pos}} of {{human_len}} records ({{per_sec}}, {{eta}} left)"),
        None => format!("{{spinner}} {verb} {{human_pos}} records ({{per_sec}})"),
    };
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
