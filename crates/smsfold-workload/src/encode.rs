//! Record values for generated events: protobuf (`smsfold.v1.MessageEvent`
//! and `CampaignEvent`) and the flat JSON objects of docs/events.md, which
//! `smsfold produce` reads one per line. The unit tests decode both with
//! smsfold's own decoders and compare the result with the source event.

use prost::Message;
use serde_json::{json, Map, Value};
use smsfold_domain::{
    CampaignEvent, CampaignEventKind, Channel, MessageAttributes, MessageEvent, MessageEventKind, ReceiptOutcome,
    Timestamp,
};
use smsfold_wire::proto::{self, campaign_event, message_event};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::generator::Event;

/// Encodes an event as a protobuf record value.
pub fn protobuf(event: &Event) -> Vec<u8> {
    match event {
        Event::Message(event) => message_proto(event).encode_to_vec(),
        Event::Campaign(event) => campaign_proto(event).encode_to_vec(),
    }
}

/// Encodes an event as one JSON object on one line, without the newline.
pub fn json_line(event: &Event) -> String {
    let value = match event {
        Event::Message(event) => message_json(event),
        Event::Campaign(event) => campaign_json(event),
    };
    value.to_string()
}

fn timestamp(at: Timestamp) -> prost_types::Timestamp {
    let millis = at.as_millis();
    prost_types::Timestamp { seconds: millis.div_euclid(1_000), nanos: (millis.rem_euclid(1_000) * 1_000_000) as i32 }
}

fn channel_proto(channel: Channel) -> i32 {
    match channel {
        Channel::Sms => proto::Channel::Sms as i32,
        Channel::Mms => proto::Channel::Mms as i32,
    }
}

fn inbound_proto(attributes: &MessageAttributes) -> proto::InboundMessage {
    proto::InboundMessage {
        account_id: attributes.account_id.clone(),
        from: attributes.from.clone(),
        to: attributes.to.clone(),
        channel: channel_proto(attributes.channel),
        segments: u32::from(attributes.segments),
    }
}

fn message_proto(event: &MessageEvent) -> proto::MessageEvent {
    let kind = match &event.kind {
        MessageEventKind::Accepted { attributes, send_at } => message_event::Kind::Accepted(proto::MessageAccepted {
            campaign_id: attributes.campaign_id.clone().unwrap_or_default(),
            account_id: attributes.account_id.clone(),
            from: attributes.from.clone(),
            to: attributes.to.clone(),
            channel: channel_proto(attributes.channel),
            segments: u32::from(attributes.segments),
            send_at: send_at.map(timestamp),
        }),
        MessageEventKind::Scheduled { send_at } => {
            message_event::Kind::Scheduled(proto::MessageScheduled { send_at: send_at.map(timestamp) })
        }
        MessageEventKind::Queued => message_event::Kind::Queued(proto::MessageQueued {}),
        MessageEventKind::Sending => message_event::Kind::Sending(proto::MessageSending {}),
        MessageEventKind::Sent { carrier_message_ids } => message_event::Kind::Sent(proto::MessageSent {
            carrier_message_id: carrier_message_ids.first().cloned().unwrap_or_default(),
            segment_carrier_message_ids: if carrier_message_ids.len() > 1 { carrier_message_ids.clone() } else { Vec::new() },
        }),
        MessageEventKind::Failed { error_code } => {
            message_event::Kind::Failed(proto::MessageFailed { error_code: *error_code })
        }
        MessageEventKind::DeliveryReceipt { outcome, error_code, done_at, .. } => {
            message_event::Kind::DeliveryReceipt(proto::DeliveryReceipt {
                outcome: match outcome {
                    ReceiptOutcome::Delivered => proto::ReceiptOutcome::Delivered as i32,
                    ReceiptOutcome::Undelivered => proto::ReceiptOutcome::Undelivered as i32,
                    // The generator decides every receipt; an undecided one
                    // has no decided-outcome form and is sent unspecified.
                    ReceiptOutcome::Intermediate | ReceiptOutcome::Unknown => {
                        proto::ReceiptOutcome::Unspecified as i32
                    }
                },
                error_code: *error_code,
                done_at: done_at.map(timestamp),
                ..Default::default()
            })
        }
        MessageEventKind::SmppReceipt { receipt, error_code, done_at } => {
            message_event::Kind::DeliveryReceipt(proto::DeliveryReceipt {
                outcome: proto::ReceiptOutcome::Unspecified as i32,
                error_code: *error_code,
                done_at: done_at.map(timestamp),
                receipt_text: receipt.text.clone().unwrap_or_default(),
                receipted_message_id: receipt.receipted_message_id.clone().unwrap_or_default(),
                message_state: receipt.message_state.map(u32::from),
                network_error_code: receipt.network_error_code.map(|code| proto::NetworkErrorCode {
                    network_type: u32::from(code.network_type),
                    error_code: u32::from(code.error_code),
                }),
            })
        }
        MessageEventKind::Canceled => message_event::Kind::Canceled(proto::MessageCanceled {}),
        MessageEventKind::InboundReceiving { attributes } => {
            message_event::Kind::InboundReceiving(proto::InboundReceiving { message: Some(inbound_proto(attributes)) })
        }
        MessageEventKind::InboundReceived { attributes } => {
            message_event::Kind::InboundReceived(proto::InboundReceived { message: Some(inbound_proto(attributes)) })
        }
    };
    proto::MessageEvent {
        event_id: event.event_id.clone(),
        occurred_at: Some(timestamp(event.occurred_at)),
        message_id: event.message_id.clone(),
        kind: Some(kind),
    }
}

