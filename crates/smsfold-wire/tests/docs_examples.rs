//! Checks that every JSON example in docs/events.md decodes, so the event
//! contract page cannot drift from the decoders.
//!
//! Each ```json block must be one of:
//! - a message event (it has `message_id` and `kind`, or is a delivery
//!   receipt, which in SMPP form may leave out `message_id`),
//! - a campaign event (it has `campaign_id` and `kind` but no `message_id`),
//! - the campaign status change (it has `counts`),
//! - a message status change (it has `status` but no `counts`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use smsfold_domain::MessageEventKind;
use smsfold_wire::{
    decode_campaign_event, decode_message_event, CampaignStatusChange, Format, MessageStatusChange,
};

/// The message event kinds the docs must show, one example each.
const MESSAGE_KINDS: [&str; 10] = MessageEventKind::NAMES;

const CAMPAIGN_KINDS: [&str; 5] = ["created", "scheduled", "started_sending", "cancelled", "dispatch_finished"];

/// One ```json block: the line its text starts on (1-based) and the text.
struct Block {
    line: usize,
    text: String,
}

fn read_doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.md");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()))
}

/// Extracts the fenced blocks whose info string is `json`.
fn json_blocks(doc: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for (index, line) in doc.lines().enumerate() {
        let fence = line.trim_start();
        match current.take() {
            None => {
                if fence.starts_with("```") && fence.trim_start_matches('`').trim() == "json" {
                    current = Some(Block { line: index + 2, text: String::new() });
                }
            }
            Some(mut block) => {
                if fence.starts_with("```") {
                    blocks.push(block);
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                    current = Some(block);
                }
            }
        }
    }
    assert!(current.is_none(), "docs/events.md ends inside a ```json block");
    blocks
}

/// Returns the example's `kind`, which must be a string.
fn kind_of(value: &Value, line: usize) -> String {
    match &value["kind"] {
        Value::String(kind) => kind.clone(),
        other => panic!("example at docs/events.md line {line}: kind is {other}, expected a string"),
    }
}

#[test]
fn doc_json_examples_decode() {
    let doc = read_doc();
    let mut message_kinds = BTreeSet::new();
    let mut campaign_kinds = BTreeSet::new();
    let mut input_examples = 0;
    let mut message_changes = 0;
    let mut campaign_changes = 0;

    for Block { line, text } in json_blocks(&doc) {
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("example at docs/events.md line {line} is not JSON: {error}"));
        assert!(value.is_object(), "example at docs/events.md line {line} is not a JSON object");
        let bytes = text.as_bytes();

        if value.get("counts").is_some() {
            let change = CampaignStatusChange::decode(Format::Json, bytes)
                .unwrap_or_else(|error| panic!("campaign change at line {line} failed to decode: {error}"));
            assert_reencodes_same(&value, line, |buf| change.encode(Format::Json, buf));
            campaign_changes += 1;
        } else if value.get("status").is_some() {
            let change = MessageStatusChange::decode(Format::Json, bytes)
                .unwrap_or_else(|error| panic!("message change at line {line} failed to decode: {error}"));
            assert_reencodes_same(&value, line, |buf| change.encode(Format::Json, buf));
            message_changes += 1;
        } else if value.get("message_id").is_some() || value["kind"] == "delivery_receipt" {
            let kind = kind_of(&value, line);
            assert!(MESSAGE_KINDS.contains(&kind.as_str()), "line {line}: {kind:?} is not a message kind");
            let event = decode_message_event(Format::Json, bytes)
                .unwrap_or_else(|error| panic!("message event at line {line} failed to decode: {error}"));
            assert_eq!(event.kind.name(), kind, "line {line}: decoded kind");
            message_kinds.insert(kind);
            input_examples += 1;
        } else if value.get("campaign_id").is_some() {
            let kind = kind_of(&value, line);
            assert!(CAMPAIGN_KINDS.contains(&kind.as_str()), "line {line}: {kind:?} is not a campaign kind");
            let event = decode_campaign_event(Format::Json, bytes)
                .unwrap_or_else(|error| panic!("campaign event at line {line} failed to decode: {error}"));
            // The domain names campaign kinds with a `campaign_` prefix.
            assert_eq!(event.kind.name(), format!("campaign_{kind}"), "line {line}: decoded kind");
            campaign_kinds.insert(kind);
            input_examples += 1;
        } else {
            panic!(
                "example at docs/events.md line {line} is neither an event (message_id or campaign_id) \
                 nor a status change (status or counts)"
            );
        }
    }

    assert!(input_examples >= 15, "docs/events.md has {input_examples} input examples, expected at least 15");
    let missing_messages: Vec<_> = MESSAGE_KINDS.iter().filter(|kind| !message_kinds.contains(**kind)).collect();
    assert!(missing_messages.is_empty(), "docs/events.md has no example of message kinds {missing_messages:?}");
    let missing_campaigns: Vec<_> = CAMPAIGN_KINDS.iter().filter(|kind| !campaign_kinds.contains(**kind)).collect();
    assert!(missing_campaigns.is_empty(), "docs/events.md has no example of campaign kinds {missing_campaigns:?}");
    assert_eq!(message_changes, 2, "message status change examples in docs/events.md");
    assert_eq!(campaign_changes, 1, "campaign status change examples in docs/events.md");
}

/// Checks that the documented change equals what smsfold writes for it, with
/// every field present and times and numbers in the published form.
fn assert_reencodes_same(documented: &Value, line: usize, encode: impl FnOnce(&mut Vec<u8>)) {
    let mut buf = Vec::new();
    encode(&mut buf);
    let written: Value = serde_json::from_slice(&buf).expect("smsfold writes valid JSON");
    assert_eq!(&written, documented, "line {line}: smsfold writes this change differently");
}

#[test]
fn json_blocks_are_extracted() {
    let doc = "text\n```json\n{\"a\": 1}\n```\n```rust\nfn f() {}\n```\n  ```json\n[]\n  ```\n";
    let blocks = json_blocks(doc);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].line, 3);
    assert_eq!(blocks[0].text, "{\"a\": 1}\n");
    assert_eq!(blocks[1].line, 9);
    assert_eq!(blocks[1].text, "[]\n");
}
