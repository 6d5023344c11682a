//! The fairness check: smsfold and the Kafka Streams application fold the
//! same input, and their outputs must agree.
//!
//! Compared, because both folds make them deterministic for one input:
//! - every message's sequence of status changes, record for record
//!   (message id, campaign id, previous status, status, event time, cause
//!   event id, error code). A message's events all sit in one input
//!   partition, so both systems read them in the same order;
//! - every campaign's sequence of (previous status, status);
//! - every campaign's final projection: status, recipients, dispatched, the
//!   messages per status, segments and billable segments, read from each
//!   system's `GET /campaigns`, and checked against a pure fold of the input
//!   by smsfold's domain crate as well.
//!
//! Not compared: the counts and the time published with a campaign's
//! completion, and its cause event. The message updates of one campaign
//! reach the campaign stage from six partitions, interleaved by when each
//! batch or task commits. So the message that completes the campaign, and
//! the counts at that moment, can differ between two runs of one system.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use smsfold_domain::MessageStatus;
use smsfold_wire::{CampaignStatusChange, Format, MessageStatusChange};

use crate::support::child;
use crate::support::kafka::Kafka;
use crate::systems::Running;
use crate::traffic::{self, CampaignSummary, Expected};

/// A message status change as compared.
type MessageRow = (Option<String>, Option<MessageStatus>, MessageStatus, i64, String, u32);
/// A campaign status change as compared.
type CampaignRow = (Option<&'static str>, &'static str);

/// The records one system published, and its campaign projections at the end.
pub struct Outputs {
    pub message_changes: BTreeMap<String, Vec<MessageRow>>,
    pub message_change_count: u64,
    pub campaign_changes: BTreeMap<String, Vec<CampaignRow>>,
    pub campaigns: BTreeMap<String, CampaignSummary>,
}

/// Reads a folding system's outputs and its campaign projections.
pub fn outputs(kafka: &Kafka, running: &Running) -> anyhow::Result<Outputs> {
    let mut message_changes: BTreeMap<String, Vec<MessageRow>> = BTreeMap::new();
    let mut message_change_count = 0;
    for read in traffic::read_all(kafka, &running.latency_topic)? {
        let change = MessageStatusChange::decode(Format::Protobuf, &read.value)
            .with_context(|| format!("an invalid message status change of {} in partition {}", running.system.name(), read.partition))?;
        message_change_count += 1;
        message_changes.entry(change.message_id.to_string()).or_default().push((
            change.campaign_id.map(|id| id.to_string()),
            change.previous,
            change.status,
            change.occurred_at.as_millis(),
            change.cause_event_id.to_string(),
            change.error_code,
        ));
    }

    let mut campaign_changes: BTreeMap<String, Vec<CampaignRow>> = BTreeMap::new();
    let topic = running.campaign_changes.as_deref().context("the pipe publishes no campaign changes")?;
    for read in traffic::read_all(kafka, topic)? {
        let change = CampaignStatusChange::decode(Format::Protobuf, &read.value)
            .with_context(|| format!("an invalid campaign status change of {}", running.system.name()))?;
        let row = (change.previous.map(|status| status.as_str()), change.status.as_str());
        campaign_changes.entry(change.campaign_id.to_string()).or_default().push(row);
    }

    let http = running.http.context("the system serves no HTTP endpoint")?;
    let (status, body) = child::http_get(http, "/campaigns")?;
    if status != 200 {
        bail!("GET /campaigns of {} returned {status}: {body}", running.system.name());
    }
    Ok(Outputs { message_changes, message_change_count, campaign_changes, campaigns: campaign_summaries(&body)? })
}

/// Parses the campaigns of a `GET /campaigns` body.
fn campaign_summaries(body: &str) -> anyhow::Result<BTreeMap<String, CampaignSummary>> {
    let value: serde_json::Value = serde_json::from_str(body).context("GET /campaigns returned invalid JSON")?;
    let list = value["campaigns"].as_array().context("GET /campaigns returned no campaigns array")?;
    let mut campaigns = BTreeMap::new();
    for campaign in list {
        let id = campaign["campaign_id"].as_str().context("a campaign without campaign_id")?.to_owned();
        let number = |field: &str| campaign[field].as_u64();
        let summary = CampaignSummary {
            status: campaign["status"].as_str().map(str::to_owned),
            recipients: number("recipients"),
            dispatched: number("dispatched"),
            messages: number("messages").unwrap_or(0),
            segments: number("segments").unwrap_or(0),
            billable_segments: number("billable_segments").unwrap_or(0),
            by_status: MessageStatus::ALL.iter().map(|status| campaign["by_status"][status.as_str()].as_u64().unwrap_or(0)).collect(),
        };
        campaigns.insert(id, summary);
    }
    Ok(campaigns)
}

/// Compares two systems' outputs, and smsfold's with the pure fold; returns
/// the lines to print, or an error naming the first differences.
pub fn compare(expected: &Expected, smsfold: &Outputs, streams: &Outputs) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    if smsfold.message_change_count != expected.message_changes {
        problems.push(format!(
            "smsfold published {} message status changes, the pure fold {}",
            smsfold.message_change_count, expected.message_changes
        ));
    }
    if smsfold.campaigns != expected.campaigns {
        problems.push(format!("smsfold's final campaigns differ from the pure fold: {}", first_difference(&expected.campaigns, &smsfold.campaigns)));
    }
    if streams.message_changes != smsfold.message_changes {
        problems.push(format!("message status changes differ: {}", first_difference(&smsfold.message_changes, &streams.message_changes)));
    }
    if streams.campaign_changes != smsfold.campaign_changes {
        problems.push(format!("campaign status sequences differ: {}", first_difference(&smsfold.campaign_changes, &streams.campaign_changes)));
    }
    if streams.campaigns != smsfold.campaigns {
        problems.push(format!("final campaigns differ: {}", first_difference(&smsfold.campaigns, &streams.campaigns)));
    }
    if !problems.is_empty() {
        bail!("the outputs differ (smsfold first, Kafka Streams second):\n  {}", problems.join("\n  "));
    }
    let campaign_changes: usize = smsfold.campaign_changes.values().map(Vec::len).sum();
    Ok(vec![
        format!(
            "   identical: {} message status changes of {} messages, {} campaign status changes and the final projections of {} campaigns",
            smsfold.message_change_count,
            smsfold.message_changes.len(),
            campaign_changes,
            smsfold.campaigns.len()
        ),
        format!("   smsfold also matches a pure fold of the input: {} message status changes, {} final campaigns", expected.message_changes, expected.campaigns.len()),
    ])
}

/// Describes the first key whose values differ, or that only one side has.
fn first_difference<V: PartialEq + std::fmt::Debug>(left: &BTreeMap<String, V>, right: &BTreeMap<String, V>) -> String {
    let differing = left.iter().find(|(key, value)| right.get(*key) != Some(*value));
    if let Some((key, value)) = differing {
        return format!("{key}: {value:?} against {:?} ({} and {} keys)", right.get(key), left.len(), right.len());
    }
    match right.keys().find(|key| !left.contains_key(*key)) {
        Some(key) => format!("{key} only in the second ({} and {} keys)", left.len(), right.len()),
        None => "no single key differs".to_owned(),
    }
}
