//! `smsfold report CAMPAIGN`: a campaign's status and counts, built by
//! reading the status-change topics from their beginning to their current
//! end.
//!
//! The campaign's status, segments, billable segments, recipients and
//! dispatched count come from its last campaign status change. The counts
//! per message status come from the last change of each of the campaign's
//! messages, because a campaign change is published only when the
//! campaign's status changes and its counts age after that. A message
//! belongs to the campaign named in any of its changes: its first changes
//! lack the campaign id when its receipt arrived before its accepted event.
//!
//! NOTE: a message whose final status arrived before its accepted event has
//! no change that names its campaign, so it cannot be counted here. The
//! report shows the difference to the campaign's own message count as
//! `unattributed_messages`.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{bail, Context};
use comfy_table::{presets, Table};
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use serde::Serialize;
use smsfold_domain::{CampaignStatus, MessageStatus, Timestamp};
use smsfold_wire::{CampaignStatusChange, Counts, Format, MessageStatusChange, CONTENT_TYPE_HEADER};
use smsfold_worker::WorkerConfig;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::warn;

use crate::cli::{ReportArgs, ReportOutput};
use crate::kafka;
use crate::progress::Progress;

/// The statuses a campaign's messages can have (outbound ones), in rank order.
const OUTBOUND: [MessageStatus; 9] = [
    MessageStatus::Accepted,
    MessageStatus::Scheduled,
    MessageStatus::Queued,
    MessageStatus::Sending,
    MessageStatus::Sent,
    MessageStatus::Canceled,
    MessageStatus::Failed,
    MessageStatus::Undelivered,
    MessageStatus::Delivered,
];

pub async fn report(args: &ReportArgs, config: &WorkerConfig) -> anyhow::Result<()> {
    let topics = &config.topics;
    let metadata = kafka::metadata_client(config)?;
    let campaign_partitions = kafka::partition_count(&metadata, &topics.campaign_changes, "topics.campaign_changes")?;
    let message_partitions = kafka::partition_count(&metadata, &topics.message_changes, "topics.message_changes")?;
    let total = kafka::record_count(&metadata, &topics.campaign_changes, campaign_partitions)?
        + kafka::record_count(&metadata, &topics.message_changes, message_partitions)?;

    let mut folded = Folded::new(&args.campaign);
    let mut progress = Progress::new("read", Some(total));
    kafka::read_to_end(config, &topics.campaign_changes, campaign_partitions, &mut progress, |record| {
        folded.apply_campaign_record(record);
    })
    .await?;
    kafka::read_to_end(config, &topics.message_changes, message_partitions, &mut progress, |record| {
        folded.apply_message_record(record);
    })
    .await?;
    progress.finish();

    let report = folded.into_report(args.messages);
    if report.status.is_none() && report.counts.messages == 0 {
        bail!(
            "campaign {:?} not found: no change in topic {:?} or {:?} names it",
            args.campaign,
            topics.campaign_changes,
            topics.message_changes
        );
    }

    let out = match args.output {
        ReportOutput::Table => render_table(&report),
        ReportOutput::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportOutput::Csv => render_csv(&report)?,
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()).context("could not write to stdout")
}

/// The last change of one message.
#[derive(Debug, Clone)]
struct MessageState {
    status: MessageStatus,
    at: Timestamp,
    error_code: u32,
    /// The raw stat and err of the SMPP receipt behind the status, if any.
    receipt_stat: Option<String>,
    receipt_err: Option<String>,
    /// True once a change named the reported campaign.
    in_campaign: bool,
}

/// The changes read so far, folded.
struct Folded {
    campaign_id: String,
    campaign: Option<CampaignStatusChange<'static>>,
    /// Messages of the campaign and messages not yet known to belong to any
    /// campaign; messages of other campaigns are dropped.
    ///
    /// NOTE: memory grows with the messages outside every campaign (one-off
    /// and inbound), because any of them could still turn out to belong to
    /// the campaign.
    messages: HashMap<String, MessageState>,
}

impl Folded {
    fn new(campaign_id: &str) -> Self {
        Folded { campaign_id: campaign_id.to_owned(), campaign: None, messages: HashMap::new() }
    }

    fn apply_campaign_record(&mut self, record: &BorrowedMessage<'_>) {
        let change = match decode(record, CampaignStatusChange::decode) {
            Ok(change) => change,
            Err(error) => return skip(record, &error),
        };
        if change.campaign_id == self.campaign_id {
            self.campaign = Some(change);
        }
    }

