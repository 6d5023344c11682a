// Validates docs/asyncapi.yaml and checks it against the rest of the
// repository. Run by scripts/check-contract.sh as `node check-asyncapi.mjs`
// from this folder.
//
// 1. @asyncapi/parser validates the document against the AsyncAPI 3
//    specification, including the Kafka bindings.
// 2. Ajv compiles every JSON payload schema and checks: the JSON examples of
//    docs/events.md and of the document itself, the demo's events
//    (deploy/demo/events.sh), and payloads smsfold rejects, which must fail.
// 3. The names the document repeats are compared with their sources: topic
//    defaults (crates/smsfold-worker/src/config.rs), dead-letter headers
//    (crates/smsfold-worker/src/dead_letter.rs) and reasons
//    (docs/events.md), event kinds (the oneof fields of the .proto files),
//    and every protobuf message the document names.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Parser } from "@asyncapi/parser";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import yaml from "js-yaml";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const documentPath = join(root, "docs", "asyncapi.yaml");
const failures = [];

function fail(message) {
  failures.push(message);
}

function read(relative) {
  return readFileSync(join(root, relative), "utf8");
}

function sameSet(where, actual, expected) {
  const missing = [...expected].filter((name) => !actual.has(name));
  const extra = [...actual].filter((name) => !expected.has(name));
  if (missing.length > 0 || extra.length > 0) {
    fail(`${where}: missing ${JSON.stringify(missing)}, not expected ${JSON.stringify(extra)}`);
  }
}

// 1. The AsyncAPI parser's own validation.
const text = readFileSync(documentPath, "utf8");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text, { source: documentPath });
for (const diagnostic of diagnostics) {
  // Severity 0 is an error and 1 a warning. Severities 2 and 3 are hints.
  const where = diagnostic.path.join(".");
  if (diagnostic.severity === 0) {
    fail(`asyncapi: ${diagnostic.message} at ${where}`);
  } else if (diagnostic.severity === 1) {
    console.log(`asyncapi warning: ${diagnostic.message} at ${where}`);
  }
}
if (document === undefined) {
  console.error(failures.join("\n"));
  console.error("docs/asyncapi.yaml is not a valid AsyncAPI document");
  process.exit(1);
}
console.log(`asyncapi: ${document.version()} document with ${document.channels().length} channels and ${document.messages().length} messages`);

// 2. The JSON payload schemas, compiled by Ajv (JSON Schema draft-07, which
// AsyncAPI schemas extend).
const raw = yaml.load(text);
const definitions = JSON.parse(JSON.stringify(raw.components.schemas).replaceAll("#/components/schemas/", "#/definitions/"));
const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: "contract", definitions });
const validators = {};
for (const name of ["MessageEventJson", "CampaignEventJson", "MessageStatusChangedJson", "CampaignStatusChangedJson", "DeadLetterHeaders", "JsonOutputHeaders"]) {
  validators[name] = ajv.getSchema(`contract#/definitions/${name}`);
  if (validators[name] === undefined) {
    fail(`asyncapi: components.schemas.${name} is missing`);
  }
}

function validate(where, schemaName, value) {
  const check = validators[schemaName];
  if (check !== undefined && !check(value)) {
    fail(`${where} does not match ${schemaName}: ${ajv.errorsText(check.errors)}`);
  }
}

function reject(where, schemaName, value) {
  const check = validators[schemaName];
  if (check !== undefined && check(value)) {
    fail(`${where} matches ${schemaName}, but smsfold dead-letters it`);
  }
}

// The JSON examples of docs/events.md, sorted as crates/smsfold-wire/tests/docs_examples.rs sorts them.
const eventsDoc = read("docs/events.md");
const blocks = [...eventsDoc.matchAll(/```json\n([\s\S]*?)```/g)].map((match) => JSON.parse(match[1]));
for (const [index, example] of blocks.entries()) {
  const where = `docs/events.md JSON example ${index + 1}`;
  if ("counts" in example) {
    validate(where, "CampaignStatusChangedJson", example);
  } else if ("kind" in example && ("message_id" in example || example.kind === "delivery_receipt")) {
    validate(where, "MessageEventJson", example);
  } else if ("kind" in example) {
    validate(where, "CampaignEventJson", example);
  } else {
    validate(where, "MessageStatusChangedJson", example);
  }
}
console.log(`asyncapi: checked ${blocks.length} JSON examples of docs/events.md`);

// The document's own message examples.
const payloadSchemas = {
  MessageEventJson: "MessageEventJson",
  CampaignEventJson: "CampaignEventJson",
  MessageStatusChangedJson: "MessageStatusChangedJson",
  CampaignStatusChangedJson: "CampaignStatusChangedJson",
};
for (const [name, message] of Object.entries(raw.components.messages)) {
  for (const example of message.examples ?? []) {
    const where = `asyncapi example ${name}/${example.name}`;
    if (payloadSchemas[name] !== undefined) {
      validate(where, payloadSchemas[name], example.payload);
      validate(`${where} headers`, "JsonOutputHeaders", example.headers);
    }
    if (name === "DeadLetter") {
      validate(`${where} headers`, "DeadLetterHeaders", example.headers);
    }
  }
}

