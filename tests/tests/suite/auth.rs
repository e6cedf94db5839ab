//! Authentication on the upgrade (docs/quick-start.md, "The quickstart
//! program's interface"; docs/protocol.md, "Authentication").

use chanx_e2e::{Adapter, Connect, Running, SECRET, session_for, session_issued_at, shared};

use super::{ECHO, assert_echoes, assert_pongs, auth_forbidden, auth_ok};

/// Both endpoints; the room is this module's own (the server is shared).
const ENDPOINTS: [&str; 2] = [ECHO, "/ws/myapp/chat/auth_tests/"];

/// Expects the exact 403 frame, then close code 4403.
async fn assert_forbidden(connect: Connect, what: &str) {
    let mut client = connect.open(what);
    assert_eq!(client.recv_json().await, auth_forbidden(), "{what}");
    assert_eq!(client.expect_close().await, Some(4403), "{what}");
}

pub(crate) async fn valid_session_gets_exact_200_frame(adapter: Adapter) {
    let server = shared(adapter).await;
    for path in ENDPOINTS {
        let mut client = server
            .connect_with_session(path, &session_for("alice"))
            .await
            .open(path);
        assert_eq!(client.recv_json().await, auth_ok(), "{path}");
        assert_pongs(&mut client).await;
    }
}

pub(crate) async fn no_cookie_gets_403_then_4403(adapter: Adapter) {
    let server = shared(adapter).await;
    for path in ENDPOINTS {
        assert_forbidden(server.connect_with(path, &[]).await, path).await;
        // Other cookies, but no session.
        let other = server
            .connect_with(path, &[("cookie", "csrftoken=abc")])
            .await;
        assert_forbidden(other, path).await;
    }
}

async fn assert_bad_session(server: &Running, session: &str, what: &str) {
    for path in ENDPOINTS {
        let connect = server.connect_with_session(path, session).await;
        assert_forbidden(connect, &format!("{what} on {path}")).await;
    }
}

pub(crate) async fn garbage_cookie_gets_403_then_4403(adapter: Adapter) {
    let server = shared(adapter).await;
    for garbage in ["garbage", "", "a.b.c", "....", "YWxpY2U.1.!!!"] {
        assert_bad_session(server, garbage, &format!("cookie {garbage:?}")).await;
    }
}

pub(crate) async fn forged_cookie_gets_403_then_4403(adapter: Adapter) {
    let server = shared(adapter).await;
    let now = quickstart::store::now_unix();
    // Signed with another key.
    let other_key =
        quickstart::session::SessionSigner::new(format!("{SECRET}-other")).sign("alice", now);
    assert_bad_session(server, &other_key, "cookie signed with another key").await;
    // Valid signature, user name swapped.
    let tampered = session_for("alice").replacen("YWxpY2U", "Ym9i", 1);
    assert_bad_session(server, &tampered, "tampered cookie").await;
    // Valid signature for a user that does not exist.
    assert_bad_session(server, &session_for("mallory"), "unknown user").await;
}

pub(crate) async fn expired_cookie_gets_403_then_4403(adapter: Adapter) {
    let server = shared(adapter).await;
    let now = quickstart::store::now_unix();
    let expired = session_issued_at("alice", now - 1_209_600 - 3600);
    assert_bad_session(server, &expired, "expired cookie").await;
    let future = session_issued_at("alice", now + 24 * 3600);
    assert_bad_session(server, &future, "cookie issued in the future").await;
}

pub(crate) async fn failed_auth_does_not_disturb_others(adapter: Adapter) {
    let server = shared(adapter).await;
    let mut alice = server.connect_as(ECHO, "alice").await;
    assert_forbidden(server.connect_with(ECHO, &[]).await, "anonymous").await;
    assert_echoes(&mut alice, "still here").await;
}
