//! The HTTP API of adapters that serve one (docs/quick-start.md, "The
//! quickstart program's interface"; docs/protocol.md, "Playground and
//! AsyncAPI"): login, the playground and the AsyncAPI document.

use chanx_e2e::{Adapter, http, http_with, shared, start};
use serde_json::{Value, json};

use super::{ECHO, assert_echoes, auth_ok};

pub(crate) async fn login_sets_a_working_session_cookie(adapter: Adapter) {
    let server = shared(adapter).await;
    let reply = http(
        server.addr,
        "POST",
        "/auth/login/",
        r#"{"username": "alice", "password": "chanx-demo"}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json(), json!({"username": "alice"}));
    let set_cookie = reply
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("Set-Cookie header")
        .to_owned();
    let cookie = cookie::Cookie::parse(set_cookie.as_str())
        .unwrap_or_else(|e| panic!("unexpected Set-Cookie {set_cookie}: {e}"));
    assert_eq!(cookie.name(), "sessionid", "{set_cookie}");
    assert_eq!(cookie.http_only(), Some(true), "{set_cookie}");
    assert_eq!(cookie.path(), Some("/"), "{set_cookie}");
    assert_eq!(
        cookie.same_site(),
        Some(cookie::SameSite::Lax),
        "{set_cookie}"
    );
    assert_eq!(
        cookie.max_age(),
        Some(cookie::time::Duration::seconds(1_209_600)),
        "{set_cookie}"
    );
    let value = cookie.value();
    assert!(!value.is_empty(), "{set_cookie}");

    for path in [ECHO, "/ws/myapp/chat/login_tests/"] {
        let mut client = server
            .connect_with_session(path, value)
            .await
            .open("login cookie");
        assert_eq!(client.recv_json().await, auth_ok(), "{path}");
        if path == ECHO {
            assert_echoes(&mut client, "logged in").await;
        }
    }
}

pub(crate) async fn login_wrong_credentials_are_401(adapter: Adapter) {
    let server = shared(adapter).await;
    for body in [
        r#"{"username": "alice", "password": "wrong"}"#,
        r#"{"username": "alice", "password": ""}"#,
        r#"{"username": "mallory", "password": "chanx-demo"}"#,
        r#"{"username": "Alice", "password": "chanx-demo"}"#,
    ] {
        let reply = http(server.addr, "POST", "/auth/login/", body).await;
        assert_eq!(reply.status, 401, "{body}");
        assert_eq!(
            reply.json(),
            json!({"detail": "Invalid username or password."}),
            "{body}"
        );
        assert!(reply.headers.get("set-cookie").is_none(), "{body}");
    }
}

pub(crate) async fn login_malformed_body_is_400(adapter: Adapter) {
    let server = shared(adapter).await;
    for body in [
        "not json",
        "",
        r#"{"username": "alice"}"#,
        r#"{"password": "chanx-demo"}"#,
        r#"{"username": 5, "password": "chanx-demo"}"#,
        r#"["alice", "chanx-demo"]"#,
        "null",
    ] {
        let reply = http(server.addr, "POST", "/auth/login/", body).await;
        assert_eq!(reply.status, 400, "{body:?}: {}", reply.body);
        let detail = reply.json()["detail"].clone();
        assert!(
            detail.as_str().is_some_and(|d| !d.is_empty()),
            "{body:?}: {}",
            reply.body
        );
        assert!(reply.headers.get("set-cookie").is_none(), "{body:?}");
    }
}

pub(crate) async fn playground_page_is_served(adapter: Adapter) {
    let server = shared(adapter).await;
    let reply = http(server.addr, "GET", "/playground/websocket/", "").await;
    assert_eq!(reply.status, 200);
    let content_type = reply
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(reply.body.to_lowercase().contains("playground"));
}

fn endpoint_with_friendly_suffix<'a>(list: &'a [Value], suffix: &str) -> &'a Value {
    list.iter()
        .find(|e| {
            e["friendly_url"]
                .as_str()
                .is_some_and(|u| u.ends_with(suffix))
        })
        .unwrap_or_else(|| panic!("no endpoint with friendly_url ending {suffix}: {list:?}"))
}