// The demo's events: every record that is valid JSON matches its schema, and
// exactly one is not valid JSON.
for (const [topic, schemaName] of [["message-events", "MessageEventJson"], ["campaign-events", "CampaignEventJson"]]) {
  const lines = execFileSync("sh", [join(root, "deploy", "demo", "events.sh"), topic], { encoding: "utf8" }).trim().split("\n");
  let invalidJson = 0;
  for (const [index, line] of lines.entries()) {
    const value = line.split("\t")[2];
    let event;
    try {
      event = JSON.parse(value);
    } catch {
      invalidJson += 1;
      continue;
    }
    validate(`deploy/demo/events.sh ${topic} line ${index + 1}`, schemaName, event);
  }
  const expected = topic === "message-events" ? 1 : 0;
  if (invalidJson !== expected) {
    fail(`deploy/demo/events.sh ${topic}: ${invalidJson} records are not valid JSON, expected ${expected}`);
  }
  console.log(`asyncapi: checked ${lines.length} demo records of ${topic}`);
}

// Payloads smsfold dead-letters must not match the schemas.
const base = { event_id: "e-1", occurred_at: 1710525600000, message_id: "m-1" };
const campaignBase = { event_id: "c-1", occurred_at: "2024-03-15T18:00:00Z", campaign_id: "cmp-1" };
const rejected = [
  ["receipt without outcome (missing_field)", "MessageEventJson", { ...base, kind: "delivery_receipt" }],
  ["receipt with outcome null (missing_field)", "MessageEventJson", { ...base, kind: "delivery_receipt", outcome: null }],
  ["outcome unknown (invalid_value)", "MessageEventJson", { ...base, kind: "delivery_receipt", outcome: "lost" }],
  ["outcome and receipt text together (invalid_value)", "MessageEventJson", { ...base, kind: "delivery_receipt", outcome: "delivered", receipt_text: "id:55 stat:DELIVRD" }],
  ["decided receipt without message_id (missing_field)", "MessageEventJson", { event_id: "e-1", occurred_at: 1, kind: "delivery_receipt", outcome: "delivered" }],
  ["sent without message_id (missing_field)", "MessageEventJson", { event_id: "e-1", occurred_at: 1, kind: "sent" }],
  ["message_state above 255 (invalid_json)", "MessageEventJson", { ...base, kind: "delivery_receipt", receipted_message_id: "55", message_state: 256 }],
  ["empty segment carrier id (invalid_value)", "MessageEventJson", { ...base, kind: "sent", segment_carrier_message_ids: ["7A01", ""] }],
  ["carrier id over 64 bytes (invalid_value)", "MessageEventJson", { ...base, kind: "sent", carrier_message_id: "7".repeat(65) }],
  ["segments above 65535 (invalid_json)", "MessageEventJson", { ...base, kind: "accepted", segments: 65536 }],
  ["segments as a string (invalid_json)", "MessageEventJson", { ...base, kind: "accepted", segments: "2" }],
  ["segments on another kind as a string (invalid_json)", "MessageEventJson", { ...base, kind: "queued", segments: "2" }],
  ["channel sms2 (invalid_value)", "MessageEventJson", { ...base, kind: "accepted", channel: "sms2" }],
  ["empty message_id (missing_field)", "MessageEventJson", { ...base, message_id: "", kind: "queued" }],
  ["no kind (missing_field)", "MessageEventJson", { ...base }],
  ["campaign kind on the message topic (unknown_kind)", "MessageEventJson", { ...base, kind: "cancelled" }],
  ["time as a boolean (invalid_json)", "MessageEventJson", { ...base, occurred_at: true, kind: "queued" }],
  ["time not RFC 3339 (invalid_value)", "MessageEventJson", { ...base, occurred_at: "yesterday", kind: "queued" }],
  ["scheduled campaign without send_at (missing_field)", "CampaignEventJson", { ...campaignBase, kind: "scheduled" }],
  ["started_sending without recipients (missing_field)", "CampaignEventJson", { ...campaignBase, kind: "started_sending" }],
  ["dispatch_finished with dispatched null (missing_field)", "CampaignEventJson", { ...campaignBase, kind: "dispatch_finished", dispatched: null }],
  ["message kind on the campaign topic (unknown_kind)", "CampaignEventJson", { ...campaignBase, kind: "canceled" }],
  ["negative recipients (invalid_json)", "CampaignEventJson", { ...campaignBase, kind: "started_sending", recipients: -1 }],
];
for (const [name, schemaName, payload] of rejected) {
  reject(`rejected case "${name}"`, schemaName, payload);
}
console.log(`asyncapi: checked ${rejected.length} payloads smsfold dead-letters`);

