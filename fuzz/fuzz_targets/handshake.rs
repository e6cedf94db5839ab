//! Arbitrary bytes as an HTTP upgrade request head. See `checks/handshake.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::handshake::run(data));
