//! Routing and origin checks at the upgrade (docs/quick-start.md, "The
//! quickstart program's interface"; docs/protocol.md, "Handshake" and
//! "Authentication").

use chanx_e2e::{Adapter, session_for, shared};

use super::{ECHO, assert_echoes, assert_pongs, auth_ok, chat, chat_frame};

pub(crate) async fn unknown_paths_are_refused_with_404(adapter: Adapter) {
    let server = shared(adapter).await;
    let long_room = "a".repeat(101);
    let paths = [
        "/ws/myapp/nope/".to_owned(),
        "/ws/".to_owned(),
        "/".to_owned(),
        "/ws/myapp/echo".to_owned(),
        "/ws/myapp/chat/lobby".to_owned(),
        "/ws/myapp/echo/extra/".to_owned(),
        "/ws/myapp/chat/lobby/extra/".to_owned(),
        "/ws/myapp/chat/".to_owned(),
        "/ws/myapp/chat/a-b/".to_owned(),
        "/ws/myapp/chat/a%20b/".to_owned(),
        chat(&long_room),
        "/ws/myapp//echo/".to_owned(),
        "/WS/MYAPP/ECHO/".to_owned(),
        // Paths of HTTP routes: an upgrade there is still "no endpoint".
        "/auth/login/".to_owned(),
        "/api/notify/lobby/".to_owned(),
        "/playground/websocket/".to_owned(),
    ];
    let cookie = format!("sessionid={}", session_for("alice"));
    for path in &paths {
        let status = server
            .connect_with(path, &[("cookie", &cookie)])
            .await
            .refused_status(path);
        assert_eq!(status, Some(404), "{path}");
    }
}

pub(crate) async fn room_id_boundaries(adapter: Adapter) {
    let server = shared(adapter).await;
    for room in [
        "a".repeat(100),
        "x".to_owned(),
        "room_1".to_owned(),
        "ÉTÉ9".to_owned(),
    ] {
        let mut client = server.connect_as(&chat(&room), "alice").await;
        assert_pongs(&mut client).await;
    }
}

pub(crate) async fn unicode_room_id_works(adapter: Adapter) {
    let server = shared(adapter).await;
    // `café`, percent-encoded as a browser would.
    let path = chat("caf%C3%A9");
    let mut alice = server.connect_as(&path, "alice").await;
    let mut bob = server.connect_as(&path, "bob").await;
    alice.send_json(&super::echo_msg("bonjour")).await;
    assert_eq!(bob.recv_json().await, chat_frame("alice: bonjour", false));
    assert_pongs(&mut alice).await;
}

pub(crate) async fn allowed_origin_is_accepted(adapter: Adapter) {
    let server = shared(adapter).await;
    let cookie = format!("sessionid={}", session_for("alice"));
    for origin in ["http://localhost:8000", "http://127.0.0.1:8000"] {
        let mut client = server
            .connect_with(ECHO, &[("cookie", &cookie), ("origin", origin)])
            .await
            .open(origin);
        assert_eq!(client.recv_json().await, auth_ok(), "{origin}");
        assert_echoes(&mut client, origin).await;
    }
}

pub(crate) async fn missing_origin_is_accepted(adapter: Adapter) {
    let server = shared(adapter).await;
    let cookie = format!("sessionid={}", session_for("alice"));
    let mut client = server
        .connect_with(ECHO, &[("cookie", &cookie)])
        .await
        .open("no origin");
    assert_eq!(client.recv_json().await, auth_ok());
    assert_echoes(&mut client, "no origin").await;
}

pub(crate) async fn foreign_origin_is_refused_with_403(adapter: Adapter) {
    let server = shared(adapter).await;
    let cookie = format!("sessionid={}", session_for("alice"));
    for origin in [
        "http://evil.example",
        "https://localhost:8000",
        "http://localhost:8001",
        "null",
    ] {
        for path in [ECHO, "/ws/myapp/chat/origin_tests/"] {
            let status = server
                .connect_with(path, &[("cookie", &cookie), ("origin", origin)])
                .await
                .refused_status(origin);
            assert_eq!(status, Some(403), "{origin} on {path}");
        }
    }
}

/// A second `Origin` header cannot smuggle a foreign origin past a check
/// of the first one.
pub(crate) async fn two_origin_headers_are_refused_with_403(adapter: Adapter) {
    let server = shared(adapter).await;
    let cookie = format!("sessionid={}", session_for("alice"));
    for origins in [
        ["http://localhost:8000", "http://evil.example"],
        ["http://evil.example", "http://localhost:8000"],
    ] {
        let headers = [
            ("cookie", cookie.as_str()),
            ("origin", origins[0]),
            ("origin", origins[1]),
        ];
        let status = server
            .connect_with(ECHO, &headers)
            .await
            .refused_status("two origins");
        assert_eq!(status, Some(403), "{origins:?}");
    }
}
