#![allow(clippy::unwrap_used, missing_docs)]
use chanx_e2e::{Adapter, start};
use serde_json::json;

#[tokio::test]
async fn echo_round_trip() {
    let server = start(Adapter::Axum).await;
    let mut client = server.connect_as("/ws/myapp/echo/", "alice").await;
    client
        .send_json(&json!({"action": "echo", "payload": {"content": "Hello, Chanx!"}}))
        .await;
    assert_eq!(
        client.recv_json().await,
        json!({"action": "echo", "payload": {"content": "Echo: Hello, Chanx!"}})
    );
}
