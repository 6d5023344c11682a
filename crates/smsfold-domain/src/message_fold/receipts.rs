//! The receipt details the message fold keeps beyond a message's status:
//! the carrier's raw `stat` and `err`, and the delivered segments of a
//! message sent in several parts.
//!
//! Only messages with such details get an entry, so the 24-byte state of
//! every other message stays as it is. Raw reports are interned, because
//! carriers use a few dozen distinct `stat` and `err` values.
//!
//! Every rule here depends only on the set of receipts, not on their order:
//! - the progress report is the intermediate or unknown receipt of the
//!   highest outcome, the earliest among those, and the smallest report
//!   among those;
//! - each segment keeps its earliest delivered receipt;
//! - a message of N segments is complete when segments 0 to N-1 all have a
//!   delivered receipt, for some N a segment receipt reported. It completes
//!   at the latest of those receipts, so more receipts can only make the
//!   completion earlier.

use hashbrown::HashMap;

use crate::event::{CarrierReport, ReceiptOutcome, Segment};
use crate::key::MessageKey;
use crate::time::Timestamp;

/// The intermediate or unknown receipt the projection shows while no receipt
/// reported the message's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressReport {
    /// `Intermediate` or `Unknown`.
    pub outcome: ReceiptOutcome,
    pub at: Timestamp,
    pub report: CarrierReport,
}

/// The earliest delivered receipt of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDelivery {
    pub index: u16,
    pub at: Timestamp,
    pub error_code: u32,
    pub report: Option<CarrierReport>,
}

/// A message's receipt details, as its projection shows them and as the
/// changelog stores them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiptHistory {
    /// The raw stat and err of the receipt that reported the current status;
    /// `None` when another event reported it, or a receipt without them.
    pub status_report: Option<CarrierReport>,
    /// The most advanced intermediate or unknown receipt.
    pub progress: Option<ProgressReport>,
    /// The segment counts that segment receipts reported, in rising order;
    /// empty for a message without segment receipts.
    pub segment_counts: Vec<u16>,
    /// The earliest delivered receipt of each segment, by segment index.
    pub delivered_segments: Vec<SegmentDelivery>,
}

impl ReceiptHistory {
    /// Returns the raw stat and err to show for the message: those of the
    /// receipt behind its status, else those of its progress report.
    pub fn current_report(&self) -> Option<&CarrierReport> {
        self.status_report.as_ref().or(self.progress.as_ref().map(|progress| &progress.report))
    }

    pub fn is_empty(&self) -> bool {
        self.status_report.is_none()
            && self.progress.is_none()
            && self.segment_counts.is_empty()
            && self.delivered_segments.is_empty()
    }
}

/// An interned [`CarrierReport`]; `NO_REPORT` stands for none.
pub(super) type ReportId = u32;
pub(super) const NO_REPORT: ReportId = u32::MAX;

/// A status report: the status an event or a set of segment receipts
/// reports, when, with which error code and with which raw report.
#[derive(Debug, Clone, Copy)]
pub(super) struct Report {
    pub at: i64,
    pub error_code: u32,
    pub report: ReportId,
}

#[derive(Debug, Clone, Copy)]
struct Progress {
    outcome: ReceiptOutcome,
    at: i64,
    report: ReportId,
}

#[derive(Debug, Clone, Copy)]
struct Delivery {
    index: u16,
    at: i64,
    error_code: u32,
    report: ReportId,
}

#[derive(Debug, Default)]
struct Segments {
    /// Reported segment counts, sorted and distinct.
    counts: Vec<u16>,
    /// The earliest delivered receipt per segment, sorted by index.
    delivered: Vec<Delivery>,
}

#[derive(Debug, Default)]
struct Entry {
    status_report: Option<ReportId>,
    progress: Option<Progress>,
    segments: Option<Box<Segments>>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.status_report.is_none() && self.progress.is_none() && self.segments.is_none()
    }
}