    fn apply_message_record(&mut self, record: &BorrowedMessage<'_>) {
        let change = match decode(record, MessageStatusChange::decode) {
            Ok(change) => change,
            Err(error) => return skip(record, &error),
        };
        self.apply_message_change(&change);
    }

    fn apply_message_change(&mut self, change: &MessageStatusChange<'_>) {
        let names_campaign = match change.campaign_id.as_deref() {
            Some(id) if id == self.campaign_id => true,
            Some(_) => {
                self.messages.remove(change.message_id.as_ref());
                return;
            }
            None => false,
        };
        let in_campaign =
            names_campaign || self.messages.get(change.message_id.as_ref()).is_some_and(|m| m.in_campaign);
        let state = MessageState {
            status: change.status,
            at: change.occurred_at,
            error_code: change.error_code,
            receipt_stat: change.receipt_stat.as_deref().map(str::to_owned),
            receipt_err: change.receipt_err.as_deref().map(str::to_owned),
            in_campaign,
        };
        self.messages.insert(change.message_id.to_string(), state);
    }

    fn into_report(self, with_messages: bool) -> Report {
        let mut members: Vec<(String, MessageState)> =
            self.messages.into_iter().filter(|(_, state)| state.in_campaign).collect();
        members.sort_by(|a, b| a.0.cmp(&b.0));

        let mut by_status = [0u64; 11];
        for (_, state) in &members {
            by_status[state.status.index()] += 1;
        }
        let count = |status: MessageStatus| by_status[status.index()];
        let messages = members.len() as u64;
        let outcomes =
            count(MessageStatus::Delivered) + count(MessageStatus::Undelivered) + count(MessageStatus::Failed);
        let published: Option<&Counts> = self.campaign.as_ref().map(|change| &change.counts);

        Report {
            campaign_id: self.campaign_id,
            status: self.campaign.as_ref().map(|change| change.status),
            status_at: self.campaign.as_ref().map(|change| rfc3339(change.occurred_at)),
            counts: ReportCounts {
                accepted: count(MessageStatus::Accepted),
                scheduled: count(MessageStatus::Scheduled),
                queued: count(MessageStatus::Queued),
                sending: count(MessageStatus::Sending),
                sent: count(MessageStatus::Sent),
                canceled: count(MessageStatus::Canceled),
                failed: count(MessageStatus::Failed),
                undelivered: count(MessageStatus::Undelivered),
                delivered: count(MessageStatus::Delivered),
                messages,
                unattributed_messages: published.map_or(0, |counts| counts.messages.saturating_sub(messages)),
                segments: published.map(|counts| counts.segments),
                billable_segments: published.map(|counts| counts.billable_segments),
                recipients: published.and_then(|counts| counts.recipients),
                dispatched: published.and_then(|counts| counts.dispatched),
                delivery_rate: (outcomes > 0).then(|| count(MessageStatus::Delivered) as f64 / outcomes as f64),
            },
            messages: with_messages.then(|| {
                members
                    .into_iter()
                    .map(|(message_id, state)| MessageRow {
                        message_id,
                        status: state.status,
                        status_at: rfc3339(state.at),
                        error_code: state.error_code,
                        receipt_stat: state.receipt_stat,
                        receipt_err: state.receipt_err,
                    })
                    .collect()
            }),
        }
    }
}

fn decode<T>(
    record: &BorrowedMessage<'_>,
    decode: impl Fn(Format, &[u8]) -> Result<T, smsfold_wire::DecodeError>,
) -> anyhow::Result<T> {
    let value = record.payload().unwrap_or_default();
    let format = Format::detect(kafka::header(record, CONTENT_TYPE_HEADER), value)?;
    Ok(decode(format, value)?)
}

fn skip(record: &BorrowedMessage<'_>, error: &anyhow::Error) {
    warn!(
        topic = record.topic(),
        partition = record.partition(),
        offset = record.offset(),
        error = format!("{error:#}"),
        "skipped a record that could not be decoded"
    );
}

/// Formats event time as the published changes do: RFC 3339 in UTC.
fn rfc3339(at: Timestamp) -> String {
    let nanos = i128::from(at.as_millis()) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{} ms since the Unix epoch", at.as_millis()))
}

/// The report, as `--output json` prints it.
#[derive(Debug, Serialize)]
struct Report {
    campaign_id: String,
    /// `None` when no campaign change names the campaign yet.
    #[serde(serialize_with = "serialize_status")]
    status: Option<CampaignStatus>,
    status_at: Option<String>,
    counts: ReportCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<MessageRow>>,
}