pub(crate) async fn playground_info_lists_every_endpoint(adapter: Adapter) {
    let server = shared(adapter).await;
    let reply = http(server.addr, "GET", "/playground/websocket-info/", "").await;
    assert_eq!(reply.status, 200);
    let info = reply.json();
    let list = info.as_array().expect("a JSON list");
    assert_eq!(list.len(), 3, "{info}");
    for entry in list {
        for key in ["name", "url", "friendly_url", "description"] {
            assert!(entry[key].is_string(), "{key} in {entry}");
        }
        assert!(entry["message_examples"].is_array(), "{entry}");
        assert!(entry["path_params"].is_array(), "{entry}");
        let url = entry["friendly_url"].as_str().unwrap_or_default();
        assert!(url.starts_with("ws://"), "{entry}");
    }

    let echo = endpoint_with_friendly_suffix(list, "/ws/myapp/echo/");
    assert_eq!(echo["path_params"], json!([]), "{echo}");

    let chat = endpoint_with_friendly_suffix(list, "/ws/myapp/chat/:room_id/");
    let params = chat["path_params"].as_array().expect("path_params");
    assert_eq!(params.len(), 1, "{chat}");
    assert_eq!(params[0]["name"], "room_id");
    assert_eq!(params[0]["pattern"], r"\w{1,100}");
    assert!(params[0]["description"].is_string(), "{chat}");

    let rooms = endpoint_with_friendly_suffix(list, "/ws/myapp/rooms/");
    assert_eq!(rooms["name"], "RoomsConsumer", "{rooms}");

    for entry in [echo, chat, rooms] {
        let examples = entry["message_examples"].as_array().expect("examples");
        let mut actions: Vec<&str> = examples
            .iter()
            .filter_map(|e| e["example"]["action"].as_str())
            .collect();
        actions.sort_unstable();
        assert_eq!(actions, ["echo", "ping"], "{entry}");
        for example in examples {
            assert!(example["name"].is_string(), "{example}");
            assert!(example["description"].is_string(), "{example}");
        }
    }
}

pub(crate) async fn playground_examples_are_valid_messages(adapter: Adapter) {
    let server = shared(adapter).await;
    let info = http(server.addr, "GET", "/playground/websocket-info/", "")
        .await
        .json();
    let mut client = server.connect_as(ECHO, "alice").await;
    let mut sent = 0;
    for entry in info.as_array().expect("a JSON list") {
        for example in entry["message_examples"].as_array().expect("examples") {
            let message = &example["example"];
            client.send_json(message).await;
            let reply = client.recv_json().await;
            assert_ne!(reply["action"], "error", "example {message}: {reply}");
            let expected_action = match message["action"].as_str() {
                Some("ping") => "pong",
                Some("echo") => "echo",
                other => panic!("unexpected example action {other:?}"),
            };
            assert_eq!(reply["action"], expected_action, "{message}: {reply}");
            sent += 1;
        }
    }
    assert_eq!(sent, 6);
}

pub(crate) async fn asyncapi_document_has_a_channel_per_endpoint(adapter: Adapter) {
    let server = shared(adapter).await;
    let reply = http(server.addr, "GET", "/asyncapi.json", "").await;
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert_eq!(doc["asyncapi"], "3.0.0", "{doc}");
    let channels = doc["channels"].as_object().expect("channels");
    // The three endpoints, and the rooms endpoint's topic type.
    assert_eq!(channels.len(), 4, "{doc}");
    let topic = &channels["RoomsConsumer_RoomTopic"]["x-topic"];
    assert_eq!(topic["pattern"], "room:{room_id}", "{doc}");
    let addresses: Vec<&str> = channels
        .values()
        .filter_map(|c| c["address"].as_str())
        .collect();
    assert!(
        addresses.iter().any(|a| a.ends_with("ws/myapp/echo/")),
        "{addresses:?}"
    );
    assert!(
        addresses.iter().any(|a| a.contains("ws/myapp/chat/")),
        "{addresses:?}"
    );

    // The same document as YAML.
    let yaml = http(server.addr, "GET", "/asyncapi.json?format=yaml", "").await;
    assert_eq!(yaml.status, 200);
    assert_eq!(yaml.headers["content-type"], "application/yaml");
    assert!(yaml.body.starts_with("asyncapi: 3.0.0\n"), "{}", yaml.body);
    assert!(
        yaml.body.contains("address: /ws/myapp/chat/{room_id}/"),
        "{}",
        yaml.body
    );
}

