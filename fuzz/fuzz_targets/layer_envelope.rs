//! Arbitrary bytes from a channel layer: never a panic; what parses
//! serializes back to something that parses to the same JSON.
#![no_main]

use chanx_proto::LayerMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(message) = LayerMessage::from_json(bytes) {
        let wire = message.to_json();
        let again = LayerMessage::from_json(wire.as_bytes()).expect("own output parses");
        assert_eq!(again.to_json(), wire);
    }
});
