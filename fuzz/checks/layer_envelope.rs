//! Arbitrary bytes from a channel layer: never a panic; what parses
//! serializes back to something that parses to the same JSON.

use chanx_proto::LayerMessage;

/// Checks `data` (taken as is, as the fuzzer hands it over).
pub fn run(data: &[u8]) {
    if let Ok(message) = LayerMessage::from_json(data) {
        let wire = message.to_json();
        let again = LayerMessage::from_json(wire.as_bytes()).expect("own output parses");
        assert_eq!(again.to_json(), wire);
    }
}