const LOGIN: &str = "/auth/login/";
const ALICE: &str = r#"{"username": "alice", "password": "chanx-demo"}"#;
const NOTIFY: &str = r#"{"message": "hygiene"}"#;

/// A body that does not say it is JSON is refused (415, DRF's text): any
/// web page may post a form or `text/plain` across origins unasked.
pub(crate) async fn api_refuses_bodies_that_are_not_json(adapter: Adapter) {
    let server = shared(adapter).await;
    for (path, body) in [(LOGIN, ALICE), ("/api/notify/hygiene/", NOTIFY)] {
        for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
            let reply = http_with(
                server.addr,
                "POST",
                path,
                &[("Content-Type", content_type)],
                body,
            )
            .await;
            assert_eq!(reply.status, 415, "{path} {content_type}: {}", reply.body);
            assert_eq!(
                reply.json(),
                json!({"detail": format!("Unsupported media type \"{content_type}\" in request.")})
            );
            assert!(reply.headers.get("set-cookie").is_none());
        }
    }
}

/// A POST from a browser page on a foreign origin is refused (403, the
/// CSRF text); one from an allowed origin or without `Origin` passes; a
/// second `Origin` header cannot smuggle a foreign one past the check.
pub(crate) async fn api_refuses_posts_from_foreign_origins(adapter: Adapter) {
    let server = shared(adapter).await;
    let allowed = format!("http://{}", server.addr);
    let allowed = allowed.as_str();
    for (path, body) in [(LOGIN, ALICE), ("/api/notify/hygiene/", NOTIFY)] {
        for origins in [
            vec!["http://evil.example"],
            vec![allowed, "http://evil.example"],
        ] {
            let reply = http_with(
                server.addr,
                "POST",
                path,
                &json_with_origins(&origins),
                body,
            )
            .await;
            assert_eq!(reply.status, 403, "{path} {origins:?}: {}", reply.body);
            let detail = reply.json()["detail"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                detail.starts_with("CSRF Failed: Origin checking failed - "),
                "{detail}"
            );
            assert!(reply.headers.get("set-cookie").is_none());
        }
        let reply = http_with(
            server.addr,
            "POST",
            path,
            &json_with_origins(&[allowed]),
            body,
        )
        .await;
        assert_eq!(reply.status, 200, "{path} from {allowed}: {}", reply.body);
    }
}

/// A JSON content type and these `Origin` headers.
fn json_with_origins<'a>(origins: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend(origins.iter().map(|origin| ("Origin", *origin)));
    headers
}

/// Login attempts are throttled per client address (429, DRF's text and
/// `Retry-After`); once throttled, even the right password waits.
pub(crate) async fn login_is_throttled_per_address(adapter: Adapter) {
    // A server of its own: the budget is per process.
    let server = start(adapter).await;
    let wrong = r#"{"username": "alice", "password": "guess"}"#;
    let budget = quickstart::guards::LOGIN_ATTEMPTS_PER_MINUTE;
    for attempt in 0..budget {
        let reply = http(server.addr, "POST", LOGIN, wrong).await;
        assert_eq!(reply.status, 401, "attempt {attempt}");
    }
    // The bucket refills one attempt every 60/budget seconds: on a slow
    // machine an attempt or two may have come back meanwhile.
    let mut extra = 0;
    while http(server.addr, "POST", LOGIN, wrong).await.status == 401 {
        extra += 1;
        assert!(
            extra <= 3,
            "{} wrong attempts were not throttled",
            budget + extra
        );
    }
    for body in [wrong, ALICE] {
        let reply = http(server.addr, "POST", LOGIN, body).await;
        assert_eq!(reply.status, 429, "{}", reply.body);
        let retry_after: u64 = reply
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        let detail = reply.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            detail.starts_with(&format!(
                "Request was throttled. Expected available in {retry_after} second"
            )),
            "{detail}"
        );
        assert!(reply.headers.get("set-cookie").is_none());
    }
}
