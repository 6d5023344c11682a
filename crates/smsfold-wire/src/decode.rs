//! Decoding input records into domain events.
//!
//! Both formats go through the same checks: the event id, the message or
//! campaign id and the event time must be present and non-empty, and the
//! kind must be known. Each failure names the field. The one exception to a
//! required message id is a delivery receipt in SMPP form, which may name
//! only the carrier's id.

use prost::Message;
use smsfold_domain::{
    CampaignEvent, CampaignEventKind, Channel, MessageAttributes, MessageEvent, MessageEventKind,
    NetworkErrorCode, ReceiptOutcome, Timestamp,
};

use crate::content_type::Format;
use crate::error::DecodeError;
use crate::json::{JsonCampaignEvent, JsonMessageEvent};
use crate::proto;
use crate::timestamp::{self, JsonTime};

mod receipt;

use receipt::{byte, sent_kind, word, ReceiptFields};

/// Decodes a message event from a record value in `format`.
pub fn decode_message_event(format: Format, value: &[u8]) -> Result<MessageEvent, DecodeError> {
    match format {
        Format::Protobuf => message_from_proto(proto::MessageEvent::decode(value)?),
        Format::Json => message_from_json(serde_json::from_slice(json_object(value)?)?),
    }
}

/// Decodes a campaign event from a record value in `format`.
pub fn decode_campaign_event(format: Format, value: &[u8]) -> Result<CampaignEvent, DecodeError> {
    match format {
        Format::Protobuf => campaign_from_proto(proto::CampaignEvent::decode(value)?),
        Format::Json => campaign_from_json(serde_json::from_slice(json_object(value)?)?),
    }
}

/// Returns the value if it is a JSON object; serde would otherwise also
/// read an array of the fields in declaration order.
fn json_object(value: &[u8]) -> Result<&[u8], DecodeError> {
    match value.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') => Ok(value),
        _ => Err(DecodeError::Json(<serde_json::Error as serde::de::Error>::custom(
            "a JSON event must be one JSON object",
        ))),
    }
}

fn required(value: String, field: &'static str) -> Result<String, DecodeError> {
    if value.is_empty() {
        Err(DecodeError::MissingField(field))
    } else {
        Ok(value)
    }
}

fn required_opt(value: Option<String>, field: &'static str) -> Result<String, DecodeError> {
    required(value.unwrap_or_default(), field)
}

