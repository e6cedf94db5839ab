//! The messages the codec bench and the `echo_cost` example send through
//! the core and through plain `serde_json`: the quickstart's echo, an order
//! with list fields, and the same order on a camelizing endpoint.
#![allow(dead_code, unreachable_pub, missing_docs)]

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The echo payload.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct MessagePayload {
    pub content: String,
}

/// The echo endpoint's incoming messages (also its replies).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum Incoming {
    Echo(MessagePayload),
}

/// The frame of every echo round trip.
pub const ECHO_FRAME: &str = r#"{"action":"echo","payload":{"content":"Hello, Chanx!"}}"#;

/// The reply to an echo.
pub fn echo_reply(message: Incoming) -> Incoming {
    let Incoming::Echo(payload) = message;
    Incoming::Echo(MessagePayload {
        content: format!("Echo: {}", payload.content),
    })
}

/// One line of an order.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct LineItem {
    pub item_name: String,
    pub quantity: u32,
}

/// A payload with list fields.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct Order {
    pub order_id: u64,
    pub line_items: Vec<LineItem>,
    pub tags: Vec<String>,
}

/// An endpoint receiving orders (and confirming them with the same shape).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
pub enum OrderMessage {
    PlaceOrder(Order),
}

/// An order as its client sends it.
pub const ORDER_FRAME: &str = r#"{"action":"place_order","payload":{"order_id":42,"line_items":[{"item_name":"tea","quantity":2},{"item_name":"scone","quantity":1}],"tags":["table-7","no-nuts"]}}"#;

/// The same order on a camelizing endpoint.
pub const CAMEL_ORDER_FRAME: &str = r#"{"action":"place_order","payload":{"orderId":42,"lineItems":[{"itemName":"tea","quantity":2},{"itemName":"scone","quantity":1}],"tags":["table-7","no-nuts"]}}"#;

/// The confirmation: the order with one more tag.
pub fn order_reply(message: OrderMessage) -> OrderMessage {
    let OrderMessage::PlaceOrder(mut order) = message;
    order.tags.push("confirmed".into());
    OrderMessage::PlaceOrder(order)
}

/// What a user writes by hand for the camelizing endpoint: serde's own
/// `rename_all = "camelCase"` on each struct.
pub mod by_hand {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct LineItem {
        pub item_name: String,
        pub quantity: u32,
    }

    #[derive(Debug, Clone, Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Order {
        pub order_id: u64,
        pub line_items: Vec<LineItem>,
        pub tags: Vec<String>,
    }

    #[derive(Debug, Clone, Deserialize, Serialize)]
    #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    pub enum OrderMessage {
        PlaceOrder(Order),
    }

    pub fn order_reply(message: OrderMessage) -> OrderMessage {
        let OrderMessage::PlaceOrder(mut order) = message;
        order.tags.push("confirmed".into());
        OrderMessage::PlaceOrder(order)
    }
}