#[derive(Debug, Serialize)]
struct ReportCounts {
    accepted: u64,
    scheduled: u64,
    queued: u64,
    sending: u64,
    sent: u64,
    canceled: u64,
    failed: u64,
    undelivered: u64,
    delivered: u64,
    /// Messages with a change that names the campaign.
    messages: u64,
    /// Messages the campaign's last change counts beyond `messages`.
    unattributed_messages: u64,
    segments: Option<u64>,
    billable_segments: Option<u64>,
    recipients: Option<u64>,
    dispatched: Option<u64>,
    delivery_rate: Option<f64>,
}

impl ReportCounts {
    fn count(&self, status: MessageStatus) -> u64 {
        match status {
            MessageStatus::Accepted => self.accepted,
            MessageStatus::Scheduled => self.scheduled,
            MessageStatus::Queued => self.queued,
            MessageStatus::Sending => self.sending,
            MessageStatus::Sent => self.sent,
            MessageStatus::Canceled => self.canceled,
            MessageStatus::Failed => self.failed,
            MessageStatus::Undelivered => self.undelivered,
            MessageStatus::Delivered => self.delivered,
            MessageStatus::Receiving | MessageStatus::Received => 0,
        }
    }
}

#[derive(Debug, Serialize)]
struct MessageRow {
    message_id: String,
    #[serde(serialize_with = "serialize_message_status")]
    status: MessageStatus,
    status_at: String,
    error_code: u32,
    receipt_stat: Option<String>,
    receipt_err: Option<String>,
}

fn serialize_status<S: serde::Serializer>(status: &Option<CampaignStatus>, serializer: S) -> Result<S::Ok, S::Error> {
    match status {
        Some(status) => serializer.serialize_str(status.as_str()),
        None => serializer.serialize_none(),
    }
}

fn serialize_message_status<S: serde::Serializer>(status: &MessageStatus, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(status.as_str())
}

fn optional(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), |rate| format!("{:.1}%", rate * 100.0))
}

fn new_table() -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table
}

fn render_table(report: &Report) -> String {
    let counts = &report.counts;
    let mut summary = new_table();
    summary.set_header(["Campaign", report.campaign_id.as_str()]);
    summary.add_row(["Status".to_owned(), report.status.map_or("-", CampaignStatus::as_str).to_owned()]);
    summary.add_row(["Status since".to_owned(), report.status_at.clone().unwrap_or_else(|| "-".to_owned())]);
    summary.add_row(["Recipients".to_owned(), optional(counts.recipients)]);
    summary.add_row(["Dispatched".to_owned(), optional(counts.dispatched)]);
    summary.add_row(["Messages".to_owned(), counts.messages.to_string()]);
    if counts.unattributed_messages > 0 {
        summary.add_row(["Unattributed messages".to_owned(), counts.unattributed_messages.to_string()]);
    }
    summary.add_row(["Segments".to_owned(), optional(counts.segments)]);
    summary.add_row(["Billable segments".to_owned(), optional(counts.billable_segments)]);
    summary.add_row(["Delivery rate".to_owned(), percent(counts.delivery_rate)]);

    let mut statuses = new_table();
    statuses.set_header(["Message status", "Messages", "Share"]);
    for status in OUTBOUND {
        let count = counts.count(status);
        let share = (counts.messages > 0).then(|| count as f64 / counts.messages as f64);
        statuses.add_row([status.as_str().to_owned(), count.to_string(), percent(share)]);
    }

    let mut out = format!("{summary}\n{statuses}\n");
    if counts.unattributed_messages > 0 {
        out.push_str(&format!(
            "Note: the counts per status leave out {} of the campaign's {} messages. No status change names the \
             campaign for them, which happens when a message's final status arrives before its accepted event.\n",
            counts.unattributed_messages,
            counts.messages + counts.unattributed_messages,
        ));
    }
    if let Some(messages) = &report.messages {
        let mut details = new_table();
        details.set_header(["Message", "Status", "Since", "Error code", "Receipt stat", "Receipt err"]);
        for message in messages {
            details.add_row([
                message.message_id.clone(),
                message.status.as_str().to_owned(),
                message.status_at.clone(),
                message.error_code.to_string(),
                message.receipt_stat.clone().unwrap_or_else(|| "-".to_owned()),
                message.receipt_err.clone().unwrap_or_else(|| "-".to_owned()),
            ]);
        }
        out.push_str(&format!("{details}\n"));
    }
    out
}

