//! Fuzz target: `smsfold_fuzz::check_campaign_event` on every input, read as JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smsfold_wire::Format;

fuzz_target!(|data: &[u8]| smsfold_fuzz::check_campaign_event(Format::Json, data));