/// The receipt details of one partition's messages.
#[derive(Debug, Default)]
pub(super) struct ReceiptBook {
    entries: HashMap<MessageKey, Entry>,
    /// Every distinct report once; a [`ReportId`] indexes it.
    // NOTE: reports are never removed, so a carrier that writes a new err
    // into every receipt grows this table by one entry per receipt.
    reports: Vec<CarrierReport>,
    report_index: HashMap<CarrierReport, ReportId>,
}

impl ReceiptBook {
    /// Returns the id of a report, interning it on first use.
    pub fn intern(&mut self, report: Option<&CarrierReport>) -> ReportId {
        let Some(report) = report.filter(|report| !report.is_empty()) else { return NO_REPORT };
        if let Some(&id) = self.report_index.get(report) {
            return id;
        }
        let id = self.reports.len() as ReportId;
        self.reports.push(report.clone());
        self.report_index.insert(report.clone(), id);
        id
    }

    pub fn report(&self, id: ReportId) -> Option<&CarrierReport> {
        self.reports.get(id as usize)
    }

    /// Orders two reports of one status: earlier first, then the lower error
    /// code, then the raw report (none before any).
    pub fn is_before(&self, candidate: Report, current: Report) -> bool {
        let key = |report: Report| (report.at, report.error_code, self.report(report.report));
        key(candidate) < key(current)
    }

    /// Returns the raw report behind the message's current status.
    pub fn status_report(&self, key: &MessageKey) -> ReportId {
        self.entries.get(key).and_then(|entry| entry.status_report).unwrap_or(NO_REPORT)
    }

    /// Records the raw report behind the message's new current status.
    pub fn set_status_report(&mut self, key: MessageKey, report: ReportId) {
        self.update(key, |entry| entry.status_report = (report != NO_REPORT).then_some(report));
    }

    /// Offers an intermediate or unknown receipt as the progress report.
    pub fn offer_progress(&mut self, key: MessageKey, outcome: ReceiptOutcome, at: i64, report: ReportId) {
        let candidate = Progress { outcome, at, report };
        let current = self.entries.get(&key).and_then(|entry| entry.progress);
        let better = match current {
            None => true,
            Some(current) => {
                // Higher outcome first, then earlier, then the smaller report.
                let rank = |p: &Progress| (std::cmp::Reverse(p.outcome), p.at, self.report(p.report));
                rank(&candidate) < rank(&current)
            }
        };
        if better {
            self.update(key, |entry| entry.progress = Some(candidate));
        }
    }

    /// Records a delivered receipt of one segment, and returns the report of
    /// the whole message's delivery once every segment is delivered.
    pub fn deliver_segment(&mut self, key: MessageKey, segment: Segment, delivered: Report) -> Option<Report> {
        let mut segments = self.entries.get_mut(&key).and_then(|entry| entry.segments.take()).unwrap_or_default();
        if let Err(position) = segments.counts.binary_search(&segment.count) {
            segments.counts.insert(position, segment.count);
        }
        let delivery = Delivery { index: segment.index, at: delivered.at, error_code: delivered.error_code, report: delivered.report };
        match segments.delivered.binary_search_by_key(&segment.index, |d| d.index) {
            Ok(position) => {
                let current = segments.delivered[position];
                let as_report = |d: Delivery| Report { at: d.at, error_code: d.error_code, report: d.report };
                if self.is_before(as_report(delivery), as_report(current)) {
                    segments.delivered[position] = delivery;
                }
            }
            Err(position) => segments.delivered.insert(position, delivery),
        }
        let completion = self.completion(&segments);
        self.update(key, |entry| entry.segments = Some(segments));
        completion
    }

