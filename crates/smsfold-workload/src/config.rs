//! The settings of a workload: its size, the shape of its traffic and the
//! seed. Every rate is a probability from 0 to 1, applied independently to
//! each message or event it names.

use std::fmt;
use std::str::FromStr;

/// An invalid workload setting, named as on the command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid workload setting {setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        ConfigError { setting, problem: problem.into() }
    }
}

/// How many messages have each segment count, as relative weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMix {
    /// `(segments, weight)` pairs, segments in rising order.
    pub weights: Vec<(u16, u32)>,
}

impl SegmentMix {
    /// Returns the sum of the weights.
    pub fn total_weight(&self) -> u64 {
        self.weights.iter().map(|(_, weight)| u64::from(*weight)).sum()
    }

    /// Returns the segment count whose cumulative weight first exceeds
    /// `point`, a number below [`SegmentMix::total_weight`].
    pub fn pick(&self, point: u64) -> u16 {
        let mut cumulative = 0;
        for (segments, weight) in &self.weights {
            cumulative += u64::from(*weight);
            if point < cumulative {
                return *segments;
            }
        }
        self.weights.last().map_or(1, |(segments, _)| *segments)
    }
}

impl Default for SegmentMix {
    /// Mostly single-segment texts, as in marketing traffic: 70% one segment,
    /// 20% two, 7% three, 3% four.
    fn default() -> Self {
        SegmentMix { weights: vec![(1, 70), (2, 20), (3, 7), (4, 3)] }
    }
}

/// Parses `SEGMENTS:WEIGHT,...`, for example `1:70,2:20,3:7,4:3`.
impl FromStr for SegmentMix {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |problem: String| ConfigError::new("segment_mix", problem);
        let mut weights = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
            let (segments, weight) = pair
                .split_once(':')
                .ok_or_else(|| invalid(format!("{pair:?} is not SEGMENTS:WEIGHT, e.g. 2:20")))?;
            let segments: u16 = segments
                .trim()
                .parse()
                .map_err(|_| invalid(format!("segment count {segments:?} is not a number from 1 to 65535")))?;
            let weight: u32 =
                weight.trim().parse().map_err(|_| invalid(format!("weight {weight:?} is not a whole number")))?;
            if segments == 0 {
                return Err(invalid("a segment count is 0; counts start at 1".to_owned()));
            }
            weights.push((segments, weight));
        }
        weights.sort_unstable();
        if weights.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return Err(invalid(format!("{text:?} lists a segment count twice")));
        }
        let mix = SegmentMix { weights };
        if mix.total_weight() == 0 {
            return Err(invalid(format!("{text:?} has no positive weight")));
        }
        Ok(mix)
    }
}

impl fmt::Display for SegmentMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs: Vec<String> = self.weights.iter().map(|(segments, weight)| format!("{segments}:{weight}")).collect();
        f.write_str(&pairs.join(","))
    }
}

