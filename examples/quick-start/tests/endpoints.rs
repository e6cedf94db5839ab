//! The guide's endpoints, tested in process with chanx's test client.

use chanx::User;
use chanx::testing::{TestClient, TestServer};
use quick_start::sessions::Sessions;
use serde_json::json;

#[tokio::test]
async fn echo_answers_a_logged_in_user() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = Sessions::default();
    let cookie = sessions.log_in(User::new(1, "alice"));
    let server = TestServer::new(quick_start::build_server(sessions)?);

    let mut client = TestClient::builder(&server, "/ws/myapp/echo/")
        .cookie("sessionid", &cookie)
        .connect()
        .await?;
    client.assert_authenticated().await?;
    client
        .send_json(&json!({"action": "echo", "payload": {"content": "hi"}}))
        .await?;
    let reply = client.receive_json().await?;
    assert_eq!(
        reply,
        json!({"action": "echo", "payload": {"content": "Echo: hi"}})
    );
    Ok(())
}