    /// Returns the earliest completion over the reported counts, if any.
    fn completion(&self, segments: &Segments) -> Option<Report> {
        let mut best: Option<Report> = None;
        for &count in &segments.counts {
            // `delivered` is sorted by index and contains each index once.
            let covered = segments.delivered.iter().take_while(|d| d.index < count).count();
            if covered < usize::from(count) {
                continue;
            }
            let last = segments.delivered[..usize::from(count)]
                .iter()
                .map(|d| Report { at: d.at, error_code: d.error_code, report: d.report })
                .reduce(|latest, next| if self.is_before(latest, next) { next } else { latest });
            if let Some(last) = last {
                if best.is_none_or(|best| self.is_before(last, best)) {
                    best = Some(last);
                }
            }
        }
        best
    }

    /// Removes a message's details.
    pub fn remove(&mut self, key: &MessageKey) {
        self.entries.remove(key);
    }

    /// Returns a message's details in their public form.
    pub fn history(&self, key: &MessageKey) -> ReceiptHistory {
        let Some(entry) = self.entries.get(key) else { return ReceiptHistory::default() };
        let report = |id: ReportId| self.report(id).cloned();
        ReceiptHistory {
            status_report: entry.status_report.and_then(report),
            progress: entry.progress.map(|progress| ProgressReport {
                outcome: progress.outcome,
                at: Timestamp::from_millis(progress.at),
                report: report(progress.report).unwrap_or_default(),
            }),
            segment_counts: entry.segments.as_ref().map(|s| s.counts.clone()).unwrap_or_default(),
            delivered_segments: entry
                .segments
                .as_ref()
                .map(|segments| {
                    segments
                        .delivered
                        .iter()
                        .map(|d| SegmentDelivery {
                            index: d.index,
                            at: Timestamp::from_millis(d.at),
                            error_code: d.error_code,
                            report: report(d.report),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Puts a message's details back as `history` describes them.
    pub fn restore(&mut self, key: MessageKey, history: &ReceiptHistory) {
        self.entries.remove(&key);
        if history.is_empty() {
            return;
        }
        let status_report = history.status_report.as_ref().map(|report| self.intern(Some(report)));
        let progress = history.progress.as_ref().map(|progress| Progress {
            outcome: progress.outcome,
            at: progress.at.as_millis(),
            report: self.intern(Some(&progress.report)),
        });
        let mut segments = None;
        if !history.segment_counts.is_empty() || !history.delivered_segments.is_empty() {
            let mut counts = history.segment_counts.clone();
            counts.sort_unstable();
            counts.dedup();
            let mut delivered: Vec<Delivery> = history
                .delivered_segments
                .iter()
                .map(|d| Delivery {
                    index: d.index,
                    at: d.at.as_millis(),
                    error_code: d.error_code,
                    report: self.intern(d.report.as_ref()),
                })
                .collect();
            delivered.sort_by_key(|d| d.index);
            delivered.dedup_by_key(|d| d.index);
            segments = Some(Box::new(Segments { counts, delivered }));
        }
        let entry = Entry { status_report: status_report.filter(|&id| id != NO_REPORT), progress, segments };
        if !entry.is_empty() {
            self.entries.insert(key, entry);
        }
    }

    /// Returns the bytes the details occupy on the heap, roughly: the
    /// entries and the interned reports.
    pub fn heap_bytes(&self) -> usize {
        let report_strings: usize = self
            .reports
            .iter()
            .map(|report| 2 * (report.stat.as_ref().map_or(0, String::capacity) + report.err.as_ref().map_or(0, String::capacity)))
            .sum();
        self.entries.allocation_size()
            + self.reports.capacity() * std::mem::size_of::<CarrierReport>()
            + self.report_index.allocation_size()
            + report_strings
    }

    /// Applies `change` to a message's entry, creating it if needed and
    /// removing it when it ends up empty.
    fn update(&mut self, key: MessageKey, change: impl FnOnce(&mut Entry)) {
        let entry = self.entries.entry(key).or_default();
        change(entry);
        if entry.is_empty() {
            self.entries.remove(&key);
        }
    }
}
