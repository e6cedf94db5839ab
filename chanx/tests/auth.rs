#![allow(clippy::unwrap_used, missing_docs)]
//! The DRF authentication matrix (as chanx reproduces it; docs/protocol.md,
//! "Authentication") through real endpoints and the in-process client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chanx::auth::{
    AllowAny, AuthError, Authenticator, DenyAll, IsAuthenticated, LoadedObject, ObjectLoader,
    Permission, PermissionExt, SessionAuthentication, SessionStore, TokenAuthentication,
    TokenVerifier,
};
use chanx::layer::{ChannelLayer, InMemoryLayer};
use chanx::proto::{ContentKind, GroupEnvelope, LayerMessage};
use chanx::routing::{RouteTable, path, re_path};
use chanx::testing::{TestClient, TestServer};
use chanx::{
    Consumer, Context, Endpoint, EndpointBuilder, HandlerResult, Handshake, NoEvent,
    NoGroupMessage, Options, Server, User, WsMessage,
};
use futures_executor::block_on;
use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
const DENIED: &str = "You do not have permission to perform this action.";

// ---------------------------------------------------------------- fixtures

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum In {
    Whoami,
    Echo { content: String },
}

#[derive(Debug, Clone, PartialEq)]
struct Profile {
    pk: u64,
    owner_pk: i64,
    name: String,
}

/// Replies to `whoami` with the user and the loaded object.
#[derive(Default)]
struct AuthConsumer;

impl Consumer for AuthConsumer {
    type Incoming = In;
    type Outgoing = chanx::NoOutgoing;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn build_groups(&mut self, _: &Context<'_, Self>) -> Vec<String> {
        vec!["lobby".to_owned()]
    }

    async fn receive_message(&mut self, ctx: &mut Context<'_, Self>, message: In) -> HandlerResult {
        match message {
            In::Whoami => {
                let user = ctx.user().map(|u| u.username.clone());
                let object = ctx.object::<Profile>().map(|p| p.name.clone());
                ctx.send_raw_json(&json!({
                    "action": "whoami",
                    "payload": {"user": user, "object": object},
                }))
                .await?;
            }
            In::Echo { content } => {
                ctx.send_raw_json(&json!({"action": "echo", "payload": {"content": content}}))
                    .await?;
            }
        }
        Ok(())
    }
}

struct Tokens {
    users: HashMap<String, User>,
    delay: Option<Duration>,
}

fn tokens() -> Tokens {
    let mut users = HashMap::new();
    users.insert("good".to_owned(), User::new(1, "alice"));
    users.insert("bob-token".to_owned(), User::new(2, "bob"));
    Tokens { users, delay: None }
}

impl TokenVerifier for Tokens {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<User>, AuthError>> {
        Box::pin(async move {
            if let Some(d) = self.delay {
                futures_timer::Delay::new(d).await;
            }
            Ok(self.users.get(token).cloned())
        })
    }
}

struct Sessions(HashMap<String, User>);

fn sessions() -> Sessions {
    let mut map = HashMap::new();
    map.insert("s3cr3t".to_owned(), User::new(7, "carol"));
    Sessions(map)
}

impl SessionStore for Sessions {
    fn load<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<Option<User>, AuthError>> {
        let user = self.0.get(session).cloned();
        Box::pin(async move { Ok(user) })
    }
}

/// An authenticator whose backing store is down.
struct Broken;

impl Authenticator for Broken {
    fn authenticate<'a>(
        &'a self,
        _: &'a Handshake,
    ) -> BoxFuture<'a, Result<Option<User>, AuthError>> {
        Box::pin(async {
            Err(AuthError::Internal(
                "database unreachable at 10.0.0.5".into(),
            ))
        })
    }
}

/// Loads `Profile`s by the path parameter `pk`.
struct Profiles(HashMap<u64, Profile>);

impl ObjectLoader for Profiles {
    fn object_name(&self) -> &str {
        "User"
    }

    fn load<'a>(
        &'a self,
        handshake: &'a Handshake,
    ) -> BoxFuture<'a, Result<Option<LoadedObject>, AuthError>> {
        Box::pin(async move {
            let pk: u64 = handshake
                .param("pk")
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| AuthError::Internal("no pk".into()))?;
            Ok(self
                .0
                .get(&pk)
                .cloned()
                .map(|p| Arc::new(p) as LoadedObject))
        })
    }
}

