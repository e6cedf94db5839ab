//! Arbitrary bytes as one client frame. See `checks/frame.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::frame::run(data));
