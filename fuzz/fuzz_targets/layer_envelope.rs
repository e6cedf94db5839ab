//! Arbitrary bytes from a channel layer. See `checks/layer_envelope.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::layer_envelope::run(data));