fn profiles() -> Profiles {
    let mut map = HashMap::new();
    map.insert(
        1,
        Profile {
            pk: 1,
            owner_pk: 1,
            name: "alice's profile".into(),
        },
    );
    map.insert(
        2,
        Profile {
            pk: 2,
            owner_pk: 2,
            name: "bob's profile".into(),
        },
    );
    Profiles(map)
}

/// Object permission: the profile must belong to the user.
struct IsOwner;

impl Permission for IsOwner {
    fn has_permission(&self, _: Option<&User>, _: &Handshake) -> bool {
        true
    }

    fn has_object_permission(
        &self,
        user: Option<&User>,
        _: &Handshake,
        object: &(dyn std::any::Any + Send + Sync),
    ) -> bool {
        let profile = object.downcast_ref::<Profile>().expect("a Profile");
        assert!(profile.pk > 0);
        user.is_some_and(|u| u.pk == json!(profile.owner_pk))
    }

    fn message(&self) -> Option<&str> {
        Some("Not yourself.")
    }
}

fn builder() -> EndpointBuilder<AuthConsumer> {
    Endpoint::builder(AuthConsumer::default)
}

fn server_with(endpoint: EndpointBuilder<AuthConsumer>) -> TestServer {
    let routes = RouteTable::new([
        path("ws/", endpoint.build().unwrap()),
        re_path(
            r"obj/(?P<pk>\d+)/",
            builder()
                .authenticator(TokenAuthentication::new(tokens()))
                .permission(IsAuthenticated)
                .object(profiles())
                .build()
                .unwrap(),
        ),
    ])
    .unwrap();
    TestServer::new(Server::new(routes, InMemoryLayer::new()))
}

fn token_server() -> TestServer {
    server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(IsAuthenticated),
    )
}