/// The settings of one workload. [`WorkloadConfig::default`] gives the
/// values the `smsfold-workload` command documents as its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// Seeds every random choice; the same settings and seed give the same
    /// events.
    pub seed: u64,
    /// Messages in all, inbound and one-off messages included.
    pub messages: u64,
    /// Campaigns the outbound campaign messages are spread over. Campaign
    /// `c` (from 0) gets a share of them proportional to `c + 1`, so sizes
    /// range from small to large.
    pub campaigns: u32,
    /// Event time of the first accepted message, in milliseconds since the
    /// Unix epoch. Campaign events start up to a minute before it.
    pub start_ms: i64,
    /// Messages accepted per second of event time, which sets how far apart
    /// their events lie.
    pub accepted_per_second: u32,
    /// Share of outbound messages that belong to no campaign.
    pub one_off_rate: f64,
    /// Share of all messages that are inbound: receiving, then received.
    pub inbound_rate: f64,
    /// Segment counts of the messages.
    pub segment_mix: SegmentMix,
    /// Share of messages sent as MMS.
    pub mms_rate: f64,
    /// Share of outbound messages with a send time: accepted with `send_at`,
    /// scheduled, and queued at the send time, 1 to 60 s later.
    pub scheduled_rate: f64,
    /// Share of outbound messages whose `sending` status is reported; the
    /// others skip it, as many platforms do.
    pub sending_rate: f64,
    /// Share of outbound messages that fail instead of being sent.
    pub failure_rate: f64,
    /// Share of sent messages that never get a receipt, so `sent` stays
    /// their last status.
    pub no_receipt_rate: f64,
    /// Share of receipts that report the message undelivered.
    pub undelivered_rate: f64,
    /// The minimum time from sent to the receipt's event time, in
    /// milliseconds.
    pub receipt_delay_min_ms: u64,
    /// The maximum time from sent to the receipt's event time, in
    /// milliseconds. Delays are uniform between the two.
    pub receipt_delay_max_ms: u64,
    /// Share of events (all but a message's last) that arrive after the
    /// message's next event, 0.1 to 3 s after it.
    pub out_of_order_rate: f64,
    /// Share of events that arrive a second time, with the same event id.
    pub duplicate_rate: f64,
    /// The maximum time from an event's first arrival to its repeat, in
    /// milliseconds. Repeats arrive 1 ms to this much later.
    pub duplicate_delay_max_ms: u64,
    /// Carriers the sent messages are spread over. Each carrier writes its
    /// message ids in its own form: upper-case hexadecimal, decimal with
    /// leading zeros, lower-case hexadecimal, or a `carrier-` prefixed text.
    pub carriers: u32,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            seed: 0x5eed_2026,
            messages: 100_000,
            campaigns: 50,
            // 2026-01-01T00:00:00Z
            start_ms: 1_767_225_600_000,
            accepted_per_second: 2_000,
            one_off_rate: 0.02,
            inbound_rate: 0.02,
            segment_mix: SegmentMix::default(),
            mms_rate: 0.05,
            scheduled_rate: 0.10,
            sending_rate: 0.30,
            failure_rate: 0.03,
            no_receipt_rate: 0.02,
            undelivered_rate: 0.07,
            receipt_delay_min_ms: 2_000,
            receipt_delay_max_ms: 20_000,
            out_of_order_rate: 0.05,
            duplicate_rate: 0.05,
            duplicate_delay_max_ms: 60_000,
            carriers: 4,
        }
    }
}

impl WorkloadConfig {
    /// Checks every setting and the rules between them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rates = [
            ("one_off_rate", self.one_off_rate),
            ("inbound_rate", self.inbound_rate),
            ("mms_rate", self.mms_rate),
            ("scheduled_rate", self.scheduled_rate),
            ("sending_rate", self.sending_rate),
            ("failure_rate", self.failure_rate),
            ("no_receipt_rate", self.no_receipt_rate),
            ("undelivered_rate", self.undelivered_rate),
            ("out_of_order_rate", self.out_of_order_rate),
            ("duplicate_rate", self.duplicate_rate),
        ];
        for (setting, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::new(setting, format!("{rate} is outside 0 to 1; give a probability such as 0.05")));
            }
        }
        if self.campaigns == 0 && self.one_off_rate < 1.0 && self.inbound_rate < 1.0 {
            return Err(ConfigError::new(
                "campaigns",
                "is 0 but some messages belong to campaigns; set at least 1, or one_off_rate to 1",
            ));
        }
        if self.accepted_per_second == 0 {
            return Err(ConfigError::new("accepted_per_second", "is 0; set a positive rate, e.g. 2000"));
        }
        if self.carriers == 0 {
            return Err(ConfigError::new("carriers", "is 0; set at least 1"));
        }
        if self.receipt_delay_min_ms > self.receipt_delay_max_ms {
            return Err(ConfigError::new(
                "receipt_delay_min_ms",
                format!("{} is above receipt_delay_max_ms ({})", self.receipt_delay_min_ms, self.receipt_delay_max_ms),
            ));
        }
        if self.duplicate_delay_max_ms == 0 {
            return Err(ConfigError::new("duplicate_delay_max_ms", "is 0; set at least 1"));
        }
        if self.segment_mix.total_weight() == 0 {
            return Err(ConfigError::new("segment_mix", "has no positive weight"));
        }
        Ok(())
    }
}