/// Checks that a message event names its message, unless it is a delivery
/// receipt in SMPP form, which may name only the carrier's id.
fn check_message_id(message_id: &str, kind: &MessageEventKind) -> Result<(), DecodeError> {
    if message_id.is_empty() && !matches!(kind, MessageEventKind::SmppReceipt { .. }) {
        return Err(DecodeError::MissingField("message_id"));
    }
    Ok(())
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

fn segments_or_one(segments: u32) -> Result<u16, DecodeError> {
    match segments {
        0 => Ok(1),
        n => u16::try_from(n).map_err(|_| DecodeError::invalid("segments", format!("{n} is above 65535"))),
    }
}

fn channel_from_proto(channel: i32) -> Result<Channel, DecodeError> {
    match proto::Channel::try_from(channel) {
        Ok(proto::Channel::Unspecified | proto::Channel::Sms) => Ok(Channel::Sms),
        Ok(proto::Channel::Mms) => Ok(Channel::Mms),
        Err(_) => Err(DecodeError::invalid("channel", format!("unknown channel number {channel}"))),
    }
}

fn channel_from_json(channel: Option<&str>) -> Result<Channel, DecodeError> {
    match channel {
        None | Some("sms") => Ok(Channel::Sms),
        Some("mms") => Ok(Channel::Mms),
        Some(other) => Err(DecodeError::invalid("channel", format!("{other:?} is not sms or mms"))),
    }
}

fn message_from_proto(event: proto::MessageEvent) -> Result<MessageEvent, DecodeError> {
    use proto::message_event::Kind;

    let event_id = required(event.event_id, "event_id")?;
    let message_id = event.message_id;
    if message_id.is_empty() && !matches!(event.kind, Some(Kind::DeliveryReceipt(_))) {
        return Err(DecodeError::MissingField("message_id"));
    }
    let occurred_at = timestamp::from_proto(event.occurred_at.as_ref(), "occurred_at")?
        .ok_or(DecodeError::MissingField("occurred_at"))?;
    let kind = match event.kind.ok_or_else(|| DecodeError::UnknownKind("none set".to_owned()))? {
        Kind::Accepted(accepted) => MessageEventKind::Accepted {
            send_at: timestamp::from_proto(accepted.send_at.as_ref(), "send_at")?,
            attributes: MessageAttributes {
                campaign_id: Some(accepted.campaign_id).filter(|id| !id.is_empty()),
                account_id: accepted.account_id,
                from: accepted.from,
                to: accepted.to,
                channel: channel_from_proto(accepted.channel)?,
                segments: segments_or_one(accepted.segments)?,
            },
        },
        Kind::Scheduled(scheduled) => MessageEventKind::Scheduled {
            send_at: timestamp::from_proto(scheduled.send_at.as_ref(), "send_at")?,
        },
        Kind::Queued(_) => MessageEventKind::Queued,
        Kind::Sending(_) => MessageEventKind::Sending,
        Kind::Sent(sent) => sent_kind(Some(sent.carrier_message_id), sent.segment_carrier_message_ids)?,
        Kind::Failed(failed) => MessageEventKind::Failed { error_code: failed.error_code },
        Kind::DeliveryReceipt(receipt) => receipt_from_proto(receipt)?,
        Kind::Canceled(_) => MessageEventKind::Canceled,
        Kind::InboundReceiving(inbound) => MessageEventKind::InboundReceiving {
            attributes: inbound_from_proto(inbound.message)?,
        },
        Kind::InboundReceived(inbound) => MessageEventKind::InboundReceived {
            attributes: inbound_from_proto(inbound.message)?,
        },
    };
    check_message_id(&message_id, &kind)?;
    Ok(MessageEvent { event_id, occurred_at, message_id, kind })
}

fn receipt_from_proto(receipt: proto::DeliveryReceipt) -> Result<MessageEventKind, DecodeError> {
    let outcome = match proto::ReceiptOutcome::try_from(receipt.outcome) {
        Ok(proto::ReceiptOutcome::Unspecified) => None,
        Ok(proto::ReceiptOutcome::Delivered) => Some(ReceiptOutcome::Delivered),
        Ok(proto::ReceiptOutcome::Undelivered) => Some(ReceiptOutcome::Undelivered),
        Err(_) => {
            return Err(DecodeError::invalid("outcome", format!("{} is not DELIVERED or UNDELIVERED", receipt.outcome)))
        }
    };
    let network_error_code = match receipt.network_error_code {
        Some(code) => Some(NetworkErrorCode {
            network_type: byte("network_error_code.network_type", code.network_type)?,
            error_code: word("network_error_code.error_code", code.error_code)?,
        }),
        None => None,
    };
    let fields = ReceiptFields {
        outcome,
        error_code: receipt.error_code,
        done_at: timestamp::from_proto(receipt.done_at.as_ref(), "done_at")?,
        receipt_text: non_empty(Some(receipt.receipt_text)),
        receipted_message_id: non_empty(Some(receipt.receipted_message_id)),
        message_state: receipt.message_state.map(|state| byte("message_state", state)).transpose()?,
        network_error_code,
    };
    if fields.outcome.is_none() && !fields.is_smpp() {
        return Err(DecodeError::invalid(
            "outcome",
            "0 is not DELIVERED or UNDELIVERED, and the receipt is not in SMPP form either",
        ));
    }
    fields.into_kind()
}

fn inbound_from_proto(message: Option<proto::InboundMessage>) -> Result<MessageAttributes, DecodeError> {
    let message = message.unwrap_or_default();
    Ok(MessageAttributes {
        campaign_id: None,
        account_id: message.account_id,
        from: message.from,
        to: message.to,
        channel: channel_from_proto(message.channel)?,
        segments: segments_or_one(message.segments)?,
    })
}

fn message_from_json(event: JsonMessageEvent) -> Result<MessageEvent, DecodeError> {
    let event_id = required_opt(event.event_id.clone(), "event_id")?;
    let message_id = event.message_id.clone().unwrap_or_default();
    if message_id.is_empty() && event.kind.as_deref() != Some("delivery_receipt") {
        return Err(DecodeError::MissingField("message_id"));
    }
    let occurred_at = required_time(event.occurred_at.as_ref(), "occurred_at")?;
    let kind_name = event.kind.clone().ok_or(DecodeError::MissingField("kind"))?;
    let attributes = |campaign_id: Option<String>| -> Result<MessageAttributes, DecodeError> {
        Ok(MessageAttributes {
            campaign_id: campaign_id.filter(|id| !id.is_empty()),
            account_id: event.account_id.clone().unwrap_or_default(),
            from: event.from.clone().unwrap_or_default(),
            to: event.to.clone().unwrap_or_default(),
            channel: channel_from_json(event.channel.as_deref())?,
            segments: segments_or_one(u32::from(event.segments.unwrap_or(1)))?,
        })
    };
    let kind = match kind_name.as_str() {
        "accepted" => MessageEventKind::Accepted {
            attributes: attributes(event.campaign_id.clone())?,
            send_at: optional_time(event.send_at.as_ref(), "send_at")?,
        },
        "scheduled" => MessageEventKind::Scheduled {
            send_at: optional_time(event.send_at.as_ref(), "send_at")?,
        },
        "queued" => MessageEventKind::Queued,
        "sending" => MessageEventKind::Sending,
        "sent" => sent_kind(
            event.carrier_message_id.clone(),
            event.segment_carrier_message_ids.clone().unwrap_or_default(),
        )?,
        "failed" => MessageEventKind::Failed { error_code: event.error_code.unwrap_or(0) },
        "delivery_receipt" => receipt_from_json(&event)?,
        "canceled" => MessageEventKind::Canceled,
        "inbound_receiving" => MessageEventKind::InboundReceiving { attributes: attributes(None)? },
        "inbound_received" => MessageEventKind::InboundReceived { attributes: attributes(None)? },
        _ => return Err(DecodeError::UnknownKind(kind_name)),
    };
    check_message_id(&message_id, &kind)?;
    Ok(MessageEvent { event_id, occurred_at, message_id, kind })
}

fn receipt_from_json(event: &JsonMessageEvent) -> Result<MessageEventKind, DecodeError> {
    let outcome = match event.outcome.as_deref() {
        Some("delivered") => Some(ReceiptOutcome::Delivered),
        Some("undelivered") => Some(ReceiptOutcome::Undelivered),
        Some(other) => {
            return Err(DecodeError::invalid("outcome", format!("{other:?} is not delivered or undelivered")))
        }
        None => None,
    };
    let fields = ReceiptFields {
        outcome,
        error_code: event.error_code.unwrap_or(0),
        done_at: optional_time(event.done_at.as_ref(), "done_at")?,
        receipt_text: non_empty(event.receipt_text.clone()),
        receipted_message_id: non_empty(event.receipted_message_id.clone()),
        message_state: event.message_state,
        network_error_code: event.network_error_code.as_ref().map(|code| NetworkErrorCode {
            network_type: code.network_type.unwrap_or(0),
            error_code: code.error_code.unwrap_or(0),
        }),
    };
    fields.into_kind()
}

fn campaign_from_proto(event: proto::CampaignEvent) -> Result<CampaignEvent, DecodeError> {
    use proto::campaign_event::Kind;

    let event_id = required(event.event_id, "event_id")?;
    let campaign_id = required(event.campaign_id, "campaign_id")?;
    let occurred_at = timestamp::from_proto(event.occurred_at.as_ref(), "occurred_at")?
        .ok_or(DecodeError::MissingField("occurred_at"))?;
    let kind = match event.kind.ok_or_else(|| DecodeError::UnknownKind("none set".to_owned()))? {
        Kind::Created(created) => {
            CampaignEventKind::Created { account_id: created.account_id, name: created.name }
        }
        Kind::Scheduled(scheduled) => CampaignEventKind::Scheduled {
            send_at: timestamp::from_proto(scheduled.send_at.as_ref(), "send_at")?
                .ok_or(DecodeError::MissingField("send_at"))?,
        },
        Kind::StartedSending(started) => {
            CampaignEventKind::StartedSending { recipients: started.recipients }
        }
        Kind::Cancelled(_) => CampaignEventKind::Cancelled,
        Kind::DispatchFinished(finished) => {
            CampaignEventKind::DispatchFinished { dispatched: finished.dispatched }
        }
    };
    Ok(CampaignEvent { event_id, occurred_at, campaign_id, kind })
}

fn campaign_from_json(event: JsonCampaignEvent) -> Result<CampaignEvent, DecodeError> {
    let event_id = required_opt(event.event_id, "event_id")?;
    let campaign_id = required_opt(event.campaign_id, "campaign_id")?;
    let occurred_at = required_time(event.occurred_at.as_ref(), "occurred_at")?;
    let kind_name = event.kind.ok_or(DecodeError::MissingField("kind"))?;
    let kind = match kind_name.as_str() {
        "created" => CampaignEventKind::Created {
            account_id: event.account_id.unwrap_or_default(),
            name: event.name.unwrap_or_default(),
        },
        "scheduled" => CampaignEventKind::Scheduled {
            send_at: required_time(event.send_at.as_ref(), "send_at")?,
        },
        "started_sending" => CampaignEventKind::StartedSending {
            recipients: event.recipients.ok_or(DecodeError::MissingField("recipients"))?,
        },
        "cancelled" => CampaignEventKind::Cancelled,
        "dispatch_finished" => CampaignEventKind::DispatchFinished {
            dispatched: event.dispatched.ok_or(DecodeError::MissingField("dispatched"))?,
        },
        _ => return Err(DecodeError::UnknownKind(kind_name)),
    };
    Ok(CampaignEvent { event_id, occurred_at, campaign_id, kind })
}

fn required_time(time: Option<&JsonTime>, field: &'static str) -> Result<Timestamp, DecodeError> {
    time.ok_or(DecodeError::MissingField(field))?.to_timestamp(field)
}

fn optional_time(time: Option<&JsonTime>, field: &'static str) -> Result<Option<Timestamp>, DecodeError> {
    time.map(|time| time.to_timestamp(field)).transpose()
}

#[cfg(test)]
mod tests;