/// Connects with `headers`, returns the authentication payload and, for a
/// failure, the close code that follows it (for a success, `None` after
/// checking the connection answers).
fn outcome_at(server: &TestServer, at: &str, headers: &[(&str, &str)]) -> (Value, Option<u16>) {
    block_on(async {
        let mut b = TestClient::builder(server, at);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        let mut client = b.connect().await.unwrap();
        let payload = client.wait_for_auth().await.unwrap();
        if payload["status_code"] == 200 {
            client
                .send_json(&json!({"action": "echo", "payload": {"content": "x"}}))
                .await
                .unwrap();
            let reply = client.receive_json().await.unwrap();
            assert_eq!(reply["action"], "echo");
            client.disconnect().await;
            (payload, None)
        } else {
            // The close frame must come right after the authentication frame.
            let next = client.receive_within(Duration::from_secs(2)).await.unwrap();
            match next {
                WsMessage::Close(frame) => (payload, frame.map(|f| f.0)),
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
}

fn outcome(server: &TestServer, headers: &[(&str, &str)]) -> (Value, Option<u16>) {
    outcome_at(server, "/ws/", headers)
}

fn auth_payload(status: u16, text: &str, detail: &str) -> Value {
    json!({"status_code": status, "status_text": text, "data": {"detail": detail}})
}

fn assert_refused(got: (Value, Option<u16>), status: u16, detail: &str) {
    let text = chanx::proto::status_text(status);
    assert_eq!(got.0, auth_payload(status, text, detail), "payload");
    assert_eq!(got.1, Some(4000 + status), "close code");
}

fn assert_ok(got: (Value, Option<u16>)) {
    assert_eq!(got.0, auth_payload(200, "OK", "OK"));
    assert_eq!(got.1, None);
}

/// Connects and returns the `whoami` reply payload.
fn whoami(server: &TestServer, at: &str, headers: &[(&str, &str)]) -> Value {
    block_on(async {
        let mut b = TestClient::builder(server, at);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        let mut client = b.connect().await.unwrap();
        client.assert_authenticated().await.unwrap();
        client
            .send_json(&json!({"action": "whoami", "payload": null}))
            .await
            .unwrap();
        let reply = client.receive_json().await.unwrap();
        client.disconnect().await;
        assert_eq!(reply["action"], "whoami");
        reply["payload"].clone()
    })
}

// ------------------------------------------------------ token authentication

#[test]
fn token_success() {
    let server = token_server();
    assert_ok(outcome(&server, &[("authorization", "Token good")]));
    assert_eq!(
        whoami(&server, "/ws/", &[("authorization", "Token good")])["user"],
        "alice"
    );
}

#[test]
fn token_missing_header_is_401_not_provided() {
    assert_refused(outcome(&token_server(), &[]), 401, NOT_PROVIDED);
}

#[test]
fn token_unknown_is_401_invalid_token() {
    assert_refused(
        outcome(&token_server(), &[("authorization", "Token bad")]),
        401,
        "Invalid token.",
    );
}

#[test]
fn token_keyword_without_key() {
    assert_refused(
        outcome(&token_server(), &[("authorization", "Token")]),
        401,
        "Invalid token header. No credentials provided.",
    );
}

#[test]
fn token_with_spaces() {
    assert_refused(
        outcome(&token_server(), &[("authorization", "Token a b")]),
        401,
        "Invalid token header. Token string should not contain spaces.",
    );
}

#[test]
fn other_scheme_is_not_provided() {
    assert_refused(
        outcome(&token_server(), &[("authorization", "Bearer x")]),
        401,
        NOT_PROVIDED,
    );
}

#[test]
fn token_keyword_is_case_insensitive() {
    let server = token_server();
    assert_ok(outcome(&server, &[("authorization", "token good")]));
    assert_ok(outcome(&server, &[("authorization", "TOKEN good")]));
}

#[test]
fn custom_keyword_bearer() {
    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()).keyword("Bearer"))
            .permission(IsAuthenticated),
    );
    assert_ok(outcome(&server, &[("authorization", "Bearer good")]));
    assert_ok(outcome(&server, &[("authorization", "bearer good")]));
    assert_refused(
        outcome(&server, &[("authorization", "Bearer bad")]),
        401,
        "Invalid token.",
    );
    assert_refused(
        outcome(&server, &[("authorization", "Token good")]),
        401,
        NOT_PROVIDED,
    );
    assert_refused(
        outcome(&server, &[("authorization", "Bearer")]),
        401,
        "Invalid token header. No credentials provided.",
    );
}

// ---------------------------------------------------- session authentication

fn session_server() -> TestServer {
    server_with(
        builder()
            .authenticator(SessionAuthentication::new(sessions()))
            .permission(IsAuthenticated),
    )
}

#[test]
fn session_success() {
    let server = session_server();
    assert_ok(outcome(&server, &[("cookie", "sessionid=s3cr3t")]));
    assert_eq!(
        whoami(
            &server,
            "/ws/",
            &[("cookie", "theme=dark; sessionid=s3cr3t")]
        )["user"],
        "carol"
    );
}

#[test]
fn session_missing_cookie_is_403() {
    assert_refused(outcome(&session_server(), &[]), 403, NOT_PROVIDED);
}

#[test]
fn session_bad_cookie_is_403_not_provided() {
    assert_refused(
        outcome(&session_server(), &[("cookie", "sessionid=forged")]),
        403,
        NOT_PROVIDED,
    );
    assert_refused(
        outcome(&session_server(), &[("cookie", "sessionid=")]),
        403,
        NOT_PROVIDED,
    );
}

#[test]
fn custom_session_cookie_name() {
    let server = server_with(
        builder()
            .authenticator(SessionAuthentication::new(sessions()).cookie_name("sid"))
            .permission(IsAuthenticated),
    );
    assert_ok(outcome(&server, &[("cookie", "sid=s3cr3t")]));
    assert_refused(
        outcome(&server, &[("cookie", "sessionid=s3cr3t")]),
        403,
        NOT_PROVIDED,
    );
}

// ------------------------------------------- several authenticators: 401/403

#[test]
fn session_first_then_token_failures_are_403() {
    let server = server_with(
        builder()
            .authenticator(SessionAuthentication::new(sessions()))
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(IsAuthenticated),
    );
    assert_refused(outcome(&server, &[]), 403, NOT_PROVIDED);
    assert_refused(
        outcome(&server, &[("authorization", "Token bad")]),
        403,
        "Invalid token.",
    );
    assert_refused(
        outcome(&server, &[("authorization", "Token a b")]),
        403,
        "Invalid token header. Token string should not contain spaces.",
    );
    assert_ok(outcome(&server, &[("authorization", "Token good")]));
    assert_ok(outcome(&server, &[("cookie", "sessionid=s3cr3t")]));
}

#[test]
fn token_first_then_session_failures_are_401() {
    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .authenticator(SessionAuthentication::new(sessions()))
            .permission(IsAuthenticated),
    );
    assert_refused(outcome(&server, &[]), 401, NOT_PROVIDED);
    assert_refused(
        outcome(&server, &[("cookie", "sessionid=forged")]),
        401,
        NOT_PROVIDED,
    );
    assert_refused(
        outcome(&server, &[("authorization", "Token bad")]),
        401,
        "Invalid token.",
    );
    assert_ok(outcome(&server, &[("cookie", "sessionid=s3cr3t")]));
    assert_eq!(
        whoami(&server, "/ws/", &[("cookie", "sessionid=s3cr3t")])["user"],
        "carol"
    );
}