/// Renders the summary as one CSV row, or with `--messages` one row per
/// message.
fn render_csv(report: &Report) -> anyhow::Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    match &report.messages {
        Some(messages) => {
            let header = ["campaign_id", "message_id", "status", "status_at", "error_code", "receipt_stat", "receipt_err"];
            writer.write_record(header)?;
            for message in messages {
                writer.write_record([
                    report.campaign_id.as_str(),
                    &message.message_id,
                    message.status.as_str(),
                    &message.status_at,
                    &message.error_code.to_string(),
                    message.receipt_stat.as_deref().unwrap_or_default(),
                    message.receipt_err.as_deref().unwrap_or_default(),
                ])?;
            }
        }
        None => {
            let counts = &report.counts;
            let mut header = vec!["campaign_id", "status", "status_at"];
            header.extend(OUTBOUND.map(MessageStatus::as_str));
            header.extend([
                "messages",
                "unattributed_messages",
                "segments",
                "billable_segments",
                "recipients",
                "dispatched",
                "delivery_rate",
            ]);
            writer.write_record(&header)?;

            let blank = |value: Option<u64>| value.map(|v| v.to_string()).unwrap_or_default();
            let mut row = vec![
                report.campaign_id.clone(),
                report.status.map(CampaignStatus::as_str).unwrap_or_default().to_owned(),
                report.status_at.clone().unwrap_or_default(),
            ];
            row.extend(OUTBOUND.map(|status| counts.count(status).to_string()));
            row.extend([
                counts.messages.to_string(),
                counts.unattributed_messages.to_string(),
                blank(counts.segments),
                blank(counts.billable_segments),
                blank(counts.recipients),
                blank(counts.dispatched),
                counts.delivery_rate.map(|rate| rate.to_string()).unwrap_or_default(),
            ]);
            writer.write_record(&row)?;
        }
    }
    let bytes = writer.into_inner().map_err(|error| error.into_error())?;
    Ok(String::from_utf8(bytes)?)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn change(
        message_id: &str,
        campaign_id: Option<&str>,
        status: MessageStatus,
        at: i64,
    ) -> MessageStatusChange<'static> {
        MessageStatusChange {
            message_id: Cow::Owned(message_id.to_owned()),
            campaign_id: campaign_id.map(|id| Cow::Owned(id.to_owned())),
            previous: None,
            status,
            occurred_at: Timestamp::from_millis(at),
            cause_event_id: Cow::Borrowed("e"),
            error_code: 0,
            receipt_stat: None,
            receipt_err: None,
        }
    }

    #[test]
    fn message_attributed_by_later_change() {
        let mut folded = Folded::new("c-1");
        folded.apply_message_change(&change("m-1", None, MessageStatus::Sent, 1));
        folded.apply_message_change(&change("m-1", Some("c-1"), MessageStatus::Delivered, 2));
        folded.apply_message_change(&change("m-2", Some("c-1"), MessageStatus::Failed, 3));
        folded.apply_message_change(&change("m-3", Some("c-2"), MessageStatus::Delivered, 4));
        folded.apply_message_change(&change("m-4", None, MessageStatus::Delivered, 5));

        let report = folded.into_report(true);

        assert_eq!(report.counts.messages, 2);
        assert_eq!(report.counts.delivered, 1);
        assert_eq!(report.counts.failed, 1);
        assert_eq!(report.counts.delivery_rate, Some(0.5));
        let ids: Vec<&str> = report.messages.iter().flatten().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids, ["m-1", "m-2"]);
    }

    #[test]
    fn last_change_of_message_counts() {
        let mut folded = Folded::new("c-1");
        folded.apply_message_change(&change("m-1", Some("c-1"), MessageStatus::Sent, 1));
        folded.apply_message_change(&change("m-1", Some("c-1"), MessageStatus::Undelivered, 2));

        let report = folded.into_report(false);

        assert_eq!(report.counts.sent, 0);
        assert_eq!(report.counts.undelivered, 1);
        assert!(report.messages.is_none());
    }

    #[test]
    fn time_formatted_like_changes() {
        assert_eq!(rfc3339(Timestamp::from_millis(1_710_525_604_900)), "2024-03-15T18:00:04.9Z");
        assert_eq!(rfc3339(Timestamp::from_millis(1_710_525_605_000)), "2024-03-15T18:00:05Z");
    }
}