// 3. Names the document repeats.
const config = read("crates/smsfold-worker/src/config.rs");
const defaults = Object.fromEntries([...config.matchAll(/^\s+(\w+): "([\w.-]+)"\.to_owned\(\),$/gm)].map((match) => [match[1], match[2]]));
const channels = raw.channels;
const expectedAddresses = {
  messageEvents: defaults.message_events,
  campaignEvents: defaults.campaign_events,
  messageStatusChanges: defaults.message_changes,
  campaignStatusChanges: defaults.campaign_changes,
  deadLetter: defaults.dead_letter,
  campaignStage: defaults.campaign_stage,
  messageCommands: defaults.message_commands,
  carrierJoin: defaults.carrier_join,
};
for (const [channel, address] of Object.entries(expectedAddresses)) {
  if (address === undefined) {
    fail(`crates/smsfold-worker/src/config.rs: no default topic name found for channel ${channel}`);
  } else if (channels[channel]?.address !== address) {
    fail(`asyncapi: channel ${channel} has address ${channels[channel]?.address}, but the default topic is ${address}`);
  } else if (channels[channel].bindings?.kafka?.topic !== address) {
    fail(`asyncapi: channel ${channel}'s Kafka binding names another topic than ${address}`);
  }
}
for (const [channel, suffix] of [["messageChangelog", "message-changelog"], ["campaignChangelog", "campaign-changelog"], ["carrierChangelog", "carrier-changelog"]]) {
  if (!config.includes(`format!("{}-${suffix}", self.group_id)`)) {
    fail(`crates/smsfold-worker/src/config.rs: the ${suffix} topic is no longer named GROUP_ID-${suffix}`);
  }
  if (channels[channel]?.address !== `{groupId}-${suffix}`) {
    fail(`asyncapi: channel ${channel} should have address {groupId}-${suffix}`);
  }
}
const internal = Object.entries(channels).filter(([, channel]) => channel.tags?.some((tag) => tag.name === "internal")).map(([name]) => name);
sameSet("asyncapi: channels tagged internal", new Set(internal), new Set(["campaignStage", "messageCommands", "carrierJoin", "messageChangelog", "campaignChangelog", "carrierChangelog"]));

const deadLetterSource = read("crates/smsfold-worker/src/dead_letter.rs");
const headerNames = new Set([...deadLetterSource.matchAll(/pub const \w+_HEADER: &str = "([\w-]+)";/g)].map((match) => match[1]));
const deadLetterHeaders = raw.components.schemas.DeadLetterHeaders;
sameSet("asyncapi: DeadLetterHeaders against crates/smsfold-worker/src/dead_letter.rs", new Set(deadLetterHeaders.required), headerNames);
const reasonsSection = eventsDoc.split("## Dead-letter reasons")[1] ?? "";
const documentedReasons = new Set([...reasonsSection.matchAll(/^\| `(\w+)` \|/gm)].map((match) => match[1]));
sameSet("asyncapi: smsfold-dlq-reason values against docs/events.md", new Set(deadLetterHeaders.properties["smsfold-dlq-reason"].enum), documentedReasons);

function oneofFields(protoText, message) {
  const body = protoText.split(`message ${message} {`)[1]?.split("oneof kind {")[1]?.split("}")[0] ?? "";
  return new Set([...body.matchAll(/^\s*\w+ (\w+) = \d+;/gm)].map((match) => match[1]));
}
sameSet("asyncapi: MessageEventJson kinds against MessageEvent's oneof", new Set(raw.components.schemas.MessageEventJson.properties.kind.enum), oneofFields(read("proto/smsfold/v1/message_events.proto"), "MessageEvent"));
sameSet("asyncapi: CampaignEventJson kinds against CampaignEvent's oneof", new Set(raw.components.schemas.CampaignEventJson.properties.kind.enum), oneofFields(read("proto/smsfold/v1/campaign_events.proto"), "CampaignEvent"));

let protobufMessages = 0;
for (const [name, message] of Object.entries(raw.components.messages)) {
  const qualified = message.payload?.["x-protobuf-message"];
  if (qualified === undefined) {
    if (message.contentType === "application/x-protobuf") {
      fail(`asyncapi: protobuf message ${name} names no x-protobuf-message`);
    }
    continue;
  }
  protobufMessages += 1;
  const file = message.payload["x-protobuf-file"];
  const protoText = read(file);
  const packageName = protoText.match(/^package ([\w.]+);$/m)?.[1];
  const messageName = qualified.slice(qualified.lastIndexOf(".") + 1);
  if (`${packageName}.${messageName}` !== qualified) {
    fail(`asyncapi: ${name} names ${qualified}, but ${file} has package ${packageName}`);
  } else if (!new RegExp(`^message ${messageName} \\{`, "m").test(protoText)) {
    fail(`asyncapi: ${name} names ${qualified}, which ${file} does not declare`);
  }
}
console.log(`asyncapi: checked ${protobufMessages} protobuf message references`);

if (failures.length > 0) {
  for (const failure of failures) {
    console.error(`FAILED: ${failure}`);
  }
  process.exit(1);
}
console.log("asyncapi: all checks passed");