// --------------------------------------------------------------- permissions

#[test]
fn deny_all_for_authenticated_user_is_403_default_text() {
    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(IsAuthenticated)
            .permission(DenyAll),
    );
    assert_refused(
        outcome(&server, &[("authorization", "Token good")]),
        403,
        DENIED,
    );
}

#[test]
fn custom_permission_message() {
    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(DenyAll.with_message("Only group members are allowed.")),
    );
    assert_refused(
        outcome(&server, &[("authorization", "Token good")]),
        403,
        "Only group members are allowed.",
    );
    // Unauthenticated: the custom message is replaced by NotAuthenticated.
    assert_refused(outcome(&server, &[]), 401, NOT_PROVIDED);
}

#[test]
fn custom_permission_message_unauthenticated_session_is_403_not_provided() {
    let server = server_with(
        builder()
            .authenticator(SessionAuthentication::new(sessions()))
            .permission(DenyAll.with_message("Only group members are allowed.")),
    );
    assert_refused(outcome(&server, &[]), 403, NOT_PROVIDED);
}

#[test]
fn and_combinator() {
    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(IsAuthenticated.and(DenyAll)),
    );
    assert_refused(
        outcome(&server, &[("authorization", "Token good")]),
        403,
        DENIED,
    );
    assert_refused(outcome(&server, &[]), 401, NOT_PROVIDED);

    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(IsAuthenticated.and(AllowAny)),
    );
    assert_ok(outcome(&server, &[("authorization", "Token good")]));
    assert_refused(outcome(&server, &[]), 401, NOT_PROVIDED);
}

#[test]
fn and_combinator_reports_the_failing_operands_message() {
    // `And`'s documentation: "the denial text is the failing one's".
    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(
                IsAuthenticated
                    .with_message("Log in first.")
                    .and(DenyAll.with_message("Members only.")),
            ),
    );
    assert_refused(
        outcome(&server, &[("authorization", "Token good")]),
        403,
        "Members only.",
    );
}

#[test]
fn or_combinator() {
    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(DenyAll.or(IsAuthenticated)),
    );
    assert_ok(outcome(&server, &[("authorization", "Token good")]));
    assert_refused(outcome(&server, &[]), 401, NOT_PROVIDED);

    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(DenyAll.or(AllowAny)),
    );
    assert_ok(outcome(&server, &[]));
    assert_eq!(whoami(&server, "/ws/", &[])["user"], Value::Null);

    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(DenyAll.or(DenyAll)),
    );
    assert_refused(
        outcome(&server, &[("authorization", "Token good")]),
        403,
        DENIED,
    );
}

#[test]
fn not_combinator() {
    // Only anonymous visitors.
    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(IsAuthenticated.not()),
    );
    assert_ok(outcome(&server, &[]));
    assert_refused(
        outcome(&server, &[("authorization", "Token good")]),
        403,
        DENIED,
    );
    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(DenyAll.not().not()),
    );
    assert_refused(
        outcome(&server, &[("authorization", "Token good")]),
        403,
        DENIED,
    );
}