fn campaign_proto(event: &CampaignEvent) -> proto::CampaignEvent {
    let kind = match &event.kind {
        CampaignEventKind::Created { account_id, name } => {
            campaign_event::Kind::Created(proto::CampaignCreated { account_id: account_id.clone(), name: name.clone() })
        }
        CampaignEventKind::Scheduled { send_at } => {
            campaign_event::Kind::Scheduled(proto::CampaignScheduled { send_at: Some(timestamp(*send_at)) })
        }
        CampaignEventKind::StartedSending { recipients } => {
            campaign_event::Kind::StartedSending(proto::CampaignStartedSending { recipients: *recipients })
        }
        CampaignEventKind::Cancelled => campaign_event::Kind::Cancelled(proto::CampaignCancelled {}),
        CampaignEventKind::DispatchFinished { dispatched } => {
            campaign_event::Kind::DispatchFinished(proto::CampaignDispatchFinished { dispatched: *dispatched })
        }
    };
    proto::CampaignEvent {
        event_id: event.event_id.clone(),
        occurred_at: Some(timestamp(event.occurred_at)),
        campaign_id: event.campaign_id.clone(),
        kind: Some(kind),
    }
}

/// Formats an event time as RFC 3339 in UTC with milliseconds.
fn rfc3339(at: Timestamp) -> Value {
    let nanos = i128::from(at.as_millis()) * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos).ok().and_then(|time| time.format(&Rfc3339).ok()) {
        Some(text) => Value::String(text),
        // Outside the years 1 to 9999: JSON also takes integer milliseconds.
        None => json!(at.as_millis()),
    }
}

fn attributes_json(fields: &mut Map<String, Value>, attributes: &MessageAttributes) {
    fields.insert("account_id".into(), json!(attributes.account_id));
    fields.insert("from".into(), json!(attributes.from));
    fields.insert("to".into(), json!(attributes.to));
    fields.insert("channel".into(), json!(attributes.channel.as_str()));
    fields.insert("segments".into(), json!(attributes.segments));
}

