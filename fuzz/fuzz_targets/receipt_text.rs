//! Fuzz target: `smsfold_fuzz::check_receipt_text` on every input.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smsfold_fuzz::check_receipt_text(data));