#[test]
fn allow_any_without_authenticators_opens_anonymously() {
    let server = server_with(builder().permission(AllowAny));
    assert_ok(outcome(&server, &[]));
    // Credentials are ignored: nothing reads them.
    assert_ok(outcome(&server, &[("authorization", "Token bad")]));
    assert_eq!(whoami(&server, "/ws/", &[])["user"], Value::Null);
}

#[test]
fn no_authenticators_and_deny_all_is_403_with_permission_text() {
    let server = server_with(builder().permission(DenyAll.with_message("Closed today.")));
    assert_refused(outcome(&server, &[]), 403, "Closed today.");
}

// ------------------------------------------------------------ object level

#[test]
fn object_missing_is_404() {
    let server = token_server();
    assert_refused(
        outcome_at(&server, "/obj/99/", &[("authorization", "Token good")]),
        404,
        "No User matches the given query.",
    );
}

#[test]
fn object_found_is_available_in_handlers() {
    let server = token_server();
    assert_ok(outcome_at(
        &server,
        "/obj/1/",
        &[("authorization", "Token good")],
    ));
    let me = whoami(&server, "/obj/2/", &[("authorization", "Token good")]);
    assert_eq!(me, json!({"user": "alice", "object": "bob's profile"}));
    // No loader on the plain route: no object.
    let me = whoami(&server, "/ws/", &[("authorization", "Token good")]);
    assert_eq!(me["object"], Value::Null);
}

#[test]
fn object_permission_failure_uses_its_message() {
    let routes = RouteTable::new([re_path(
        r"obj/(?P<pk>\d+)/",
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(IsAuthenticated)
            .permission(IsOwner)
            .object(profiles())
            .build()
            .unwrap(),
    )])
    .unwrap();
    let server = TestServer::new(Server::new(routes, InMemoryLayer::new()));
    assert_ok(outcome_at(
        &server,
        "/obj/1/",
        &[("authorization", "Token good")],
    ));
    assert_refused(
        outcome_at(&server, "/obj/2/", &[("authorization", "Token good")]),
        403,
        "Not yourself.",
    );
    assert_refused(
        outcome_at(&server, "/obj/1/", &[("authorization", "Token bob-token")]),
        403,
        "Not yourself.",
    );
    // Still 404 before the object permission when the object is missing.
    assert_refused(
        outcome_at(&server, "/obj/3/", &[("authorization", "Token good")]),
        404,
        "No User matches the given query.",
    );
}

#[test]
fn permissions_run_before_the_object_lookup() {
    let server = token_server();
    assert_refused(outcome_at(&server, "/obj/99/", &[]), 401, NOT_PROVIDED);
    assert_refused(
        outcome_at(&server, "/obj/99/", &[("authorization", "Token bad")]),
        401,
        "Invalid token.",
    );

    let routes = RouteTable::new([re_path(
        r"obj/(?P<pk>\d+)/",
        builder()
            .authenticator(SessionAuthentication::new(sessions()))
            .permission(IsAuthenticated)
            .object(profiles())
            .build()
            .unwrap(),
    )])
    .unwrap();
    let server = TestServer::new(Server::new(routes, InMemoryLayer::new()));
    assert_refused(outcome_at(&server, "/obj/99/", &[]), 403, NOT_PROVIDED);
}

/// Looks users up by name; a name with digits is "the wrong type".
struct ByName;

impl ObjectLoader for ByName {
    fn object_name(&self) -> &str {
        "User"
    }

    fn load<'a>(
        &'a self,
        handshake: &'a Handshake,
    ) -> BoxFuture<'a, Result<Option<LoadedObject>, AuthError>> {
        Box::pin(async move {
            let name = handshake.param("uname").unwrap_or_default();
            if name.chars().any(|c| c.is_ascii_digit()) {
                return Err(AuthError::Failed("bad lookup value".into()));
            }
            if name == "down" {
                return Err(AuthError::Internal("replica lag".into()));
            }
            Ok((name == "alice").then(|| {
                Arc::new(Profile {
                    pk: 1,
                    owner_pk: 1,
                    name: "alice's profile".into(),
                }) as LoadedObject
            }))
        })
    }
}

