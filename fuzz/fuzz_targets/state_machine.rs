//! Arbitrary sequences of inputs to one connection. See `checks/state_machine.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::state_machine::run(data));