fn message_json(event: &MessageEvent) -> Value {
    let mut fields = Map::new();
    fields.insert("event_id".into(), json!(event.event_id));
    fields.insert("occurred_at".into(), rfc3339(event.occurred_at));
    fields.insert("message_id".into(), json!(event.message_id));
    fields.insert("kind".into(), json!(event.kind.name()));
    match &event.kind {
        MessageEventKind::Accepted { attributes, send_at } => {
            if let Some(campaign_id) = &attributes.campaign_id {
                fields.insert("campaign_id".into(), json!(campaign_id));
            }
            attributes_json(&mut fields, attributes);
            if let Some(send_at) = send_at {
                fields.insert("send_at".into(), rfc3339(*send_at));
            }
        }
        MessageEventKind::Scheduled { send_at } => {
            if let Some(send_at) = send_at {
                fields.insert("send_at".into(), rfc3339(*send_at));
            }
        }
        MessageEventKind::Queued | MessageEventKind::Sending | MessageEventKind::Canceled => {}
        MessageEventKind::Sent { carrier_message_ids } => match carrier_message_ids.as_slice() {
            [] => {}
            [carrier_message_id] => {
                fields.insert("carrier_message_id".into(), json!(carrier_message_id));
            }
            ids => {
                fields.insert("segment_carrier_message_ids".into(), json!(ids));
            }
        },
        MessageEventKind::SmppReceipt { receipt, error_code, done_at } => {
            fields.insert("error_code".into(), json!(error_code));
            if let Some(done_at) = done_at {
                fields.insert("done_at".into(), rfc3339(*done_at));
            }
            if let Some(text) = &receipt.text {
                fields.insert("receipt_text".into(), json!(text));
            }
            if let Some(id) = &receipt.receipted_message_id {
                fields.insert("receipted_message_id".into(), json!(id));
            }
            if let Some(state) = receipt.message_state {
                fields.insert("message_state".into(), json!(state));
            }
            if let Some(code) = receipt.network_error_code {
                fields.insert(
                    "network_error_code".into(),
                    json!({"network_type": code.network_type, "error_code": code.error_code}),
                );
            }
        }
        MessageEventKind::Failed { error_code } => {
            fields.insert("error_code".into(), json!(error_code));
        }
        MessageEventKind::DeliveryReceipt { outcome, error_code, done_at, .. } => {
            let outcome = match outcome {
                ReceiptOutcome::Delivered => "delivered",
                ReceiptOutcome::Undelivered => "undelivered",
                ReceiptOutcome::Intermediate => "intermediate",
                ReceiptOutcome::Unknown => "unknown",
            };
            fields.insert("outcome".into(), json!(outcome));
            fields.insert("error_code".into(), json!(error_code));
            if let Some(done_at) = done_at {
                fields.insert("done_at".into(), rfc3339(*done_at));
            }
        }
        MessageEventKind::InboundReceiving { attributes } | MessageEventKind::InboundReceived { attributes } => {
            attributes_json(&mut fields, attributes);
        }
    }
    Value::Object(fields)
}

fn campaign_json(event: &CampaignEvent) -> Value {
    let mut fields = Map::new();
    fields.insert("event_id".into(), json!(event.event_id));
    fields.insert("occurred_at".into(), rfc3339(event.occurred_at));
    fields.insert("campaign_id".into(), json!(event.campaign_id));
    // The domain names campaign kinds `campaign_created` and so on; the
    // JSON kind is the protobuf field name.
    let kind = match &event.kind {
        CampaignEventKind::Created { account_id, name } => {
            fields.insert("account_id".into(), json!(account_id));
            fields.insert("name".into(), json!(name));
            "created"
        }
        CampaignEventKind::Scheduled { send_at } => {
            fields.insert("send_at".into(), rfc3339(*send_at));
            "scheduled"
        }
        CampaignEventKind::StartedSending { recipients } => {
            fields.insert("recipients".into(), json!(recipients));
            "started_sending"
        }
        CampaignEventKind::Cancelled => "cancelled",
        CampaignEventKind::DispatchFinished { dispatched } => {
            fields.insert("dispatched".into(), json!(dispatched));
            "dispatch_finished"
        }
    };
    fields.insert("kind".into(), json!(kind));
    Value::Object(fields)
}