#[test]
fn object_loader_failures() {
    let routes = RouteTable::new([path(
        "u/<str:uname>/",
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(IsAuthenticated)
            .object(ByName)
            .build()
            .unwrap(),
    )])
    .unwrap();
    let server = TestServer::new(Server::new(routes, InMemoryLayer::new()));
    let token = [("authorization", "Token good")];
    assert_eq!(
        whoami(&server, "/u/alice/", &token)["object"],
        "alice's profile"
    );
    assert_refused(
        outcome_at(&server, "/u/nobody/", &token),
        404,
        "No User matches the given query.",
    );
    // A lookup value of the wrong type: DRF's bare Http404.
    assert_refused(outcome_at(&server, "/u/abc1/", &token), 404, "Not found.");
    assert_refused(
        outcome_at(&server, "/u/down/", &token),
        500,
        "Internal server error",
    );
    // Without credentials none of that is reached.
    assert_refused(outcome_at(&server, "/u/down/", &[]), 401, NOT_PROVIDED);
}

// ---------------------------------------------------------------- failures

#[test]
fn internal_authenticator_error_is_500_generic() {
    let server = server_with(builder().authenticator(Broken).permission(IsAuthenticated));
    let got = outcome(&server, &[("authorization", "Token good")]);
    assert_refused(got, 500, "Internal server error");
    let got = outcome(&server, &[]);
    assert_eq!(got.0["data"], json!({"detail": "Internal server error"}));
    assert!(!got.0.to_string().contains("10.0.0.5"));

    // Even when a permission would have allowed everybody.
    let server = server_with(builder().authenticator(Broken).permission(AllowAny));
    assert_refused(outcome(&server, &[]), 500, "Internal server error");
}

// ------------------------------------------------- send_authentication_message

fn silent_server() -> TestServer {
    server_with(
        builder()
            .options(Options {
                send_authentication_message: false,
                ..Options::default()
            })
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(IsAuthenticated),
    )
}

#[test]
fn silent_success_sends_no_authentication_frame() {
    let server = silent_server();
    block_on(async {
        let mut client = TestClient::builder(&server, "/ws/")
            .header("authorization", "Token good")
            .connect()
            .await
            .unwrap();
        client
            .send_json(&json!({"action": "echo", "payload": {"content": "first"}}))
            .await
            .unwrap();
        let first = client.receive_json().await.unwrap();
        assert_eq!(
            first,
            json!({"action": "echo", "payload": {"content": "first"}})
        );
        assert!(client.receive_nothing(Duration::from_millis(100)).await);
        client.disconnect().await;
    });
}

#[test]
fn silent_failure_closes_4403_without_a_frame() {
    // docs/protocol.md, "Authentication": failures close with 4000 + status;
    // a 401 would be 4401.
    let server = silent_server();
    block_on(async {
        let mut client = TestClient::connect(&server, "/ws/").await.unwrap();
        match client.receive_within(Duration::from_secs(2)).await.unwrap() {
            WsMessage::Close(Some((code, _))) => assert_eq!(code, 4401),
            other => panic!("expected a close frame first, got {other:?}"),
        }
    });
    let server = server_with(
        builder()
            .options(Options {
                send_authentication_message: false,
                ..Options::default()
            })
            .authenticator(SessionAuthentication::new(sessions()))
            .permission(IsAuthenticated),
    );
    block_on(async {
        let mut client = TestClient::connect(&server, "/ws/").await.unwrap();
        match client.receive_within(Duration::from_secs(2)).await.unwrap() {
            WsMessage::Close(Some((code, _))) => assert_eq!(code, 4403),
            other => panic!("expected a close frame first, got {other:?}"),
        }
    });
}

// ------------------------------------------------------------------ ordering

#[test]
fn frames_sent_before_authentication_are_answered_after_it() {
    let mut slow = tokens();
    slow.delay = Some(Duration::from_millis(100));
    let server = server_with(
        builder()
            .authenticator(TokenAuthentication::new(slow))
            .permission(IsAuthenticated),
    );
    block_on(async {
        let mut client = TestClient::builder(&server, "/ws/")
            .header("authorization", "Token good")
            .connect()
            .await
            .unwrap();
        for content in ["one", "two"] {
            client
                .send_json(&json!({"action": "echo", "payload": {"content": content}}))
                .await
                .unwrap();
        }
        assert_eq!(
            client.wait_for_auth().await.unwrap()["status_code"],
            200,
            "the authentication frame comes first"
        );
        for content in ["one", "two"] {
            assert_eq!(
                client.receive_json().await.unwrap(),
                json!({"action": "echo", "payload": {"content": content}})
            );
        }
        client.disconnect().await;
    });
}

#[test]
fn frames_sent_before_a_failed_authentication_are_never_answered() {
    let server = token_server();
    block_on(async {
        let mut client = TestClient::builder(&server, "/ws/")
            .header("authorization", "Token bad")
            .connect()
            .await
            .unwrap();
        client
            .send_json(&json!({"action": "echo", "payload": {"content": "x"}}))
            .await
            .unwrap();
        assert_eq!(client.wait_for_auth().await.unwrap()["status_code"], 401);
        match client.receive_within(Duration::from_secs(2)).await.unwrap() {
            WsMessage::Close(Some((4401, _))) => {}
            other => panic!("expected close 4401, got {other:?}"),
        }
    });
}

// ---------------------------------------------------------------- isolation

#[test]
fn failed_connection_never_receives_group_traffic() {
    let layer = InMemoryLayer::new();
    let mut slow = tokens();
    slow.delay = Some(Duration::from_millis(150));
    let routes = RouteTable::new([path(
        "ws/",
        builder()
            .authenticator(TokenAuthentication::new(slow))
            .permission(IsAuthenticated)
            .build()
            .unwrap(),
    )])
    .unwrap();
    let server = TestServer::new(Server::new(routes, layer.clone()));
    block_on(async {
        let mut good = TestClient::builder(&server, "/ws/")
            .header("authorization", "Token good")
            .connect()
            .await
            .unwrap();
        good.assert_authenticated().await.unwrap();
        assert_eq!(layer.group_size("lobby"), 1);

        let mut bad = TestClient::builder(&server, "/ws/")
            .header("authorization", "Token bad")
            .connect()
            .await
            .unwrap();
        // While the failing connection is still authenticating (its channel
        // exists), an event and a group message go to its would-be group.
        let traffic = async {
            futures_timer::Delay::new(Duration::from_millis(50)).await;
            assert_eq!(layer.channel_count(), 2, "both channels registered");
            assert_eq!(layer.group_size("lobby"), 1, "not joined before auth");
            let event = LayerMessage::event(&json!({"handler": "x", "payload": 1})).unwrap();
            layer.group_send("lobby", Arc::new(event)).await.unwrap();
            let mut content = serde_json::Map::new();
            content.insert("action".into(), json!("chat"));
            let group = GroupEnvelope::new(
                serde_json::value::to_raw_value(&content).unwrap(),
                ContentKind::Json,
                false,
                "specific.other!1",
                None,
            )
            .unwrap();
            layer
                .group_send("lobby", Arc::new(LayerMessage::Group(group)))
                .await
                .unwrap();
        };
        let (payload, ()) = futures_util::join!(bad.wait_for_auth(), traffic);
        assert_eq!(payload.unwrap()["status_code"], 401);
        assert_eq!(layer.group_size("lobby"), 1, "the failed one never joins");
        match bad.receive_within(Duration::from_secs(2)).await.unwrap() {
            WsMessage::Close(Some((4401, _))) => {}
            other => panic!("expected close 4401 and nothing else, got {other:?}"),
        }
        // The good one did get the group message.
        let frame = good.receive_json().await.unwrap();
        assert_eq!(frame["action"], "chat");
        good.disconnect().await;
        assert_eq!(layer.group_size("lobby"), 0);
    });
}

#[test]
fn failed_connection_is_unregistered_from_the_layer() {
    let layer = InMemoryLayer::new();
    let routes = RouteTable::new([path(
        "ws/",
        builder()
            .authenticator(TokenAuthentication::new(tokens()))
            .permission(IsAuthenticated)
            .build()
            .unwrap(),
    )])
    .unwrap();
    let server = TestServer::new(Server::new(routes, layer.clone()));
    block_on(async {
        let mut bad = TestClient::connect(&server, "/ws/").await.unwrap();
        assert_eq!(bad.expect_close().await.unwrap(), Some(4401));
        bad.disconnect().await;
    });
    assert_eq!(layer.channel_count(), 0);
    assert_eq!(layer.group_size("lobby"), 0);
}
